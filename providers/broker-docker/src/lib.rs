//! broker's local cloud: every node is a container on the local Docker engine running `sshd`.
//!
//! A node stands in for a cloud VM, so the whole path broker takes on a real cloud (launch,
//! wait for SSH, pin the host key, rsync, run detached, tear down) runs on a laptop or in CI for
//! free. Nodes are found by their labels (`broker.managed=1`, `broker.cluster=<name>`), so the
//! engine, not a list kept here, is the source of truth, as on every cloud.
//!
//! - [`DockerProvider`] drives the `docker` CLI, one process per call;
//! - the node image `broker-node:1` is built from Debian packages by `docker/node/build.sh`
//!   ([`DockerProvider::ensure_image`]), so no image registry is needed;
//! - failures are classified from the CLI's stderr in `classify.rs` only.

mod classify;
mod cli;
mod image;
mod inspect;
mod offers;
mod provider;

use std::borrow::Cow;
use std::path::PathBuf;

use broker_provider::{ClusterName, Location};

pub use image::ImageStatus;
pub use provider::DockerProvider;

/// The node image built by `docker/node/build.sh`.
pub const DEFAULT_IMAGE: &str = "broker-node:1";

/// The labels broker puts on every container and network it creates.
pub mod labels {
    /// Marks a resource as broker's (`1`): `sweep` lists everything with it.
    pub const MANAGED: &str = "broker.managed";
    /// The cluster name.
    pub const CLUSTER: &str = "broker.cluster";
    /// The node's rank inside the cluster.
    pub const RANK: &str = "broker.rank";
    /// The launch token of the attempt that created the node.
    pub const TOKEN: &str = "broker.token";
    /// Prefix of the user labels of the launch spec (`broker.label.<key>`).
    pub const USER_PREFIX: &str = "broker.label.";
}

/// How to reach Docker and which node image to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    /// The node image (a container running sshd on port 22). Default [`DEFAULT_IMAGE`].
    pub image: String,
    /// The docker CLI. Default `docker`, found on `PATH`.
    pub docker: PathBuf,
    /// A `build.sh` to build the image with; `None` uses the copy compiled into this crate.
    pub build_script: Option<PathBuf>,
    /// Give every node this host's Docker engine, so that jobs with a `docker:` image can run
    /// their container: the engine socket and the docker CLI are bind-mounted into the node, and
    /// a host directory per node ([`Self::state_dir`]`/nodes/<cluster>/<container>`) is mounted
    /// at the same path so that the job's bind mounts mean the same thing on both sides.
    ///
    /// Whoever controls a node then controls the host's engine, which is root on this host. That
    /// is acceptable for a local test cloud whose nodes run the user's own jobs, and is why only
    /// the local cloud does it. Default `true`; `BROKER_DOCKER_SHARE_ENGINE=0` turns it off.
    pub share_engine: bool,
    /// Where the per-node shared directories live. Default `<temp dir>/broker-docker`.
    pub state_dir: PathBuf,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            image: DEFAULT_IMAGE.to_owned(),
            docker: PathBuf::from("docker"),
            build_script: None,
            share_engine: true,
            state_dir: std::env::temp_dir().join("broker-docker"),
        }
    }
}

impl DockerConfig {
    /// The defaults, with `BROKER_DOCKER_IMAGE` overriding the image, `BROKER_DOCKER_CLI` the
    /// docker program and `BROKER_DOCKER_SHARE_ENGINE=0` turning [`Self::share_engine`] off.
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Some(image) = std::env::var("BROKER_DOCKER_IMAGE").ok().filter(|s| !s.is_empty()) {
            config.image = image;
        }
        if let Some(cli) = std::env::var_os("BROKER_DOCKER_CLI").filter(|s| !s.is_empty()) {
            config.docker = PathBuf::from(cli);
        }
        if let Ok(share) = std::env::var("BROKER_DOCKER_SHARE_ENGINE") {
            config.share_engine = !matches!(share.trim(), "0" | "false" | "no" | "off");
        }
        config
    }
}

/// The only place the local cloud has: region `local`, no zones.
pub fn local_location() -> Location {
    Location {
        region: Cow::Borrowed("local"),
        zone: None,
    }
}

/// The Docker network of a cluster, on which its nodes reach each other.
pub fn network_name(cluster: &ClusterName) -> String {
    format!("broker-{cluster}")
}
