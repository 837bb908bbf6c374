//! Finding broker's instances by label and turning them into [`Node`]s.
//!
//! `instances.aggregatedList` answers for every zone at once, keyed `zones/{zone}`, with a
//! warning in place of instances for zones that have none; a label filter keeps the answer to
//! broker's own VMs. GCE's `TERMINATED` means stopped (disk kept, compute not billed), not gone.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use broker_provider::{ClusterName, Location, Node, NodeState};
use serde::Deserialize;

use crate::labels;
use crate::operations::last_segment;

/// The fields of an `Instance` broker reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Instance {
    pub(crate) name: String,
    /// URL of the zone.
    #[serde(default)]
    pub(crate) zone: String,
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) network_interfaces: Vec<NetworkInterface>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NetworkInterface {
    #[serde(default, rename = "networkIP")]
    pub(crate) network_ip: Option<String>,
    #[serde(default, rename = "accessConfigs")]
    pub(crate) access_configs: Vec<AccessConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AccessConfig {
    #[serde(default, rename = "natIP")]
    pub(crate) nat_ip: Option<String>,
}

/// One page of `aggregated/instances`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AggregatedPage {
    #[serde(default)]
    pub(crate) items: BTreeMap<String, ScopedInstances>,
    #[serde(default)]
    pub(crate) next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ScopedInstances {
    #[serde(default)]
    pub(crate) instances: Vec<Instance>,
}

/// The AIP-160 filter for broker's instances, of one cluster or all.
pub(crate) fn filter(cluster: Option<&ClusterName>) -> String {
    let managed = format!("(labels.{} = \"1\")", labels::MANAGED);
    match cluster {
        Some(cluster) => format!("{managed} (labels.{} = \"{cluster}\")", labels::CLUSTER),
        None => managed,
    }
}

/// Broker's state for a GCE status; `None` for an instance on its way out of existence.
pub(crate) fn node_state(status: &str) -> Option<NodeState> {
    match status {
        "RUNNING" => Some(NodeState::Running),
        "STOPPING" | "STOPPED" | "SUSPENDING" | "SUSPENDED" | "TERMINATED" | "PENDING_STOP" | "DEPROVISIONING" => {
            Some(NodeState::Stopped)
        }
        // Not a status GCE documents, but what a delete in progress looks like to a caller.
        "DELETING" | "DELETED" => None,
        // PROVISIONING, STAGING, PENDING, REPAIRING, and any status added later: it exists and
        // may bill, so it is reported as not yet running.
        _ => Some(NodeState::Pending),
    }
}

/// `us-central1` for `us-central1-a`.
pub(crate) fn region_of(zone: &str) -> &str {
    zone.rsplit_once('-').map_or(zone, |(region, _)| region)
}

pub(crate) fn location(zone: &str) -> Location {
    Location {
        region: Cow::Owned(region_of(zone).to_owned()),
        zone: Some(Cow::Owned(zone.to_owned())),
    }
}

impl Instance {
    pub(crate) fn zone_name(&self) -> &str {
        last_segment(&self.zone)
    }

    pub(crate) fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    pub(crate) fn rank(&self) -> Option<u32> {
        self.label(labels::RANK)?.parse().ok()
    }

    /// The node, or `None` for an instance that is not broker's (no valid cluster or rank label)
    /// or is being deleted.
    pub(crate) fn to_node(&self) -> Option<Node> {
        let cluster: ClusterName = self.label(labels::CLUSTER)?.parse().ok()?;
        let rank = self.rank()?;
        let state = node_state(&self.status)?;
        let nic = self.network_interfaces.first();
        let ip = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<IpAddr>().ok());
        let private_ip = nic.and_then(|n| ip(&n.network_ip));
        let public_ip = nic.and_then(|n| n.access_configs.iter().find_map(|a| ip(&a.nat_ip)));
        Some(Node {
            id: self.name.clone(),
            cluster,
            rank,
            state,
            location: location(self.zone_name()),
            ssh: public_ip.or(private_ip).map(|ip| SocketAddr::new(ip, 22)),
            private_ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_broker_states() {
        for (status, state) in [
            ("PROVISIONING", Some(NodeState::Pending)),
            ("STAGING", Some(NodeState::Pending)),
            ("RUNNING", Some(NodeState::Running)),
            ("STOPPING", Some(NodeState::Stopped)),
            ("SUSPENDING", Some(NodeState::Stopped)),
            ("SUSPENDED", Some(NodeState::Stopped)),
            ("TERMINATED", Some(NodeState::Stopped)),
            ("DELETING", None),
            ("SOMETHING_NEW", Some(NodeState::Pending)),
        ] {
            assert_eq!(node_state(status), state, "{status}");
        }
    }

    #[test]
    fn an_aggregated_page_becomes_nodes() {
        let page: AggregatedPage = serde_json::from_value(serde_json::json!({
            "kind": "compute#instanceAggregatedList",
            "items": {
                "zones/us-central1-a": {"instances": [{
                    "name": "train-0-abcdef",
                    "zone": "https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a",
                    "status": "RUNNING",
                    "labels": {"broker-managed": "1", "broker-cluster": "train", "broker-rank": "0"},
                    "networkInterfaces": [{"networkIP": "10.128.0.2",
                        "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "natIP": "34.1.2.3"}]}],
                }, {
                    "name": "train-1-abcdef",
                    "zone": "projects/p/zones/us-central1-a",
                    "status": "STAGING",
                    "labels": {"broker-managed": "1", "broker-cluster": "train", "broker-rank": "1"},
                    "networkInterfaces": [{"networkIP": "10.128.0.3"}],
                }, {
                    "name": "not-ours",
                    "zone": "projects/p/zones/us-central1-a",
                    "status": "RUNNING",
                }]},
                "zones/europe-west4-a": {"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "none"}},
            },
            "nextPageToken": "p2",
        }))
        .unwrap();
        assert_eq!(page.next_page_token.as_deref(), Some("p2"));
        let nodes: Vec<Node> = page
            .items
            .values()
            .flat_map(|scope| scope.instances.iter().filter_map(Instance::to_node))
            .collect();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].ssh, Some("34.1.2.3:22".parse().unwrap()));
        assert_eq!(nodes[0].private_ip, Some("10.128.0.2".parse().unwrap()));
        assert_eq!(nodes[0].location.to_string(), "us-central1/us-central1-a");
        assert_eq!(nodes[0].state, NodeState::Running);
        assert_eq!(
            nodes[1].ssh,
            Some("10.128.0.3:22".parse().unwrap()),
            "no external IP: the internal one"
        );
        assert_eq!((nodes[1].rank, nodes[1].state), (1, NodeState::Pending));
    }

    #[test]
    fn filters_select_by_label() {
        assert_eq!(filter(None), r#"(labels.broker-managed = "1")"#);
        assert_eq!(
            filter(Some(&"train".parse().unwrap())),
            r#"(labels.broker-managed = "1") (labels.broker-cluster = "train")"#
        );
        assert_eq!(region_of("europe-west4-b"), "europe-west4");
    }
}
