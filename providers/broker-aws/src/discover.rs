//! Finding broker's instances by tag, and reading them as [`Node`]s.
//!
//! EC2 keeps terminated instances listed for about an hour (moto keeps them for good), so a
//! search asks only for the states in which an instance still exists: `terminated` ones are
//! left out, `shutting-down` ones come back as [`NodeState::Terminated`], which the trait's
//! users treat as gone.

use std::net::{IpAddr, SocketAddr};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};
use broker_provider::{ClusterName, Location, Node, NodeState, ProviderError};

use crate::classify::{Call, from_sdk};
use crate::tags;

/// Every state in which an instance still exists.
pub(crate) const EXISTING: &[&str] = &["pending", "running", "stopping", "stopped", "shutting-down"];

/// The states in which an instance bills or can bill again: what `terminate` ends.
pub(crate) const ALIVE: &[&str] = &["pending", "running", "stopping", "stopped"];

/// Filter on instance state.
pub(crate) fn in_states(states: &[&str]) -> Filter {
    Filter::builder()
        .name("instance-state-name")
        .set_values(Some(states.iter().map(|s| (*s).to_owned()).collect()))
        .build()
}

/// Filters for broker's instances: all of them, or one cluster's.
pub(crate) fn managed(cluster: Option<&ClusterName>) -> Vec<Filter> {
    let mut filters = vec![tags::filter(tags::MANAGED, "1")];
    if let Some(cluster) = cluster {
        filters.push(tags::filter(tags::CLUSTER, cluster.as_str()));
    }
    filters
}

/// broker's state for an EC2 state.
pub(crate) fn node_state(state: Option<&InstanceStateName>) -> NodeState {
    match state {
        Some(InstanceStateName::Running) => NodeState::Running,
        Some(InstanceStateName::Stopping | InstanceStateName::Stopped) => NodeState::Stopped,
        Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated) => NodeState::Terminated,
        // `pending`, or a state added after this SDK was generated: neither usable nor known
        // to be gone.
        _ => NodeState::Pending,
    }
}

pub(crate) fn state_name(instance: &Instance) -> Option<&InstanceStateName> {
    instance.state().and_then(|s| s.name())
}

/// Every instance in `region` matching `filters`, all pages.
pub(crate) async fn instances(
    client: &Client,
    region: &str,
    filters: Vec<Filter>,
) -> Result<Vec<Instance>, ProviderError> {
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = client
            .describe_instances()
            .set_filters(Some(filters.clone()))
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| from_sdk(e, &Call::region("DescribeInstances", region)))?;
        found.extend(page.reservations().iter().flat_map(|r| r.instances().iter().cloned()));
        match page.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => return Ok(found),
        }
    }
}

/// The node an instance is, given its zone's ID; `None` for an instance whose broker tags are
/// unreadable (edited by hand), which is logged and otherwise ignored.
pub(crate) fn to_node(instance: &Instance, region: &str, zone_id: Option<String>) -> Option<Node> {
    let id = instance.instance_id()?.to_owned();
    let cluster = tags::get(instance, tags::CLUSTER).and_then(|c| c.parse::<ClusterName>().ok());
    let rank = tags::get(instance, tags::RANK).and_then(|r| r.parse::<u32>().ok());
    let (Some(cluster), Some(rank)) = (cluster, rank) else {
        tracing::warn!(instance = %id, %region, "a broker instance without a readable cluster or rank tag");
        return None;
    };
    let public = instance.public_ip_address().and_then(|ip| ip.parse::<IpAddr>().ok());
    let private_ip = instance.private_ip_address().and_then(|ip| ip.parse::<IpAddr>().ok());
    let state = node_state(state_name(instance));
    Some(Node {
        id,
        cluster,
        rank,
        state,
        location: Location {
            region: region.to_owned().into(),
            zone: zone_id.map(Into::into),
        },
        // A stopped or terminated instance keeps no public address; a running one without a
        // public address (a private subnet) is reached on its private one.
        ssh: match state {
            NodeState::Running | NodeState::Pending => public.or(private_ip).map(|ip| SocketAddr::new(ip, 22)),
            NodeState::Stopped | NodeState::Terminated => None,
        },
        private_ip,
    })
}

pub(crate) fn zone_name(instance: &Instance) -> Option<&str> {
    instance.placement().and_then(|p| p.availability_zone())
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{InstanceState, Placement, Tag};

    use super::*;

    fn instance(state: InstanceStateName, public: Option<&str>) -> Instance {
        Instance::builder()
            .instance_id("i-0abc")
            .state(InstanceState::builder().name(state).build())
            .set_public_ip_address(public.map(str::to_owned))
            .private_ip_address("10.0.0.5")
            .placement(Placement::builder().availability_zone("us-east-1b").build())
            .tags(Tag::builder().key("broker-cluster").value("train").build())
            .tags(Tag::builder().key("broker-rank").value("1").build())
            .build()
    }

    #[test]
    fn states_map_to_broker_states() {
        for (ec2, broker) in [
            (InstanceStateName::Pending, NodeState::Pending),
            (InstanceStateName::Running, NodeState::Running),
            (InstanceStateName::Stopping, NodeState::Stopped),
            (InstanceStateName::Stopped, NodeState::Stopped),
            (InstanceStateName::ShuttingDown, NodeState::Terminated),
            (InstanceStateName::Terminated, NodeState::Terminated),
        ] {
            assert_eq!(node_state(Some(&ec2)), broker, "{ec2:?}");
        }
    }

    #[test]
    fn a_node_is_reached_on_its_public_address_else_its_private_one() {
        let node = to_node(
            &instance(InstanceStateName::Running, Some("54.1.2.3")),
            "us-east-1",
            Some("use1-az1".into()),
        )
        .unwrap();
        assert_eq!(node.ssh, Some("54.1.2.3:22".parse().unwrap()));
        assert_eq!(node.private_ip, Some("10.0.0.5".parse().unwrap()));
        assert_eq!((node.cluster.as_str(), node.rank), ("train", 1));
        assert_eq!(node.location.zone.as_deref(), Some("use1-az1"));
        assert_eq!(
            zone_name(&instance(InstanceStateName::Running, None)),
            Some("us-east-1b")
        );

        let private = to_node(&instance(InstanceStateName::Running, None), "us-east-1", None).unwrap();
        assert_eq!(private.ssh, Some("10.0.0.5:22".parse().unwrap()));
        let stopped = to_node(&instance(InstanceStateName::Stopped, None), "us-east-1", None).unwrap();
        assert_eq!((stopped.state, stopped.ssh), (NodeState::Stopped, None));
    }

    #[test]
    fn instances_without_broker_tags_are_skipped() {
        let bare = Instance::builder().instance_id("i-1").build();
        assert_eq!(to_node(&bare, "us-east-1", None), None);
    }
}
