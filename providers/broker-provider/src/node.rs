//! Instances as a provider reports them.

use std::net::SocketAddr;

use serde::Serialize;

use crate::{ClusterName, Location};

/// Where a node is in its life, in the provider's terms mapped to broker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Requested, not yet running.
    Pending,
    /// Running (and billing).
    Running,
    /// Stopping or stopped: compute is not billed, disks are.
    Stopped,
    /// Being deleted or deleted.
    Terminated,
}

/// One instance of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The provider's id for it (instance id, instance name, container id).
    pub id: String,
    /// The cluster whose tag it carries.
    pub cluster: ClusterName,
    /// Its rank inside the cluster; 0 is the head.
    pub rank: u32,
    /// State as last reported.
    pub state: NodeState,
    /// Where it runs.
    pub location: Location,
    /// The address to reach its SSH server on, once known.
    pub ssh: Option<SocketAddr>,
    /// Address the other nodes of the cluster reach it on.
    pub private_ip: Option<std::net::IpAddr>,
}

/// The outcome of an idempotent teardown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Teardown {
    /// These nodes were asked to terminate.
    Terminated(Vec<String>),
    /// Nothing of the cluster existed any more: also success.
    AlreadyGone,
}
