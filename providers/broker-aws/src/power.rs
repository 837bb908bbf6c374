//! `stop` and `start`: compute off and on again, disks kept.
//!
//! EC2 refuses to stop a `pending` instance and to start a `stopping` one
//! (`IncorrectInstanceState`), so each waits for the cluster to leave those in-between states
//! before acting, then waits for the outcome, so that the nodes it returns are stopped, or
//! running with their new addresses.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Instance, InstanceStateName};
use broker_provider::{Cloud, ClusterName, Node, ProviderError};
use futures_util::future::try_join_all;

use crate::classify::{Call, code_of, from_sdk};
use crate::discover::{self, ALIVE};
use crate::provider::{AwsProvider, reachable};

fn is(instance: &Instance, states: &[InstanceStateName]) -> bool {
    discover::state_name(instance).is_some_and(|s| states.contains(s))
}

/// The ids per region of the instances that satisfy `pick`.
fn ids_by_region(found: &[(String, Instance)], pick: impl Fn(&Instance) -> bool) -> BTreeMap<&str, Vec<String>> {
    let mut by_region: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (region, instance) in found {
        if let (true, Some(id)) = (pick(instance), instance.instance_id()) {
            by_region.entry(region).or_default().push(id.to_owned());
        }
    }
    by_region
}

#[derive(Clone, Copy)]
enum Power {
    Stop,
    Start,
}

async fn send(
    provider: &AwsProvider,
    power: Power,
    by_region: BTreeMap<&str, Vec<String>>,
) -> Result<(), ProviderError> {
    try_join_all(by_region.into_iter().map(|(region, ids)| async move {
        let client = provider.clients.ec2(region).await;
        // Terminated meanwhile: nothing left to power.
        let gone = |code: Option<&str>| code == Some("InvalidInstanceID.NotFound");
        match power {
            Power::Stop => match client.stop_instances().set_instance_ids(Some(ids)).send().await {
                Err(e) if !gone(code_of(&e)) => Err(from_sdk(e, &Call::region("StopInstances", region))),
                _ => Ok(()),
            },
            Power::Start => match client.start_instances().set_instance_ids(Some(ids)).send().await {
                Err(e) if !gone(code_of(&e)) => Err(from_sdk(e, &Call::region("StartInstances", region))),
                _ => Ok(()),
            },
        }
    }))
    .await
    .map(|_| ())
}

pub(crate) async fn stop(provider: &AwsProvider, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
    if provider.search(Some(cluster), ALIVE).await?.is_empty() {
        return Ok(Vec::new());
    }
    let settled = provider
        .wait_for(cluster, "settled", |i| !is(i, &[InstanceStateName::Pending]))
        .await?;
    let running = ids_by_region(&settled, |i| is(i, &[InstanceStateName::Running]));
    if !running.is_empty() {
        send(provider, Power::Stop, running).await?;
    }
    let stopped = provider
        .wait_for(cluster, "stopped", |i| {
            !is(
                i,
                &[
                    InstanceStateName::Pending,
                    InstanceStateName::Running,
                    InstanceStateName::Stopping,
                ],
            )
        })
        .await?;
    provider.to_nodes(&stopped).await
}

pub(crate) async fn start(provider: &AwsProvider, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
    if provider.search(Some(cluster), ALIVE).await?.is_empty() {
        return Err(ProviderError::NotFound {
            cloud: Cloud::Aws,
            what: format!("nodes of cluster {cluster}"),
        });
    }
    let settled = provider
        .wait_for(cluster, "settled", |i| !is(i, &[InstanceStateName::Stopping]))
        .await?;
    let stopped = ids_by_region(&settled, |i| is(i, &[InstanceStateName::Stopped]));
    if !stopped.is_empty() {
        send(provider, Power::Start, stopped).await?;
    }
    let running = provider
        .wait_for(cluster, "running", |i| {
            reachable(i) || is(i, &[InstanceStateName::ShuttingDown, InstanceStateName::Terminated])
        })
        .await?;
    provider.to_nodes(&running).await
}
