//! [`AwsProvider`]: the [`Provider`] trait on EC2.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ec2::types::Instance;
use broker_provider::{Cloud, ClusterName, LaunchSpec, Node, NodeState, Provider, ProviderError, Readiness, Teardown};
use futures_util::future::try_join_all;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::classify::{Call, code_of, from_sdk};
use crate::client::Clients;
use crate::discover::{self, ALIVE, EXISTING};
use crate::image::Image;
use crate::zones::Zones;
use crate::{AwsConfig, power};

/// broker's EC2 provider.
///
/// Cheap to construct: nothing is read or called until the first operation, which loads the
/// credential chain once. Clients, zone maps, images, key pairs and security groups are
/// looked up once per region and remembered for the provider's life.
#[derive(Debug)]
pub struct AwsProvider {
    pub(crate) clients: Clients,
    pub(crate) zones: Zones,
    regions: OnceCell<Vec<String>>,
    /// Instance type to CPU architecture.
    pub(crate) arches: Mutex<HashMap<String, String>>,
    /// `(region, arch)` to the default image.
    pub(crate) images: Mutex<HashMap<(String, String), Image>>,
    /// Region to the SSH security group's id.
    pub(crate) groups: Mutex<HashMap<String, String>>,
    /// `(region, key pair name)` known to exist.
    pub(crate) key_pairs: Mutex<HashSet<(String, String)>>,
}

/// A cached value, if any. Caches hold plain values, so a poisoned lock is still consistent.
pub(crate) fn cached<K: Eq + Hash, V: Clone>(cache: &Mutex<HashMap<K, V>>, key: &K) -> Option<V> {
    cache.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned()
}

pub(crate) fn remember<K: Eq + Hash, V>(cache: &Mutex<HashMap<K, V>>, key: K, value: V) {
    cache.lock().unwrap_or_else(PoisonError::into_inner).insert(key, value);
}

fn invalid(message: String) -> ProviderError {
    ProviderError::Invalid {
        cloud: Cloud::Aws,
        message,
    }
}

/// Whether `cidr` is `address/prefix` with a prefix that fits the address family.
fn valid_cidr(cidr: &str) -> bool {
    let Some((address, prefix)) = cidr.split_once('/') else {
        return false;
    };
    match (address.parse::<IpAddr>(), prefix.parse::<u8>()) {
        (Ok(IpAddr::V4(_)), Ok(p)) => p <= 32,
        (Ok(IpAddr::V6(_)), Ok(p)) => p <= 128,
        _ => false,
    }
}

/// Polls with a growing delay (immediately, then 250 ms doubling to 5 s) until a deadline.
pub(crate) struct Backoff {
    deadline: Instant,
    delay: Duration,
}

impl Backoff {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self {
            deadline: Instant::now() + timeout,
            delay: Duration::ZERO,
        }
    }

    /// Waits for the next poll; `false` once the deadline has passed.
    pub(crate) async fn next(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.delay.min(self.deadline - now)).await;
        self.delay = (self.delay * 2).clamp(Duration::from_millis(250), Duration::from_secs(5));
        true
    }
}

