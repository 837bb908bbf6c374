//! Test support: clusters of real nodes on the local Docker engine, always torn down.
//!
//! The test body runs in its own task so that a failed assertion (a panic) still reaches the
//! teardown; the panic is resumed afterwards, so the test fails as it should.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use broker_docker::{DockerConfig, DockerProvider};
use broker_provider::{ClusterName, LaunchSpec, LaunchToken, Provider};
use tempfile::TempDir;

use super::keys::ensure_user_key;
use super::session::SshTarget;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One launched node.
pub(crate) struct TestNode {
    pub(crate) target: SshTarget,
}

/// A launched cluster; its key and known-hosts file live in a temporary broker home.
pub(crate) struct TestCluster {
    pub(crate) nodes: Vec<TestNode>,
}

/// Launches `count` nodes, runs `body`, then terminates the cluster whatever happened.
pub(crate) async fn with_cluster<F, Fut>(count: u32, body: F)
where
    F: FnOnce(TestCluster) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name: ClusterName = format!("ssh-{}-{n}", std::process::id()).parse().unwrap();
    let provider = DockerProvider::new(DockerConfig::from_env());
    provider.ensure_image().await.unwrap();
    let home: TempDir = tempfile::tempdir().unwrap();
    let key = ensure_user_key(home.path()).unwrap();
    let offer = provider.offers().remove(0);
    let spec = LaunchSpec::new(name.clone(), LaunchToken(format!("{name}-t")), &offer, count, false)
        .with_ssh_public_key(key.public.clone());

    let outcome = match provider.launch(&spec).await {
        Ok(nodes) => {
            let known_hosts = home.path().join("clusters").join(name.as_str()).join("known_hosts");
            let nodes = nodes
                .iter()
                .map(|node| {
                    let addr = node.ssh.unwrap();
                    TestNode {
                        target: SshTarget {
                            host: addr.ip().to_string(),
                            port: addr.port(),
                            user: "root".into(),
                            known_hosts: known_hosts.clone(),
                            key: key.private.clone(),
                            proxy_command: None,
                        },
                    }
                })
                .collect();
            let cluster = TestCluster { nodes };
            tokio::spawn(body(cluster))
                .await
                .map_err(tokio::task::JoinError::into_panic)
        }
        Err(e) => Err(Box::new(format!("launch failed: {e}")) as Box<dyn std::any::Any + Send>),
    };
    let teardown = provider.terminate(&name).await;
    drop(home);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    teardown.unwrap();
}
