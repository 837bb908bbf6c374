//! broker's Google Compute Engine provider: Compute v1 REST over `reqwest`, no Google SDK.
//!
//! - [`GceProvider`] implements the [`broker_provider::Provider`] contract: VMs are created with
//!   `instances.insert`, found again by label through `aggregated/instances`, and deleted, stopped
//!   or started by name; every mutation's operation is waited for to completion;
//! - [`GceConfig`] says where Compute and the token endpoints are (overridable for tests and
//!   emulators: `BROKER_GCP_ENDPOINT`, `BROKER_GCP_TOKEN_URL`, `BROKER_GCP_METADATA_URL`) and
//!   how nodes look; [`GceConfig::from_env`] documents every variable;
//! - credentials come from a service-account key, the ADC file or the metadata server (`auth.rs`);
//! - failures are classified from GCE's codes in `classify.rs` only.
//!
//! What it is not: a price source (the catalog comes from SkyPilot's), a TPU or GKE driver, or a
//! general Compute client (it reads only the fields broker needs).

mod accelerators;
mod auth;
mod body;
mod classify;
mod client;
mod config;
mod discover;
mod jwt;
mod operations;
mod provider;
mod retry;

pub use config::{DEFAULT_ENDPOINT, DEFAULT_METADATA_URL, DEFAULT_TOKEN_URL, GceConfig, env};
pub use provider::GceProvider;

/// The labels broker puts on every instance. Keys use `-`, values are label-safe.
pub mod labels {
    /// Marks an instance as broker's (`1`): `sweep` lists everything with it.
    pub const MANAGED: &str = "broker-managed";
    /// The cluster name.
    pub const CLUSTER: &str = "broker-cluster";
    /// The node's rank inside the cluster.
    pub const RANK: &str = "broker-rank";
    /// A hash of the launch token of the attempt that created the node (tokens are free text,
    /// label values are not).
    pub const TOKEN: &str = "broker-token";
    /// The first rank of that attempt, so a resend whose first send died half-way knows which
    /// ranks are still missing.
    pub const BASE_RANK: &str = "broker-base-rank";
}
