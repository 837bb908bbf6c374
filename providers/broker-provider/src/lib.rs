//! The contract between broker's engine and the clouds it drives.
//!
//! This crate holds the [`Provider`] trait, the domain types that cross it ([`Offer`],
//! [`LaunchSpec`], [`Node`], ...) and the classified [`ProviderError`] that failover depends on.
//! It deliberately carries no SDK, no HTTP client and no CLI code, so that every provider crate and
//! the engine can depend on it without pulling each other in (CI checks this with `cargo tree`):
//!
//! ```text
//!              broker (CLI, optimizer, provisioner, state)
//!         ┌──────────┬──────────┬───────────┐
//!    broker-aws  broker-gcp  broker-docker   (one crate per cloud)
//!         └──────────┴────┬─────┴───────────┘
//!                  broker-provider   (this crate: trait + types)
//! ```
#![warn(missing_docs)]

mod cloud;
mod cluster;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
#[cfg(feature = "fake")]
pub mod fake;
mod node;
mod offer;
mod provider;

pub use cloud::{Cloud, UnknownCloud};
pub use cluster::{ClusterName, InvalidClusterName, LaunchToken};
pub use error::{ErrorClass, FailoverScope, ProviderError};
pub use node::{Node, NodeState, Teardown};
pub use offer::{Accelerator, Arch, Candidate, Location, Offer};
pub use provider::{DynProvider, LaunchSpec, PriceSource, Provider, Readiness};
