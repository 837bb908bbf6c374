//! A scripted in-memory provider for tests of the engine's launch, failover and teardown logic.
//!
//! It honours the same contract as a real cloud (idempotent launch per token, idempotent
//! terminate, discovery by cluster) and can be told to fail with capacity or quota errors in
//! chosen places. It is a stand-in for the engine's tests only; each real provider is tested on
//! the wire against an emulator.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::{
    Cloud, ClusterName, FailoverScope, LaunchSpec, Node, NodeState, Provider, ProviderError, Readiness, Teardown,
};

/// A failure to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// No capacity in the matching zone or region.
    Capacity,
    /// A quota exhausted, covering the given scope.
    Quota(FailoverScope),
}

#[derive(Debug, Default)]
struct State {
    clusters: HashMap<ClusterName, Vec<Node>>,
    by_token: HashMap<String, Vec<Node>>,
    /// (region, zone or `None` for the whole region) -> fault.
    faults: Vec<(String, Option<String>, Fault)>,
    launches: Vec<LaunchSpec>,
    next_id: u64,
}

/// A provider that lives in memory.
#[derive(Debug)]
pub struct FakeProvider {
    cloud: Cloud,
    state: Mutex<State>,
}

impl FakeProvider {
    /// An empty fake answering as `cloud`.
    pub fn new(cloud: Cloud) -> Self {
        Self {
            cloud,
            state: Mutex::new(State::default()),
        }
    }

    /// Makes every launch in `region` (or only in `zone` of it) fail with `fault`.
    pub fn fail(&self, region: &str, zone: Option<&str>, fault: Fault) {
        self.lock()
            .faults
            .push((region.to_owned(), zone.map(str::to_owned), fault));
    }

    /// Every launch call received, in order, including failed ones.
    pub fn launches(&self) -> Vec<LaunchSpec> {
        self.lock().launches.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has already failed; keep the data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fault_for(state: &State, spec: &LaunchSpec) -> Option<Fault> {
        state.faults.iter().find_map(|(region, zone, fault)| {
            let zone_matches = match zone {
                None => true,
                Some(z) => spec.location.zone.as_deref() == Some(z.as_str()),
            };
            (region.as_str() == spec.location.region && zone_matches).then(|| fault.clone())
        })
    }
}

impl fmt::Display for FakeProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fake({})", self.cloud)
    }
}

#[async_trait]
impl Provider for FakeProvider {
    fn cloud(&self) -> Cloud {
        self.cloud
    }

    async fn check(&self) -> Result<Readiness, ProviderError> {
        Ok(Readiness {
            identity: "fake".into(),
        })
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Vec<Node>, ProviderError> {
        let mut state = self.lock();
        state.launches.push(spec.clone());
        if let Some(nodes) = state.by_token.get(&spec.token.0) {
            return Ok(nodes.clone());
        }
        match Self::fault_for(&state, spec) {
            Some(Fault::Capacity) => {
                return Err(ProviderError::Capacity {
                    cloud: self.cloud,
                    location: spec.location.clone(),
                    instance_type: spec.instance_type.clone(),
                    message: "injected stockout".into(),
                });
            }
            Some(Fault::Quota(scope)) => {
                return Err(ProviderError::Quota {
                    cloud: self.cloud,
                    quota: "injected".into(),
                    scope,
                    message: "injected quota".into(),
                });
            }
            None => {}
        }
        let mut nodes = Vec::new();
        for rank in 0..spec.count {
            state.next_id += 1;
            nodes.push(Node {
                id: format!("fake-{}", state.next_id),
                cluster: spec.cluster.clone(),
                rank,
                state: NodeState::Running,
                location: spec.location.clone(),
                ssh: None,
                private_ip: None,
            });
        }
        state.by_token.insert(spec.token.0.clone(), nodes.clone());
        state
            .clusters
            .entry(spec.cluster.clone())
            .or_default()
            .extend(nodes.iter().cloned());
        Ok(nodes)
    }

    async fn nodes(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
        Ok(self.lock().clusters.get(cluster).cloned().unwrap_or_default())
    }

    async fn terminate(&self, cluster: &ClusterName) -> Result<Teardown, ProviderError> {
        match self.lock().clusters.remove(cluster) {
            Some(nodes) if !nodes.is_empty() => Ok(Teardown::Terminated(nodes.into_iter().map(|n| n.id).collect())),
            _ => Ok(Teardown::AlreadyGone),
        }
    }

    async fn sweep(&self) -> Result<Vec<Node>, ProviderError> {
        Ok(self.lock().clusters.values().flatten().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LaunchToken, Location, Offer};

    fn spec(zone: &str, token: &str) -> LaunchSpec {
        let offer = Offer {
            cloud: Cloud::Aws,
            instance_type: "g5.xlarge".into(),
            accelerator: None,
            vcpus: None,
            memory_gib: None,
            price: Some(1.0),
            spot_price: None,
            location: Location {
                region: "us-east-1".into(),
                zone: Some(zone.to_owned().into()),
            },
            arch: crate::Arch::X86_64,
        };
        LaunchSpec::new("c1".parse().unwrap(), LaunchToken(token.into()), &offer, 2, false)
    }

    #[tokio::test]
    async fn launch_is_idempotent_per_token_and_terminate_twice_is_fine() {
        let fake = FakeProvider::new(Cloud::Aws);
        let first = fake.launch(&spec("a", "t1")).await.unwrap();
        let again = fake.launch(&spec("a", "t1")).await.unwrap();
        assert_eq!(first, again);
        let cluster = "c1".parse().unwrap();
        assert_eq!(fake.nodes(&cluster).await.unwrap().len(), 2);
        assert!(matches!(fake.terminate(&cluster).await.unwrap(), Teardown::Terminated(ids) if ids.len() == 2));
        assert_eq!(fake.terminate(&cluster).await.unwrap(), Teardown::AlreadyGone);
    }

    #[tokio::test]
    async fn injected_faults_are_classified() {
        let fake = FakeProvider::new(Cloud::Aws);
        fake.fail("us-east-1", Some("a"), Fault::Capacity);
        let err = fake.launch(&spec("a", "t1")).await.unwrap_err();
        assert_eq!(err.failover(), Some(FailoverScope::Zone));
        assert!(fake.launch(&spec("b", "t2")).await.is_ok());
        assert_eq!(fake.launches().len(), 2);
    }
}
