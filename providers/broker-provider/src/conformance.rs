//! The provider contract as executable checks, shared by every provider's integration tests.
//!
//! Each check launches real resources through the provider under test (on its emulator or the
//! local engine), asserts one part of the contract, and terminates what it made even when an
//! assertion fails, so that a red test does not also leak. The checks panic on failure: they are
//! test code, called from `#[test]` functions of each provider crate.
#![allow(clippy::panic, clippy::missing_panics_doc)]

use std::collections::BTreeSet;
use std::future::Future;

use crate::{ClusterName, LaunchSpec, LaunchToken, Node, NodeState, Offer, Provider, Teardown};

/// What a provider's test supplies: an offer that its backend can launch, and names.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// An offer the backend accepts (instance type and location).
    pub offer: Offer,
    /// A public key in OpenSSH format to put on the nodes.
    pub public_key: String,
    /// A prefix unique to this test run, so that parallel runs and leftovers never collide.
    pub prefix: String,
}

impl Fixture {
    /// A cluster name for check `what`.
    pub fn cluster(&self, what: &str) -> ClusterName {
        let name = format!("{}-{what}", self.prefix);
        name.parse()
            .unwrap_or_else(|e| panic!("fixture prefix makes a bad cluster name: {e}"))
    }

    /// A launch spec for `count` nodes of `cluster` under `token`.
    pub fn spec(&self, cluster: &ClusterName, token: &str, count: u32) -> LaunchSpec {
        LaunchSpec::new(
            cluster.clone(),
            LaunchToken(token.to_owned()),
            &self.offer,
            count,
            false,
        )
        .with_ssh_public_key(self.public_key.clone())
        .with_disk_gib(20)
    }
}

/// Runs `body`, then terminates `cluster` whatever happened, then re-raises a failure.
async fn cleaning<F: Future<Output = ()>>(provider: &dyn Provider, cluster: &ClusterName, body: F) {
    let outcome = futures_catch(body).await;
    if let Err(e) = provider.terminate(cluster).await {
        panic!("cleanup: terminating {cluster} failed: {e}");
    }
    if let Err(payload) = outcome {
        std::panic::resume_unwind(payload);
    }
}

/// `catch_unwind` for a future, without an async runtime dependency.
async fn futures_catch<F: Future<Output = ()>>(body: F) -> std::thread::Result<()> {
    use std::panic::AssertUnwindSafe;
    use std::pin::pin;
    use std::task::Poll;
    let mut body = pin!(body);
    std::future::poll_fn(
        move |cx| match std::panic::catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Err(payload) => Poll::Ready(Err(payload)),
        },
    )
    .await
}

fn ids(nodes: &[Node]) -> BTreeSet<String> {
    nodes.iter().map(|n| n.id.clone()).collect()
}

fn live(nodes: Vec<Node>) -> Vec<Node> {
    nodes.into_iter().filter(|n| n.state != NodeState::Terminated).collect()
}

/// A launch makes `count` nodes with ranks 0..count, tagged with the cluster; a second launch
/// with the same token returns the same nodes instead of making more.
pub async fn launch_is_idempotent_per_token(provider: &dyn Provider, fixture: &Fixture) {
    let cluster = fixture.cluster("idem");
    cleaning(provider, &cluster, async {
        let spec = fixture.spec(&cluster, &format!("{cluster}-a1"), 2);
        let first = provider.launch(&spec).await.unwrap_or_else(|e| panic!("launch: {e}"));
        assert_eq!(first.len(), 2, "two nodes asked for: {first:?}");
        let ranks: BTreeSet<u32> = first.iter().map(|n| n.rank).collect();
        assert_eq!(ranks, BTreeSet::from([0, 1]), "ranks 0 and 1: {first:?}");
        assert!(
            first.iter().all(|n| n.cluster == cluster),
            "tagged with the cluster: {first:?}"
        );
        let again = provider.launch(&spec).await.unwrap_or_else(|e| panic!("relaunch: {e}"));
        assert_eq!(ids(&again), ids(&first), "same token, same nodes");
        let found = live(provider.nodes(&cluster).await.unwrap_or_else(|e| panic!("nodes: {e}")));
        assert_eq!(ids(&found), ids(&first), "nothing extra was created");
    })
    .await;
}

/// Terminate ends every node of the cluster, and a second terminate is a success that says the
/// cluster is already gone.
pub async fn terminate_is_idempotent(provider: &dyn Provider, fixture: &Fixture) {
    let cluster = fixture.cluster("term");
    cleaning(provider, &cluster, async {
        let spec = fixture.spec(&cluster, &format!("{cluster}-a1"), 1);
        let nodes = provider.launch(&spec).await.unwrap_or_else(|e| panic!("launch: {e}"));
        match provider.terminate(&cluster).await {
            Ok(Teardown::Terminated(gone)) => {
                assert_eq!(gone.iter().cloned().collect::<BTreeSet<_>>(), ids(&nodes));
            }
            other => panic!("first terminate should terminate {nodes:?}: {other:?}"),
        }
        let left = live(provider.nodes(&cluster).await.unwrap_or_else(|e| panic!("nodes: {e}")));
        assert!(left.is_empty(), "nothing left running: {left:?}");
        match provider.terminate(&cluster).await {
            Ok(Teardown::AlreadyGone) => {}
            other => panic!("a second terminate is AlreadyGone: {other:?}"),
        }
    })
    .await;
}

/// `nodes` finds one cluster's nodes and no other's; `sweep` finds both.
pub async fn discovery_is_by_tag(provider: &dyn Provider, fixture: &Fixture) {
    let one = fixture.cluster("disc-a");
    let two = fixture.cluster("disc-b");
    cleaning(provider, &one, async {
        cleaning(provider, &two, async {
            let a = provider
                .launch(&fixture.spec(&one, &format!("{one}-a1"), 1))
                .await
                .unwrap_or_else(|e| panic!("launch {one}: {e}"));
            let b = provider
                .launch(&fixture.spec(&two, &format!("{two}-a1"), 1))
                .await
                .unwrap_or_else(|e| panic!("launch {two}: {e}"));
            let found = live(provider.nodes(&one).await.unwrap_or_else(|e| panic!("nodes: {e}")));
            assert_eq!(ids(&found), ids(&a), "nodes({one}) is that cluster only");
            let swept = ids(&provider.sweep().await.unwrap_or_else(|e| panic!("sweep: {e}")));
            assert!(
                ids(&a).is_subset(&swept) && ids(&b).is_subset(&swept),
                "sweep finds every broker node: {swept:?}"
            );
        })
        .await;
    })
    .await;
}

/// Runs every check in turn.
pub async fn run_all(provider: &dyn Provider, fixture: &Fixture) {
    launch_is_idempotent_per_token(provider, fixture).await;
    terminate_is_idempotent(provider, fixture).await;
    discovery_is_by_tag(provider, fixture).await;
}
