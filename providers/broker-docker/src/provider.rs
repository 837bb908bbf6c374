//! [`DockerProvider`]: the [`Provider`] contract on the local Docker engine.
//!
//! Container names carry a short hash of the launch token
//! (`broker-<cluster>-<rank>-<hash>`), so a crashed attempt never blocks the next one by name;
//! idempotency comes from looking the token up by label before creating anything.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use broker_provider::{
    Cloud, ClusterName, LaunchSpec, Node, NodeState, Offer, Provider, ProviderError, Readiness, Teardown,
};
use tokio::task::JoinSet;

use crate::classify::{CliFailure, Kind};
use crate::cli::Docker;
use crate::inspect::{self, Container};
use crate::offers::{self, Host, Size};
use crate::{DockerConfig, labels, network_name};

/// Label holding the first rank of the attempt that created a node, so that a resent launch
/// whose first run died half-way knows which ranks are still missing.
const BASE_RANK: &str = "broker.base-rank";

/// How long `terminate` waits for removals by a concurrent caller to finish.
const TEARDOWN_DEADLINE: Duration = Duration::from_mins(1);
const POLL: Duration = Duration::from_millis(200);

/// The local Docker engine as a cloud.
#[derive(Debug)]
pub struct DockerProvider {
    pub(crate) config: DockerConfig,
    pub(crate) docker: Docker,
    host: Host,
    /// What nodes get of the host's engine; `None` when sharing is off or impossible.
    engine: Option<SharedEngine>,
}

/// The host's engine as a node sees it (see [`DockerConfig::share_engine`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SharedEngine {
    /// The engine's socket on the host, mounted at `/var/run/docker.sock` in the node.
    socket: PathBuf,
    /// The host's docker CLI, mounted read-only at `/usr/local/bin/docker` (a static Go binary
    /// on Debian and in Docker's packages, so it runs in the Debian node).
    cli: PathBuf,
    /// Where the per-node shared directories go: `<root>/nodes/<cluster>/<container>`.
    root: PathBuf,
}

impl SharedEngine {
    fn detect(config: &DockerConfig) -> Option<Self> {
        if !config.share_engine {
            return None;
        }
        let socket = match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.is_empty() => PathBuf::from(host.strip_prefix("unix://")?),
            _ => PathBuf::from("/var/run/docker.sock"),
        };
        if !socket.exists() {
            return None;
        }
        let cli = find_program(&config.docker)?;
        Some(Self {
            socket,
            cli,
            root: config.state_dir.clone(),
        })
    }

    fn cluster_dir(&self, cluster: &ClusterName) -> PathBuf {
        self.root.join("nodes").join(cluster.as_str())
    }
}

/// `program` as an absolute path with symlinks resolved: as given when it has a `/`, else the
/// first match on `PATH`.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.canonicalize().ok();
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .and_then(|path| path.canonicalize().ok())
}

