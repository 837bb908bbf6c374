//! The provider contract on the real local Docker engine, and the node image's sshd.
//!
//! Needs a running Docker engine; the node image is built on first use (about a minute, then
//! cached). Without Docker or debootstrap these tests fail with a hint: they never skip, so a
//! CI machine that lost its engine cannot pass silently.

// Helpers outside `#[test]` functions are test code too: a failed unwrap is a failed test, and
// build progress on stderr is what a person waiting a minute wants to see.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use broker_docker::{DockerConfig, DockerProvider, ImageStatus, network_name};
use broker_provider::{
    ClusterName, ErrorClass, LaunchSpec, LaunchToken, Node, NodeState, Provider, ProviderError, Teardown,
};
use tokio::process::Command;
use tokio::sync::OnceCell;

static IMAGE_READY: OnceCell<ImageStatus> = OnceCell::const_new();
static NEXT_CLUSTER: AtomicU32 = AtomicU32::new(0);

/// `error` with its hint, for a failure message a person can act on.
fn explain(error: &ProviderError) -> String {
    match error {
        ProviderError::Auth { hint, .. } => format!("{error}\nhint: {hint}"),
        other => other.to_string(),
    }
}

/// A provider whose node image exists (built once per test process).
async fn provider() -> DockerProvider {
    let provider = DockerProvider::new(DockerConfig::from_env());
    IMAGE_READY
        .get_or_init(|| async {
            if let Err(e) = provider.check().await {
                panic!("these tests need a running Docker engine: {}", explain(&e));
            }
            let started = Instant::now();
            match provider
                .ensure_image_with_progress(|line| eprintln!("[node image] {line}"))
                .await
            {
                Ok(status) => {
                    eprintln!("node image: {status:?} in {:.1} s", started.elapsed().as_secs_f64());
                    status
                }
                Err(e) => panic!(
                    "cannot build the node image (needs debootstrap: apt-get install -y debootstrap): {}",
                    explain(&e)
                ),
            }
        })
        .await;
    provider
}

/// A unique cluster name that removes whatever the test left behind when dropped, so a failed
/// assertion does not leak containers into the next run.
struct TestCluster {
    name: ClusterName,
}