impl AwsProvider {
    /// A provider for `config`, which is checked here (the CIDR, the endpoint, the region list)
    /// and nowhere later. Makes no call.
    pub fn new(config: AwsConfig) -> Result<Self, ProviderError> {
        if !valid_cidr(&config.ssh_cidr) {
            return Err(invalid(format!(
                "SSH source `{}` is not a CIDR such as `203.0.113.0/24` (set {})",
                config.ssh_cidr,
                crate::config::env::SSH_CIDR
            )));
        }
        if let Some(endpoint) = &config.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(invalid(format!(
                "endpoint `{endpoint}` must be an http:// or https:// URL (set {})",
                crate::config::env::ENDPOINT
            )));
        }
        if config.regions.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid(format!(
                "the region list is empty (set {} to a comma-separated list, or unset it)",
                crate::config::env::REGIONS
            )));
        }
        Ok(Self {
            clients: Clients::new(config),
            zones: Zones::default(),
            regions: OnceCell::new(),
            arches: Mutex::default(),
            images: Mutex::default(),
            groups: Mutex::default(),
            key_pairs: Mutex::default(),
        })
    }

    /// The configuration this provider was made with.
    pub fn config(&self) -> &AwsConfig {
        self.clients.config()
    }

    /// The regions searched for broker's instances: the configured list, else every region
    /// enabled for the account (asked once).
    pub async fn regions(&self) -> Result<Vec<String>, ProviderError> {
        if let Some(regions) = &self.config().regions {
            return Ok(regions.clone());
        }
        self.regions
            .get_or_try_init(|| async {
                let home = self.clients.home_region().await;
                let answer = self
                    .clients
                    .ec2(&home)
                    .await
                    .describe_regions()
                    .send()
                    .await
                    .map_err(|e| from_sdk(e, &Call::region("DescribeRegions", &home)))?;
                Ok(answer
                    .regions()
                    .iter()
                    .filter_map(|r| r.region_name())
                    .map(str::to_owned)
                    .collect())
            })
            .await
            .cloned()
    }

    /// broker's instances in `states`, of one cluster or all, in every searched region.
    pub(crate) async fn search(
        &self,
        cluster: Option<&ClusterName>,
        states: &[&str],
    ) -> Result<Vec<(String, Instance)>, ProviderError> {
        let regions = self.regions().await?;
        let mut filters = discover::managed(cluster);
        filters.push(discover::in_states(states));
        let per_region = try_join_all(regions.iter().map(|region| {
            let filters = filters.clone();
            async move {
                let client = self.clients.ec2(region).await;
                let found = discover::instances(&client, region, filters).await?;
                Ok::<_, ProviderError>(found.into_iter().map(|i| (region.clone(), i)).collect::<Vec<_>>())
            }
        }))
        .await?;
        Ok(per_region.into_iter().flatten().collect())
    }

    /// The nodes of `found`, ordered by cluster, rank and id.
    pub(crate) async fn to_nodes(&self, found: &[(String, Instance)]) -> Result<Vec<Node>, ProviderError> {
        let mut nodes = Vec::with_capacity(found.len());
        for (region, instance) in found {
            let zone = match discover::zone_name(instance) {
                Some(name) => Some(self.zones.id(&self.clients, region, name).await?),
                None => None,
            };
            nodes.extend(discover::to_node(instance, region, zone));
        }
        nodes.sort_by(|a, b| (&a.cluster, a.rank, &a.id).cmp(&(&b.cluster, b.rank, &b.id)));
        Ok(nodes)
    }

    /// The cluster's existing instances, polled until `done` holds for all of them or the
    /// configured wait runs out; then its nodes.
    pub(crate) async fn wait_for(
        &self,
        cluster: &ClusterName,
        what: &str,
        done: impl Fn(&Instance) -> bool,
    ) -> Result<Vec<(String, Instance)>, ProviderError> {
        let timeout = self.config().wait_timeout;
        let mut backoff = Backoff::new(timeout);
        let mut last = Vec::new();
        while backoff.next().await {
            last = self.search(Some(cluster), EXISTING).await?;
            if last.iter().all(|(_, i)| done(i)) {
                return Ok(last);
            }
        }
        let states: BTreeMap<String, String> = last
            .iter()
            .map(|(_, i)| {
                let state = discover::state_name(i).map_or("unknown", |s| s.as_str()).to_owned();
                (i.instance_id().unwrap_or_default().to_owned(), state)
            })
            .collect();
        Err(ProviderError::Transient {
            cloud: Cloud::Aws,
            attempts: 1,
            source: format!(
                "nodes of {cluster} not {what} after {} s: {states:?}",
                timeout.as_secs()
            )
            .into(),
        })
    }
}