impl DockerProvider {
    /// A provider for the engine the docker CLI talks to (`DOCKER_HOST` and contexts apply).
    pub fn new(config: DockerConfig) -> Self {
        let docker = Docker {
            bin: config.docker.clone(),
        };
        Self {
            engine: SharedEngine::detect(&config),
            config,
            docker,
            host: Host::detect(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// One free CPU offer per power-of-two size that fits on this host (`docker-cpu-1`, ...).
    pub fn offers(&self) -> Vec<Offer> {
        offers::offers(self.host)
    }

    /// Ids of the containers matching every `label=` filter, stopped ones included.
    async fn ids(&self, filters: &[String]) -> Result<Vec<String>, ProviderError> {
        let mut args = vec!["ps".to_owned(), "-a".into(), "-q".into(), "--no-trunc".into()];
        for filter in filters {
            args.push("--filter".into());
            args.push(filter.clone());
        }
        let out = self.docker.run(&args).await.map_err(|e| e.into_error(None))?;
        Ok(out.split_whitespace().map(str::to_owned).collect())
    }

    /// The containers matching the filters, inspected.
    async fn containers(&self, filters: &[String]) -> Result<Vec<Container>, ProviderError> {
        let ids = self.ids(filters).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["inspect".to_owned(), "--type".into(), "container".into()];
        args.extend(ids);
        let json = match self.docker.run(&args).await {
            Ok(json) => json,
            // Removed between `ps` and `inspect`: docker still prints the others.
            Err(e) if e.kind == Kind::NoSuchContainer => e.stdout,
            Err(e) => return Err(e.into_error(None)),
        };
        inspect::parse(&json).map_err(|e| ProviderError::Other {
            cloud: Cloud::Docker,
            source: format!("unexpected `docker inspect` output: {e}").into(),
        })
    }

    async fn nodes_matching(&self, filters: &[String]) -> Result<Vec<Node>, ProviderError> {
        let mut nodes: Vec<Node> = self
            .containers(filters)
            .await?
            .iter()
            .filter_map(Container::to_node)
            .collect();
        nodes.sort_by(|a, b| (&a.cluster, a.rank, &a.id).cmp(&(&b.cluster, b.rank, &b.id)));
        Ok(nodes)
    }

    /// The size to give the containers, or why the spec cannot be launched here.
    fn validate(&self, spec: &LaunchSpec) -> Result<Size, ProviderError> {
        let invalid = |message: String| ProviderError::Invalid {
            cloud: Cloud::Docker,
            message,
        };
        if spec.spot {
            return Err(invalid("the docker cloud has no spot market".into()));
        }
        if spec.location.region != "local" || spec.location.zone.is_some() {
            return Err(invalid(format!(
                "the docker cloud has one location, `local`, not `{}`",
                spec.location
            )));
        }
        if spec.count == 0 {
            return Err(invalid("a cluster needs at least one node".into()));
        }
        if let Some(key) = spec.labels.keys().find(|k| k.is_empty() || k.contains('=')) {
            return Err(invalid(format!("label key `{key}` is empty or contains `=`")));
        }
        offers::size(&spec.instance_type, self.host).ok_or_else(|| {
            invalid(format!(
                "unknown instance type `{}`: the docker cloud sells {}N with N from 1 to {} (this host's CPUs)",
                spec.instance_type,
                offers::PREFIX,
                self.host.cpus
            ))
        })
    }

    /// Creates the cluster's network unless it exists.
    async fn ensure_network(&self, cluster: &ClusterName) -> Result<(), ProviderError> {
        let args = [
            "network".to_owned(),
            "create".into(),
            "--label".into(),
            format!("{}=1", labels::MANAGED),
            "--label".into(),
            format!("{}={cluster}", labels::CLUSTER),
            network_name(cluster),
        ];
        match self.docker.run(&args).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind == Kind::NetworkExists => Ok(()),
            Err(e) => Err(e.into_error(None)),
        }
    }

    async fn remove_network(&self, cluster: &ClusterName) -> Result<(), ProviderError> {
        let deadline = Instant::now() + TEARDOWN_DEADLINE;
        loop {
            match self.docker.run(["network", "rm", network_name(cluster).as_str()]).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind == Kind::NoSuchNetwork => return Ok(()),
                // Containers removed by a concurrent teardown may still be detaching.
                Err(e) if e.kind == Kind::ActiveEndpoints && Instant::now() < deadline => {
                    tokio::time::sleep(POLL).await;
                }
                Err(e) => return Err(e.into_error(None)),
            }
        }
    }
}

fn label_filter(key: &str, value: &str) -> String {
    format!("label={key}={value}")
}

fn managed_filter() -> String {
    label_filter(labels::MANAGED, "1")
}

/// 8 hex digits of FNV-1a over the token: stable, always a valid name part, and different for
/// tokens that share a long prefix (`c1-attempt-1`, `c1-attempt-2`).
fn token_tag(token: &str) -> String {
    let hash = token.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:08x}", hash >> 32)
}

/// The file a node with a shared directory `dir` finds at `/etc/broker/node.env`: `KEY=VALUE`
/// lines with `BROKER_SHARED_DIR` and `BROKER_NODE_CONTAINER`. A file, not `-e`: SSH sessions
/// do not see the container's environment, and sshd overwrites its own.
fn node_file(dir: &Path) -> PathBuf {
    dir.with_extension("env")
}

/// The container name of a node.
fn container_name(spec: &LaunchSpec, rank: u32) -> String {
    format!("broker-{}-{rank}-{}", spec.cluster, token_tag(&spec.token.0))
}