impl TestCluster {
    fn new(what: &str) -> Self {
        let n = NEXT_CLUSTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("bt{}-{n}-{what}", std::process::id()).parse().unwrap();
        Self { name }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let filter = format!("label=broker.cluster={}", self.name);
        let ids = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .stdout(Stdio::null())
                .status();
        }
        let _ = std::process::Command::new("docker")
            .args(["network", "rm", &network_name(&self.name)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn spec(provider: &DockerProvider, cluster: &TestCluster, token: &str, count: u32) -> LaunchSpec {
    let offer = provider.offers().remove(0);
    LaunchSpec::new(cluster.name.clone(), LaunchToken(token.into()), &offer, count, false)
}

async fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker").args(args).output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

async fn network_exists(cluster: &ClusterName) -> bool {
    docker(&["network", "inspect", &network_name(cluster)]).await.0
}

async fn containers_of(cluster: &ClusterName) -> usize {
    let filter = format!("label=broker.cluster={cluster}");
    docker(&["ps", "-aq", "--filter", &filter])
        .await
        .1
        .split_whitespace()
        .count()
}

fn ids(nodes: &[Node]) -> Vec<&str> {
    nodes.iter().map(|n| n.id.as_str()).collect()
}

#[tokio::test]
async fn check_names_the_engine() {
    let provider = provider().await;
    let ready = provider.check().await.unwrap();
    assert!(
        ready.identity.starts_with("docker ") && ready.identity.ends_with(" (local)"),
        "{ready:?}"
    );
    assert_eq!(provider.ensure_image().await.unwrap(), ImageStatus::Found);
    assert_eq!(provider.to_string(), "Docker(local)");
}

#[tokio::test]
async fn launch_gives_nodes_on_loopback_with_distinct_private_ips_and_terminate_is_idempotent() {
    let provider = provider().await;
    let cluster = TestCluster::new("basic");
    let nodes = provider.launch(&spec(&provider, &cluster, "t1", 2)).await.unwrap();

    assert_eq!(nodes.iter().map(|n| n.rank).collect::<Vec<_>>(), [0, 1]);
    for node in &nodes {
        assert_eq!(node.cluster, cluster.name);
        assert_eq!(node.state, NodeState::Running);
        assert_eq!(node.location.region, "local");
        assert_eq!(node.location.zone, None);
        let ssh = node.ssh.unwrap();
        assert!(ssh.ip().is_loopback() && ssh.port() != 0, "{ssh}");
        assert!(node.private_ip.is_some(), "{node:?}");
    }
    assert_ne!(nodes[0].private_ip, nodes[1].private_ip);
    assert_ne!(nodes[0].ssh, nodes[1].ssh);
    assert!(network_exists(&cluster.name).await);

    let found = provider.nodes(&cluster.name).await.unwrap();
    assert_eq!(found, nodes);

    let Teardown::Terminated(gone) = provider.terminate(&cluster.name).await.unwrap() else {
        panic!("the first terminate must terminate");
    };
    let mut expected: Vec<String> = ids(&nodes).into_iter().map(str::to_owned).collect();
    let mut gone = gone;
    expected.sort();
    gone.sort();
    assert_eq!(gone, expected);
    assert_eq!(provider.terminate(&cluster.name).await.unwrap(), Teardown::AlreadyGone);
    assert!(provider.nodes(&cluster.name).await.unwrap().is_empty());
    assert_eq!(containers_of(&cluster.name).await, 0);
    assert!(!network_exists(&cluster.name).await);
}

#[tokio::test]
async fn launch_is_idempotent_per_token_and_a_new_token_adds_nodes() {
    let provider = provider().await;
    let cluster = TestCluster::new("idem");
    let first = provider
        .launch(&spec(&provider, &cluster, "attempt-1", 2))
        .await
        .unwrap();
    let again = provider
        .launch(&spec(&provider, &cluster, "attempt-1", 2))
        .await
        .unwrap();
    assert_eq!(ids(&again), ids(&first));
    assert_eq!(containers_of(&cluster.name).await, 2);

    // A crash that lost one node of the attempt: the resend recreates just that one, same rank.
    docker(&["rm", "-f", &first[1].id]).await;
    let healed = provider
        .launch(&spec(&provider, &cluster, "attempt-1", 2))
        .await
        .unwrap();
    assert_eq!(healed.len(), 2);
    assert_eq!(healed[0].id, first[0].id);
    assert_ne!(healed[1].id, first[1].id);
    assert_eq!(healed[1].rank, 1);

    let more = provider
        .launch(&spec(&provider, &cluster, "attempt-2", 1))
        .await
        .unwrap();
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].rank, 2, "a new attempt numbers after the existing nodes");
    let all = provider.nodes(&cluster.name).await.unwrap();
    assert_eq!(all.iter().map(|n| n.rank).collect::<Vec<_>>(), [0, 1, 2]);

    assert!(matches!(provider.terminate(&cluster.name).await.unwrap(), Teardown::Terminated(ids) if ids.len() == 3));
    assert_eq!(containers_of(&cluster.name).await, 0);
}

#[tokio::test]
async fn concurrent_terminates_both_succeed_and_leave_nothing() {
    let provider = provider().await;
    let cluster = TestCluster::new("race");
    provider.launch(&spec(&provider, &cluster, "t", 2)).await.unwrap();
    let (a, b) = tokio::join!(provider.terminate(&cluster.name), provider.terminate(&cluster.name));
    a.unwrap();
    b.unwrap();
    assert_eq!(containers_of(&cluster.name).await, 0);
    assert!(!network_exists(&cluster.name).await);
}

#[tokio::test]
async fn sweep_finds_tagged_containers_with_user_labels() {
    let provider = provider().await;
    let cluster = TestCluster::new("sweep");
    let spec = spec(&provider, &cluster, "t", 1).with_labels(BTreeMap::from([("team".into(), "ml".into())]));
    let nodes = provider.launch(&spec).await.unwrap();
    let swept = provider.sweep().await.unwrap();
    assert!(
        swept.iter().any(|n| n.id == nodes[0].id && n.cluster == cluster.name),
        "{swept:?}"
    );
    let (_, team) = docker(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"broker.label.team\"}}",
        &nodes[0].id,
    ])
    .await;
    assert_eq!(team, "ml");
    provider.terminate(&cluster.name).await.unwrap();
    assert!(
        !provider
            .sweep()
            .await
            .unwrap()
            .iter()
            .any(|n| n.cluster == cluster.name)
    );
}

