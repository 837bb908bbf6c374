//! The trait every cloud adapter implements.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

use crate::{Accelerator, Cloud, ClusterName, LaunchToken, Location, Node, Offer, ProviderError, Teardown};

/// What `check` found out about a cloud's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Who the credentials say we are (an ARN, a service-account email, `local`).
    pub identity: String,
}

/// Everything a provider needs to create the nodes of one cluster in one place.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LaunchSpec {
    /// The cluster; every resource is tagged with it.
    pub cluster: ClusterName,
    /// Identifies this attempt so a resend cannot double-create.
    pub token: LaunchToken,
    /// The instance type to create.
    pub instance_type: String,
    /// Where.
    pub location: Location,
    /// The accelerators the offer carries on each node. Clouds that attach GPUs to a host
    /// (GCE's N1 with `guestAccelerators`) need it; the others find them in the instance type.
    pub accelerator: Option<Accelerator>,
    /// How many nodes.
    pub count: u32,
    /// Spot market or on-demand.
    pub spot: bool,
    /// Root disk size in GiB.
    pub disk_gib: u32,
    /// An explicit machine image; the provider's GPU-ready default when `None`.
    pub image: Option<String>,
    /// The public key (OpenSSH format) that must be allowed to log in.
    pub ssh_public_key: String,
    /// Extra user labels to put on every resource.
    pub labels: BTreeMap<String, String>,
    /// A hard limit on each node's life, in seconds, for clouds that can enforce one themselves
    /// (GCE's `maxRunDuration` with delete). Broker's on-node watchdog enforces it everywhere;
    /// this is the cloud-side second line for a node whose watchdog never ran.
    pub max_run_seconds: Option<u64>,
}

impl LaunchSpec {
    /// A spec with defaults for everything but what identifies the attempt.
    pub fn new(cluster: ClusterName, token: LaunchToken, offer: &Offer, count: u32, spot: bool) -> Self {
        Self {
            cluster,
            token,
            instance_type: offer.instance_type.to_string(),
            location: offer.location.clone(),
            accelerator: offer.accelerator.clone(),
            count,
            spot,
            disk_gib: 256,
            image: None,
            ssh_public_key: String::new(),
            labels: BTreeMap::new(),
            max_run_seconds: None,
        }
    }

    /// Sets the hard limit on each node's life.
    #[must_use]
    pub fn with_max_run_seconds(mut self, seconds: Option<u64>) -> Self {
        self.max_run_seconds = seconds;
        self
    }

    /// Sets the root disk size.
    #[must_use]
    pub fn with_disk_gib(mut self, gib: u32) -> Self {
        self.disk_gib = gib;
        self
    }

    /// Sets the machine image.
    #[must_use]
    pub fn with_image(mut self, image: Option<String>) -> Self {
        self.image = image;
        self
    }

    /// Sets the public key allowed to log in.
    #[must_use]
    pub fn with_ssh_public_key(mut self, key: impl Into<String>) -> Self {
        self.ssh_public_key = key.into();
        self
    }

    /// Sets the user labels.
    #[must_use]
    pub fn with_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.labels = labels;
        self
    }
}

/// A cloud adapter.
///
/// The cloud is the source of truth for what exists: every resource carries the cluster's tag,
/// and `nodes`/`sweep` find resources by that tag, never by a list kept elsewhere. That is what
/// lets a crashed launch be found and finished.
#[async_trait]
pub trait Provider: fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// Which cloud this drives.
    fn cloud(&self) -> Cloud;

    /// Whether credentials work, and whose they are.
    async fn check(&self) -> Result<Readiness, ProviderError>;

    /// Creates `spec.count` nodes of the cluster at `spec.location`.
    ///
    /// Idempotent for `spec.token`: a second call with the same token returns the nodes of the
    /// first instead of creating more. Every resource is tagged with the cluster name and
    /// broker's marker before the call returns.
    async fn launch(&self, spec: &LaunchSpec) -> Result<Vec<Node>, ProviderError>;

    /// The cluster's nodes that still exist, found by tag.
    async fn nodes(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError>;

    /// Terminates every resource of the cluster. Idempotent: a cluster that is already gone
    /// gives `Ok(Teardown::AlreadyGone)`.
    async fn terminate(&self, cluster: &ClusterName) -> Result<Teardown, ProviderError>;

    /// Every node carrying broker's marker, whatever its cluster (for orphan checks).
    async fn sweep(&self) -> Result<Vec<Node>, ProviderError>;

    /// Stops the cluster's nodes: compute stops billing, disks stay. Idempotent: stopped nodes
    /// are left as they are. Clouds that cannot stop keep this default, which says so.
    async fn stop(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
        let _ = cluster;
        Err(self.unsupported("stopping a cluster"))
    }

    /// Starts the cluster's stopped nodes again and returns them (addresses may have changed).
    /// Idempotent: running nodes are left as they are.
    async fn start(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
        let _ = cluster;
        Err(self.unsupported("starting a stopped cluster"))
    }

    /// The error for an operation this cloud does not offer.
    fn unsupported(&self, what: &str) -> ProviderError {
        ProviderError::Invalid {
            cloud: self.cloud(),
            message: format!("{what} is not supported on {}", self.cloud()),
        }
    }
}

/// A provider behind a pointer, as the engine holds them.
pub type DynProvider = dyn Provider;

/// A source of live prices, kept apart from [`Provider`]: refreshing a catalog is not provisioning.
#[async_trait]
pub trait PriceSource: fmt::Debug + Send + Sync + 'static {
    /// Which cloud's prices.
    fn cloud(&self) -> Cloud;

    /// Every offer the cloud currently lists.
    async fn fetch_offers(&self) -> Result<Vec<Offer>, ProviderError>;
}