impl fmt::Display for AwsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.config().endpoint {
            Some(endpoint) => write!(f, "AWS(EC2 at {endpoint})"),
            None => f.write_str("AWS(EC2)"),
        }
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn cloud(&self) -> Cloud {
        Cloud::Aws
    }

    async fn check(&self) -> Result<Readiness, ProviderError> {
        let home = self.clients.home_region().await;
        let answer = self
            .clients
            .sts()
            .await
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| from_sdk(e, &Call::region("GetCallerIdentity", &home)))?;
        let identity = answer.arn().unwrap_or_default().to_owned();
        Ok(Readiness { identity })
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Vec<Node>, ProviderError> {
        self.launch_spec(spec).await
    }

    async fn nodes(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
        let found = self.search(Some(cluster), EXISTING).await?;
        self.to_nodes(&found).await
    }

    async fn terminate(&self, cluster: &ClusterName) -> Result<Teardown, ProviderError> {
        let found = self.search(Some(cluster), ALIVE).await?;
        if found.is_empty() {
            return Ok(Teardown::AlreadyGone);
        }
        let mut by_region: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (region, instance) in &found {
            if let Some(id) = instance.instance_id() {
                by_region.entry(region).or_default().push(id.to_owned());
            }
        }
        try_join_all(by_region.iter().map(|(region, ids)| async move {
            let answer = self
                .clients
                .ec2(region)
                .await
                .terminate_instances()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await;
            match answer {
                Ok(_) => Ok(()),
                // Gone between the search and now: what was wanted.
                Err(e) if code_of(&e) == Some("InvalidInstanceID.NotFound") => Ok(()),
                Err(e) => Err(from_sdk(e, &Call::region("TerminateInstances", region))),
            }
        }))
        .await?;
        let mut ids: Vec<String> = by_region.into_values().flatten().collect();
        ids.sort();
        Ok(Teardown::Terminated(ids))
    }

    async fn sweep(&self) -> Result<Vec<Node>, ProviderError> {
        let found = self.search(None, EXISTING).await?;
        self.to_nodes(&found).await
    }

    async fn stop(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
        power::stop(self, cluster).await
    }

    async fn start(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
        power::start(self, cluster).await
    }
}

/// Whether an instance is running with an address to reach it on.
pub(crate) fn reachable(instance: &Instance) -> bool {
    discover::node_state(discover::state_name(instance)) == NodeState::Running
        && (instance.public_ip_address().is_some() || instance.private_ip_address().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_the_configuration() {
        assert!(AwsProvider::new(AwsConfig::default()).is_ok());
        for cidr in ["", "10.0.0.0", "10.0.0.0/33", "bad/8", "2001:db8::/129"] {
            let config = AwsConfig {
                ssh_cidr: cidr.into(),
                ..AwsConfig::default()
            };
            let err = AwsProvider::new(config).unwrap_err();
            assert!(err.to_string().contains("BROKER_AWS_SSH_CIDR"), "{cidr}: {err}");
        }
        let config = AwsConfig {
            endpoint: Some("127.0.0.1:5000".into()),
            ..AwsConfig::default()
        };
        assert!(AwsProvider::new(config).is_err());
        let config = AwsConfig {
            regions: Some(Vec::new()),
            ..AwsConfig::default()
        };
        assert!(AwsProvider::new(config).is_err());
    }

    #[test]
    fn displays_the_endpoint_it_talks_to() {
        let provider = AwsProvider::new(AwsConfig::default()).unwrap();
        assert_eq!(provider.to_string(), "AWS(EC2)");
        assert_eq!(provider.cloud(), Cloud::Aws);
        let local = AwsProvider::new(AwsConfig {
            endpoint: Some("http://127.0.0.1:5000".into()),
            ..AwsConfig::default()
        })
        .unwrap();
        assert_eq!(local.to_string(), "AWS(EC2 at http://127.0.0.1:5000)");
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_grows_and_stops_at_the_deadline() {
        let mut backoff = Backoff::new(Duration::from_secs(3));
        let mut polls = 0;
        while backoff.next().await {
            polls += 1;
        }
        // 0, 0.25, 0.5, 1, then the rest of the 3 s: every poll happened before the deadline.
        assert!((4..=6).contains(&polls), "{polls}");
    }
}