#[tokio::test]
async fn unlaunchable_requests_are_classified() {
    let provider = provider().await;
    let cluster = TestCluster::new("invalid");
    let mut spot = spec(&provider, &cluster, "t", 1);
    spot.spot = true;
    let err = provider.launch(&spot).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid);
    assert!(err.to_string().contains("no spot market"), "{err}");

    let mut huge = spec(&provider, &cluster, "t", 1);
    huge.instance_type = "docker-cpu-4096".into();
    assert_eq!(provider.launch(&huge).await.unwrap_err().class(), ErrorClass::Invalid);
    assert_eq!(containers_of(&cluster.name).await, 0);

    // A missing image is reported, never pulled.
    let missing = DockerProvider::new(DockerConfig {
        image: "broker-node-missing:0".into(),
        ..DockerConfig::default()
    });
    let err = missing.launch(&spec(&provider, &cluster, "t", 1)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound, "{err}");
    assert_eq!(missing.terminate(&cluster.name).await.unwrap(), Teardown::AlreadyGone);
    assert!(!network_exists(&cluster.name).await);
}

/// `ssh root@127.0.0.1 -p PORT COMMAND` with the test's key and `known_hosts`: (success, stdout).
async fn ssh(dir: &Path, port: u16, command: &str) -> (bool, String) {
    let run = Command::new("ssh")
        .arg("-i")
        .arg(dir.join("key"))
        .args(["-p", &port.to_string()])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", dir.join("known_hosts").display()))
        .args([
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
            "root@127.0.0.1",
            command,
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(20), run).await {
        Ok(Ok(out)) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        ),
        Ok(Err(e)) => panic!("cannot run ssh (apt-get install -y openssh-client): {e}"),
        Err(_) => (false, String::new()),
    }
}