/// The `docker run` arguments for one node; `shared` is the host's engine and the node's shared
/// directory when the node gets them.
fn run_args(
    spec: &LaunchSpec,
    rank: u32,
    base_rank: u32,
    size: Size,
    image: &str,
    shared: Option<(&SharedEngine, &Path)>,
) -> Vec<String> {
    let cluster = &spec.cluster;
    let name = container_name(spec, rank);
    let mut args: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        // Never reach for a registry: a missing image is reported, not pulled.
        "--pull".into(),
        "never".into(),
        "--name".into(),
        name.clone(),
        "--hostname".into(),
        format!("broker-{cluster}-{rank}"),
        "--network".into(),
        network_name(cluster),
    ];
    let mut label = |key: &str, value: &str| {
        args.push("--label".into());
        args.push(format!("{key}={value}"));
    };
    label(labels::MANAGED, "1");
    label(labels::CLUSTER, cluster.as_str());
    label(labels::RANK, &rank.to_string());
    label(labels::TOKEN, &spec.token.0);
    label(BASE_RANK, &base_rank.to_string());
    for (key, value) in &spec.labels {
        label(&format!("{}{key}", labels::USER_PREFIX), value);
    }
    args.extend([
        // SSH on loopback only, on a port the engine picks.
        "-p".into(),
        "127.0.0.1::22".into(),
        "-e".into(),
        format!("BROKER_AUTHORIZED_KEY={}", spec.ssh_public_key.trim()),
        "--restart".into(),
        "no".into(),
    ]);
    if let Some((engine, dir)) = shared {
        // The agent reads where things are from this file (see agent.sh and `node_file`).
        let file = node_file(dir);
        let dir = dir.display();
        args.extend([
            "-v".into(),
            format!("{}:/var/run/docker.sock", engine.socket.display()),
            "-v".into(),
            format!("{}:/usr/local/bin/docker:ro", engine.cli.display()),
            "-v".into(),
            format!("{dir}:{dir}"),
            "-v".into(),
            format!("{}:/etc/broker/node.env:ro", file.display()),
        ]);
    }
    args.extend([
        "--cpus".into(),
        size.cpus.to_string(),
        "--memory".into(),
        format!("{}m", size.memory_mib),
    ]);
    match spec.max_run_seconds {
        None => args.push(image.into()),
        Some(seconds) => {
            // The deadline is armed by the node's own PID 1 at boot, before any SSH: it holds
            // whatever happens to the broker that launched it. `--rm` makes "exited" mean
            // "gone", as a terminated VM is.
            args.splice(2..2, ["--rm".to_owned()]);
            args.extend([
                "--entrypoint".into(),
                "/bin/sh".into(),
                image.into(),
                "-c".into(),
                deadline_script(cluster, seconds),
            ]);
        }
    }
    args
}

/// The boot script of a node with a deadline: a background timer that, when it fires, removes
/// the job containers the node started on the shared engine (they would outlive it) and stops
/// PID 1 (sshd), which ends the container; then the usual entrypoint.
fn deadline_script(cluster: &ClusterName, seconds: u64) -> String {
    // `cluster` is a validated name ([a-z0-9-]), safe inside the script as it is.
    format!(
        "(sleep {seconds}; \
          if command -v docker >/dev/null 2>&1 && [ -S /var/run/docker.sock ]; then \
            docker ps -q --filter label=broker.job --filter label=broker.cluster={cluster} | xargs -r docker rm -f; \
          fi; \
          kill -TERM 1) >/dev/null 2>&1 & \
         exec /usr/local/sbin/broker-node-entrypoint"
    )
}

impl fmt::Display for DockerProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Docker(local)")
    }
}

#[async_trait]
impl Provider for DockerProvider {
    fn cloud(&self) -> Cloud {
        Cloud::Docker
    }

