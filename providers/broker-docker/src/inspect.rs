//! The parts of `docker inspect` output that broker reads, and how a container becomes a [`Node`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use broker_provider::{ClusterName, Node, NodeState};
use serde::Deserialize;

use crate::{labels, local_location, network_name};

/// One element of `docker inspect`'s JSON array.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Container {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) state: ContainerState,
    #[serde(default)]
    pub(crate) config: Config,
    #[serde(default)]
    pub(crate) network_settings: NetworkSettings,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContainerState {
    #[serde(default)]
    pub(crate) status: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Config {
    /// `null` when a container has no labels.
    #[serde(default)]
    pub(crate) labels: Option<HashMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct NetworkSettings {
    /// `"22/tcp": [{HostIp, HostPort}]`; the list is `null` while the container is not running.
    #[serde(default)]
    pub(crate) ports: Option<HashMap<String, Option<Vec<PortBinding>>>>,
    #[serde(default)]
    pub(crate) networks: Option<HashMap<String, Endpoint>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PortBinding {
    #[serde(default)]
    pub(crate) host_ip: String,
    #[serde(default)]
    pub(crate) host_port: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Endpoint {
    #[serde(default, rename = "IPAddress")]
    pub(crate) ip_address: String,
}

/// Parses `docker inspect` output (a JSON array; empty output means none).
pub(crate) fn parse(json: &str) -> Result<Vec<Container>, serde_json::Error> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(json)
}

/// Maps docker's container status to broker's node state.
pub(crate) fn state(status: &str) -> NodeState {
    match status {
        "running" => NodeState::Running,
        "exited" | "paused" => NodeState::Stopped,
        "removing" | "dead" => NodeState::Terminated,
        // "created", "restarting", and anything newer docker may invent: not usable yet.
        _ => NodeState::Pending,
    }
}

impl Container {
    pub(crate) fn label(&self, key: &str) -> Option<&str> {
        self.config.labels.as_ref()?.get(key).map(String::as_str)
    }

    pub(crate) fn rank(&self) -> Option<u32> {
        self.label(labels::RANK)?.parse().ok()
    }

    /// The node it stands for; `None` for a container whose labels broker did not write.
    pub(crate) fn to_node(&self) -> Option<Node> {
        let cluster: ClusterName = self.label(labels::CLUSTER)?.parse().ok()?;
        let rank = self.rank()?;
        let ssh = self
            .network_settings
            .ports
            .as_ref()
            .and_then(|ports| ports.get("22/tcp"))
            .and_then(Option::as_ref)
            .and_then(|bindings| bindings.iter().find_map(loopback_addr));
        let private_ip = self
            .network_settings
            .networks
            .as_ref()
            .and_then(|nets| nets.get(&network_name(&cluster)))
            .and_then(|endpoint| endpoint.ip_address.parse().ok());
        Some(Node {
            id: self.id.clone(),
            cluster,
            rank,
            state: state(&self.state.status),
            location: local_location(),
            ssh,
            private_ip,
        })
    }
}

/// The address of a port binding; broker publishes on 127.0.0.1 only, and an unspecified host
/// address (published by hand on all interfaces) is still reachable there.
fn loopback_addr(binding: &PortBinding) -> Option<SocketAddr> {
    let port: u16 = binding.host_port.parse().ok()?;
    let ip: IpAddr = match binding.host_ip.parse() {
        Ok(ip) if !IpAddr::is_unspecified(&ip) => ip,
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    ip.is_loopback().then_some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: &str = r#"[{
        "Id": "abc123",
        "State": {"Status": "running", "Running": true},
        "Config": {"Labels": {"broker.managed": "1", "broker.cluster": "train", "broker.rank": "1",
                              "broker.token": "t1"}},
        "NetworkSettings": {
            "Ports": {"22/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}]},
            "Networks": {"broker-train": {"IPAddress": "172.18.0.3"}, "bridge": {"IPAddress": "172.17.0.2"}}
        }
    }]"#;

    #[test]
    fn a_running_container_is_a_reachable_node() {
        let containers = parse(RUNNING).unwrap();
        let node = containers[0].to_node().unwrap();
        assert_eq!(node.id, "abc123");
        assert_eq!(node.cluster.as_str(), "train");
        assert_eq!(node.rank, 1);
        assert_eq!(node.state, NodeState::Running);
        assert_eq!(node.ssh, Some("127.0.0.1:49153".parse().unwrap()));
        assert_eq!(node.private_ip, Some("172.18.0.3".parse().unwrap()));
        assert_eq!(node.location.region, "local");
    }

    #[test]
    fn a_stopped_container_has_no_addresses() {
        let json = r#"[{"Id": "x", "State": {"Status": "exited"},
            "Config": {"Labels": {"broker.cluster": "c", "broker.rank": "0"}},
            "NetworkSettings": {"Ports": {"22/tcp": null}, "Networks": {"broker-c": {"IPAddress": ""}}}}]"#;
        let node = parse(json).unwrap()[0].to_node().unwrap();
        assert_eq!(node.state, NodeState::Stopped);
        assert_eq!(node.ssh, None);
        assert_eq!(node.private_ip, None);
    }

    #[test]
    fn foreign_containers_are_not_nodes() {
        let json = r#"[{"Id": "x", "State": {"Status": "running"}, "Config": {"Labels": null},
            "NetworkSettings": {}}]"#;
        assert!(parse(json).unwrap()[0].to_node().is_none());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn states_map() {
        for (status, state_) in [
            ("running", NodeState::Running),
            ("created", NodeState::Pending),
            ("restarting", NodeState::Pending),
            ("exited", NodeState::Stopped),
            ("paused", NodeState::Stopped),
            ("removing", NodeState::Terminated),
            ("dead", NodeState::Terminated),
        ] {
            assert_eq!(state(status), state_, "{status}");
        }
    }

    #[test]
    fn only_loopback_bindings_count() {
        let b = |ip: &str| PortBinding {
            host_ip: ip.into(),
            host_port: "2222".into(),
        };
        assert_eq!(loopback_addr(&b("0.0.0.0")), Some("127.0.0.1:2222".parse().unwrap()));
        assert_eq!(loopback_addr(&b("")), Some("127.0.0.1:2222".parse().unwrap()));
        assert_eq!(loopback_addr(&b("10.1.2.3")), None);
    }
}