/// Polls until sshd answers `echo ok`, up to a deadline.
async fn wait_for_ssh(dir: &Path, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if ssh(dir, port, "echo ok").await == (true, "ok".to_owned()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sshd on 127.0.0.1:{port} did not accept the key within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn nodes_accept_the_key_and_reach_each_other_by_private_ip() {
    let provider = provider().await;
    let cluster = TestCluster::new("ssh");
    let dir = tempfile::tempdir().unwrap();
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.path().join("key"))
        .status()
        .await
        .expect("ssh-keygen (apt-get install -y openssh-client)");
    assert!(keygen.success());
    let public_key = std::fs::read_to_string(dir.path().join("key.pub")).unwrap();

    let started = Instant::now();
    let nodes = provider
        .launch(&spec(&provider, &cluster, "t", 2).with_ssh_public_key(public_key))
        .await
        .unwrap();
    let ports: Vec<u16> = nodes.iter().map(|n| n.ssh.unwrap().port()).collect();
    for port in &ports {
        wait_for_ssh(dir.path(), *port).await;
    }
    eprintln!(
        "2 nodes launched and answering SSH in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // Rank 0 reaches rank 1's sshd on the cluster network.
    let other = nodes[1].private_ip.unwrap();
    let probe = format!("bash -c 'exec 3<>/dev/tcp/{other}/22 && echo open'");
    assert_eq!(ssh(dir.path(), ports[0], &probe).await, (true, "open".to_owned()));

    // What broker relies on is there: rsync, setsid, a hostname naming the node.
    let (ok, tools) = ssh(dir.path(), ports[0], "command -v rsync setsid bash && hostname").await;
    assert!(ok, "{tools}");
    assert!(tools.ends_with(&format!("broker-{}-0", cluster.name)), "{tools}");

    // Each node made its own host key, and the key variable did not leak into sessions.
    let (_, key0) = ssh(dir.path(), ports[0], "cat /etc/ssh/ssh_host_ed25519_key.pub").await;
    let (_, key1) = ssh(dir.path(), ports[1], "cat /etc/ssh/ssh_host_ed25519_key.pub").await;
    assert!(key0.starts_with("ssh-ed25519 "), "{key0}");
    assert_ne!(key0, key1);
    let (_, env) = ssh(dir.path(), ports[0], "env").await;
    assert!(!env.contains("BROKER_AUTHORIZED_KEY"), "{env}");

    // sshd runs with broker's configuration: key-only root login, room for many sessions.
    let (_, config) = ssh(
        dir.path(),
        ports[0],
        "sshd -T -f /etc/broker/sshd_config 2>/dev/null | grep -E '^(passwordauthentication|permitrootlogin|maxsessions)'",
    )
    .await;
    assert!(config.contains("passwordauthentication no"), "{config}");
    assert!(config.contains("permitrootlogin without-password"), "{config}");
    assert!(config.contains("maxsessions 100"), "{config}");

    provider.terminate(&cluster.name).await.unwrap();
    assert_eq!(containers_of(&cluster.name).await, 0);
}

#[tokio::test]
async fn a_missing_docker_cli_is_an_auth_error_with_a_hint() {
    let provider = DockerProvider::new(DockerConfig {
        docker: "/nonexistent/docker".into(),
        ..DockerConfig::default()
    });
    match provider.check().await {
        Err(ProviderError::Auth { hint, .. }) => assert!(hint.contains("install Docker"), "{hint}"),
        other => panic!("{other:?}"),
    }
}

/// The contract every provider passes, on the real engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_shared_provider_conformance_suite() {
    let provider = provider().await;
    let fixture = broker_provider::conformance::Fixture {
        offer: provider.offers().remove(0),
        public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrokerConformanceTestKeyOnlyxxxxxxxxxxxxxx conformance"
            .into(),
        prefix: format!("cf{}", std::process::id()),
    };
    broker_provider::conformance::run_all(&provider, &fixture).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_then_start_keeps_the_node_and_gives_it_a_reachable_port() {
    let provider = provider().await;
    let cluster = TestCluster::new("stop");
    let nodes = provider.launch(&spec(&provider, &cluster, "stop-t1", 1)).await.unwrap();
    let stopped = provider.stop(&cluster.name).await.unwrap();
    assert_eq!(ids(&stopped), ids(&nodes), "the same node, kept");
    assert!(stopped.iter().all(|n| n.state == NodeState::Stopped), "{stopped:?}");
    // Stopping twice is fine.
    provider.stop(&cluster.name).await.unwrap();

    let started = provider.start(&cluster.name).await.unwrap();
    assert_eq!(ids(&started), ids(&nodes));
    assert!(started.iter().all(|n| n.state == NodeState::Running), "{started:?}");
    let addr = started[0].ssh.expect("a started node has an SSH port");
    assert!(addr.ip().is_loopback(), "{addr}");
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok(),
        "the new port {addr} accepts connections"
    );
    assert!(matches!(
        provider.terminate(&cluster.name).await.unwrap(),
        Teardown::Terminated(_)
    ));
}