    async fn check(&self) -> Result<Readiness, ProviderError> {
        let version = self
            .docker
            .run(["version", "--format", "{{.Server.Version}}"])
            .await
            .map_err(|e| e.into_error(None))?;
        Ok(Readiness {
            identity: format!("docker {} (local)", version.trim()),
        })
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Vec<Node>, ProviderError> {
        let size = self.validate(spec)?;
        let image = spec.image.as_deref().unwrap_or(&self.config.image);
        let cluster_filters = [managed_filter(), label_filter(labels::CLUSTER, spec.cluster.as_str())];
        let existing = self.containers(&cluster_filters).await?;
        let (mine, others): (Vec<_>, Vec<_>) = existing
            .into_iter()
            .partition(|c| c.label(labels::TOKEN) == Some(spec.token.0.as_str()));
        // A new attempt numbers its nodes after those of earlier attempts, so ranks stay unique
        // in the cluster; a resend keeps the numbering its first try chose.
        let base_rank = mine
            .iter()
            .find_map(|c| c.label(BASE_RANK)?.parse().ok())
            .unwrap_or_else(|| others.iter().filter_map(Container::rank).max().map_or(0, |r| r + 1));
        let have: Vec<u32> = mine.iter().filter_map(Container::rank).collect();
        let missing: Vec<u32> = (base_rank..base_rank + spec.count)
            .filter(|r| !have.contains(r))
            .collect();

        if !missing.is_empty() {
            self.ensure_network(&spec.cluster).await?;
            // Each node's shared directory exists before its container: docker would create a
            // missing one, but owned by the engine's user.
            let mut dirs = Vec::new();
            for &rank in &missing {
                let dir = self
                    .engine
                    .as_ref()
                    .map(|engine| engine.cluster_dir(&spec.cluster).join(container_name(spec, rank)));
                if let Some(dir) = &dir {
                    let contents = format!(
                        "BROKER_SHARED_DIR={}\nBROKER_NODE_CONTAINER={}\n",
                        dir.display(),
                        container_name(spec, rank)
                    );
                    std::fs::create_dir_all(dir)
                        .and_then(|()| std::fs::write(node_file(dir), contents))
                        .map_err(|e| ProviderError::Other {
                            cloud: Cloud::Docker,
                            source: format!("creating {}: {e}", dir.display()).into(),
                        })?;
                }
                dirs.push(dir);
            }
            let mut runs = JoinSet::new();
            for (rank, dir) in missing.into_iter().zip(dirs) {
                let docker = self.docker.clone();
                let shared = self.engine.as_ref().zip(dir.as_deref());
                let args = run_args(spec, rank, base_rank, size, image, shared);
                runs.spawn(async move { docker.run(&args).await });
            }
            let mut failure: Option<CliFailure> = None;
            while let Some(joined) = runs.join_next().await {
                match joined {
                    Ok(Ok(_)) => {}
                    // The same attempt, resent concurrently, created this node first: it is ours.
                    Ok(Err(e)) if e.kind == Kind::NameInUse => {}
                    Ok(Err(e)) => {
                        failure.get_or_insert(e);
                    }
                    Err(join) => {
                        return Err(ProviderError::Other {
                            cloud: Cloud::Docker,
                            source: Box::new(join),
                        });
                    }
                }
            }
            // Nodes that did start stay tagged: `terminate` or a resend with this token finds them.
            if let Some(e) = failure {
                return Err(e.into_error(Some(spec)));
            }
        }

        let token_filters = [
            managed_filter(),
            label_filter(labels::CLUSTER, spec.cluster.as_str()),
            label_filter(labels::TOKEN, &spec.token.0),
        ];
        let nodes = self.nodes_matching(&token_filters).await?;
        if nodes.len() < spec.count as usize {
            return Err(ProviderError::Other {
                cloud: Cloud::Docker,
                source: format!(
                    "launched {} of {} nodes of {}: the others vanished (removed concurrently?)",
                    nodes.len(),
                    spec.count,
                    spec.cluster
                )
                .into(),
            });
        }
        Ok(nodes)
    }

    async fn nodes(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
        self.nodes_matching(&[managed_filter(), label_filter(labels::CLUSTER, cluster.as_str())])
            .await
    }

    async fn terminate(&self, cluster: &ClusterName) -> Result<Teardown, ProviderError> {
        let filters = [managed_filter(), label_filter(labels::CLUSTER, cluster.as_str())];
        let ids = self.ids(&filters).await?;
        if !ids.is_empty() {
            let mut args = vec!["rm".to_owned(), "-f".into()];
            args.extend(ids.iter().cloned());
            match self.docker.run(&args).await {
                Ok(_) => {}
                // A concurrent teardown got there first.
                Err(e) if matches!(e.kind, Kind::NoSuchContainer | Kind::RemovalInProgress) => {}
                Err(e) => return Err(e.into_error(None)),
            }
            // `rm -f` of a container another caller is removing returns at once; wait, so that
            // "terminated" means gone.
            let deadline = Instant::now() + TEARDOWN_DEADLINE;
            while !self.ids(&filters).await?.is_empty() {
                if Instant::now() >= deadline {
                    return Err(ProviderError::Transient {
                        cloud: Cloud::Docker,
                        attempts: 1,
                        source: format!("containers of {cluster} still exist after `docker rm -f`").into(),
                    });
                }
                tokio::time::sleep(POLL).await;
            }
        }
        self.remove_network(cluster).await?;
        if let Some(engine) = &self.engine {
            // The nodes' shared directories (their job files and workdirs).
            match std::fs::remove_dir_all(engine.cluster_dir(cluster)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ProviderError::Other {
                        cloud: Cloud::Docker,
                        source: format!("removing the shared directories of {cluster}: {e}").into(),
                    });
                }
            }
        }
        Ok(if ids.is_empty() {
            Teardown::AlreadyGone
        } else {
            Teardown::Terminated(ids)
        })
    }

    async fn sweep(&self) -> Result<Vec<Node>, ProviderError> {
        self.nodes_matching(&[managed_filter()]).await
    }

    /// `docker stop` of every container of the cluster: its nodes and any job containers they
    /// started on this engine (those are `--rm`, so stopping them removes them).
    async fn stop(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
        let filters = [managed_filter(), label_filter(labels::CLUSTER, cluster.as_str())];
        let ids = self.ids(&filters).await?;
        if !ids.is_empty() {
            let mut args = vec!["stop".to_owned(), "-t".into(), "10".into()];
            args.extend(ids);
            match self.docker.run(&args).await {
                Ok(_) => {}
                // A job container that ended meanwhile removed itself.
                Err(e) if matches!(e.kind, Kind::NoSuchContainer | Kind::RemovalInProgress) => {}
                Err(e) => return Err(e.into_error(None)),
            }
        }
        self.nodes(cluster).await
    }

    /// `docker start` of the cluster's stopped nodes. Each gets a new SSH port on 127.0.0.1
    /// (published ports are re-assigned on start), which the returned nodes carry.
    async fn start(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
        let nodes = self.nodes(cluster).await?;
        if nodes.is_empty() {
            return Err(ProviderError::NotFound {
                cloud: Cloud::Docker,
                what: format!("nodes of cluster {cluster}"),
            });
        }
        let stopped: Vec<String> = nodes
            .iter()
            .filter(|n| n.state != NodeState::Running)
            .map(|n| n.id.clone())
            .collect();
        if !stopped.is_empty() {
            let mut args = vec!["start".to_owned()];
            args.extend(stopped);
            self.docker.run(&args).await.map_err(|e| e.into_error(None))?;
        }
        self.nodes(cluster).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use broker_provider::LaunchToken;

    use super::*;

    fn spec(instance_type: &str) -> LaunchSpec {
        let mut offer = offers::offers(Host {
            cpus: 4,
            memory_mib: None,
        })
        .remove(0);
        offer.instance_type = instance_type.to_owned().into();
        LaunchSpec::new("train".parse().unwrap(), LaunchToken("tok-1".into()), &offer, 2, false)
            .with_ssh_public_key("ssh-ed25519 AAAA test\n")
            .with_labels(BTreeMap::from([("team".to_owned(), "ml".to_owned())]))
    }

    fn provider() -> DockerProvider {
        let mut p = DockerProvider::new(DockerConfig::default());
        p.host = Host {
            cpus: 4,
            memory_mib: Some(32 * 1024),
        };
        p
    }

    #[test]
    fn run_args_tag_size_and_publish_on_loopback() {
        let size = provider().validate(&spec("docker-cpu-2")).unwrap();
        let args = run_args(&spec("docker-cpu-2"), 3, 2, size, "broker-node:1", None);
        assert!(!args.join(" ").contains("docker.sock"), "sharing is opt-in per call");
        let joined = args.join(" ");
        for part in [
            "run -d --pull never",
            &format!("--name broker-train-3-{}", token_tag("tok-1")),
            "--hostname broker-train-3",
            "--network broker-train",
            "--label broker.managed=1",
            "--label broker.cluster=train",
            "--label broker.rank=3",
            "--label broker.token=tok-1",
            "--label broker.base-rank=2",
            "--label broker.label.team=ml",
            "-p 127.0.0.1::22",
            "--restart no",
            "--cpus 2 --memory 8192m broker-node:1",
        ] {
            assert!(joined.contains(part), "{part} not in {joined}");
        }
        assert!(args.contains(&"BROKER_AUTHORIZED_KEY=ssh-ed25519 AAAA test".to_owned()));
        assert_eq!(args.last().map(String::as_str), Some("broker-node:1"));
    }

    #[test]
    fn a_shared_engine_mounts_socket_cli_and_the_node_dir_at_the_same_path() {
        let size = provider().validate(&spec("docker-cpu-1")).unwrap();
        let engine = SharedEngine {
            socket: "/var/run/docker.sock".into(),
            cli: "/usr/bin/docker".into(),
            root: "/tmp/bd".into(),
        };
        let dir = engine.cluster_dir(&"train".parse().unwrap()).join("n0");
        let args = run_args(&spec("docker-cpu-1"), 0, 0, size, "img", Some((&engine, &dir)));
        let joined = args.join(" ");
        for part in [
            "-v /var/run/docker.sock:/var/run/docker.sock",
            "-v /usr/bin/docker:/usr/local/bin/docker:ro",
            "-v /tmp/bd/nodes/train/n0:/tmp/bd/nodes/train/n0",
            "-v /tmp/bd/nodes/train/n0.env:/etc/broker/node.env:ro",
        ] {
            assert!(joined.contains(part), "{part} not in {joined}");
        }
        assert_eq!(args.last().map(String::as_str), Some("img"));
    }

    #[test]
    fn a_deadline_is_armed_at_boot_and_the_node_removes_itself() {
        let size = provider().validate(&spec("docker-cpu-1")).unwrap();
        let with = spec("docker-cpu-1").with_max_run_seconds(Some(20));
        let args = run_args(&with, 0, 0, size, "img", None);
        assert_eq!(&args[..3], ["run", "-d", "--rm"]);
        let image_at = args.iter().position(|a| a == "img").unwrap();
        assert_eq!(&args[image_at - 2..image_at], ["--entrypoint", "/bin/sh"]);
        assert_eq!(args[image_at + 1], "-c");
        let script = &args[image_at + 2];
        assert!(script.starts_with("(sleep 20;"), "{script}");
        assert!(script.contains("kill -TERM 1"), "{script}");
        assert!(
            script.ends_with("exec /usr/local/sbin/broker-node-entrypoint"),
            "{script}"
        );
        let without = run_args(&spec("docker-cpu-1"), 0, 0, size, "img", None);
        assert!(!without.contains(&"--rm".to_owned()) && without.last().unwrap() == "img");
    }

    #[test]
    fn sharing_the_engine_can_be_turned_off() {
        let config = DockerConfig {
            share_engine: false,
            ..DockerConfig::default()
        };
        assert_eq!(SharedEngine::detect(&config), None);
    }

    #[test]
    fn token_tags_differ_for_similar_tokens() {
        let a = token_tag("c1-attempt-1");
        assert_eq!(a.len(), 8);
        assert_ne!(a, token_tag("c1-attempt-2"));
        assert_eq!(a, token_tag("c1-attempt-1"));
    }

    #[test]
    fn unlaunchable_specs_are_invalid() {
        let p = provider();
        let mut spot = spec("docker-cpu-1");
        spot.spot = true;
        let err = p.validate(&spot).unwrap_err();
        assert!(err.to_string().contains("no spot market"), "{err}");
        assert!(p.validate(&spec("docker-cpu-8")).is_err());
        assert!(p.validate(&spec("g5.xlarge")).is_err());
        let mut elsewhere = spec("docker-cpu-1");
        elsewhere.location.region = "us-east-1".into();
        assert!(p.validate(&elsewhere).is_err());
        let mut bad_label = spec("docker-cpu-1");
        bad_label.labels.insert("a=b".into(), "c".into());
        assert!(p.validate(&bad_label).is_err());
    }

    #[test]
    fn displays_as_the_local_cloud() {
        assert_eq!(provider().to_string(), "Docker(local)");
        assert_eq!(provider().cloud(), Cloud::Docker);
    }
}
