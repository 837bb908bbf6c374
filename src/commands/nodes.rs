//! Reaching the nodes of a recorded cluster again (for `logs`, `exec`, `queue`), and following a
//! job on all of them.
//!
//! The host keys pinned at launch stay in `<home>/clusters/<name>/known_hosts`, so a node that
//! presents another key is refused here just as during the launch.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use broker_provider::{Cloud, ClusterName};

use crate::commands::{ExitStatus, UserError};
use crate::config::Config;
use crate::ssh::{self, SshSession, SshTarget, UserKey};
use crate::state::{ClusterRecord, ClusterState, JobRecord, JobState, NodeRecord, StateDb};
use crate::{env, output};

/// How long reaching an already running node may take.
const RECONNECT_DEADLINE: Duration = Duration::from_secs(30);

/// Broker's home directory, or a user error saying how to set it.
pub(super) fn home() -> anyhow::Result<PathBuf> {
    env::broker_home().ok_or_else(|| {
        UserError::new("cannot find broker's home")
            .with_hint("set `BROKER_HOME`")
            .into()
    })
}

/// The cluster's known-hosts file, where launch pinned its nodes' host keys.
pub(super) fn known_hosts(home: &Path, cluster: &ClusterName) -> PathBuf {
    home.join("clusters").join(cluster.as_str()).join("known_hosts")
}

/// The user's settings file under `home`.
pub(super) fn config(home: &Path) -> anyhow::Result<Config> {
    Config::load(&crate::config::path(home)).map_err(|e| {
        UserError::new(e.to_string())
            .with_hint("fix or remove the file; `broker --help` describes its keys")
            .into()
    })
}

/// The settings file of broker's home, or defaults when there is no home to hold one.
pub(super) fn settings() -> anyhow::Result<Config> {
    match env::broker_home() {
        Some(home) => config(&home),
        None => Ok(Config::default()),
    }
}

/// How to log in to a node of `cloud` whose SSH server listens on `addr`: the cloud's login user
/// and, when the settings file names one, its `ProxyCommand`.
pub(super) fn target(addr: SocketAddr, cloud: Cloud, config: &Config, key: &UserKey, known_hosts: &Path) -> SshTarget {
    SshTarget {
        host: addr.ip().to_string(),
        port: addr.port(),
        user: config.ssh_user(cloud),
        known_hosts: known_hosts.to_path_buf(),
        key: key.private.clone(),
        proxy_command: config.cloud(cloud).ssh_proxy_command,
    }
}

/// The recorded cluster named `name`; a user error when there is none or it was torn down.
pub(super) fn cluster(db: &StateDb, name: &str) -> anyhow::Result<ClusterRecord> {
    let unknown = || UserError::new(format!("unknown cluster `{name}`")).with_hint("`broker status` lists clusters");
    let parsed: ClusterName = name.parse().map_err(|_| unknown())?;
    match db.cluster(&parsed)? {
        Some(record) if record.state != ClusterState::TornDown => Ok(record),
        _ => Err(unknown().into()),
    }
}

/// One reachable node of a cluster.
pub(super) struct Connected {
    /// The node as recorded.
    pub(super) node: NodeRecord,
    /// The open connection.
    pub(super) session: SshSession,
}

/// Connects to every node of `cluster`, head first.
pub(super) async fn connect_all(home: &Path, cluster: &ClusterRecord) -> anyhow::Result<Vec<Connected>> {
    connect(home, cluster, &cluster.nodes).await
}

/// Connects to the head node (rank 0) of `cluster`.
pub(super) async fn connect_head(home: &Path, cluster: &ClusterRecord) -> anyhow::Result<Connected> {
    let head: Vec<NodeRecord> = cluster.nodes.iter().filter(|n| n.rank == 0).cloned().collect();
    connect(home, cluster, &head).await?.pop().context("no head node")
}

async fn connect(home: &Path, cluster: &ClusterRecord, nodes: &[NodeRecord]) -> anyhow::Result<Vec<Connected>> {
    let name = &cluster.name;
    if nodes.is_empty() {
        return Err(
            UserError::new(format!("cluster `{name}` has no nodes (state: {})", cluster.state))
                .with_hint(format!(
                    "`broker down {name}` cleans it up; `broker launch` creates a new one"
                ))
                .into(),
        );
    }
    let key = ssh::ensure_user_key(home)?;
    let known_hosts = known_hosts(home, name);
    let config = config(home)?;
    let cloud = cluster.cloud.unwrap_or(Cloud::Docker);
    let mut connected = Vec::with_capacity(nodes.len());
    for node in nodes {
        let addr = node
            .ssh_addr
            .with_context(|| format!("node {} of `{name}` has no recorded SSH address", node.rank))?;
        let session = ssh::connect(&target(addr, cloud, &config, &key, &known_hosts), RECONNECT_DEADLINE)
            .await
            .with_context(|| format!("reaching node {} of `{name}` over SSH", node.rank))?;
        connected.push(Connected {
            node: node.clone(),
            session,
        });
    }
    Ok(connected)
}

/// The job `id` of the cluster, or its latest one; a user error naming the known ids otherwise.
pub(super) fn job(db: &StateDb, cluster: &ClusterName, id: Option<u64>) -> anyhow::Result<JobRecord> {
    let jobs = db.jobs(cluster)?;
    let found = match id {
        Some(id) => jobs.iter().find(|j| j.job_id == id),
        None => jobs.last(),
    };
    if let Some(job) = found {
        return Ok(job.clone());
    }
    let err = if jobs.is_empty() {
        UserError::new(format!("cluster `{cluster}` has no jobs yet"))
            .with_hint(format!("`broker exec {cluster} COMMAND` runs one"))
    } else {
        let ids: Vec<String> = jobs.iter().map(|j| j.job_id.to_string()).collect();
        UserError::new(format!(
            "cluster `{cluster}` has no job {}; its jobs are {}",
            id.unwrap_or_default(),
            ids.join(", ")
        ))
    };
    Err(err.into())
}

/// Streams job `id` on every node until it ends everywhere, records the outcome in the database
/// and returns the job's exit code (the first failing rank's).
pub(super) async fn follow(db: &StateDb, cluster: &ClusterName, nodes: &[Connected], id: u64) -> anyhow::Result<i32> {
    let many = nodes.len() > 1;
    let follows = nodes.iter().map(|n| {
        let rank = n.node.rank;
        async move {
            ssh::follow(&n.session, id, |line| {
                if many {
                    output::job_line(&format!("(rank {rank}) {line}"));
                } else {
                    output::job_line(line);
                }
            })
            .await
            .with_context(|| format!("following job {id} on node {rank}"))
        }
    });
    // Polled together, so every node's output streams as it comes.
    let results = futures_util::future::join_all(follows).await;
    let mut code = 0;
    for result in results {
        let c = match result {
            Ok(c) => c,
            Err(e) => {
                if e.downcast_ref::<ssh::SshError>()
                    .is_some_and(|s| matches!(s, ssh::SshError::JobLost(_)))
                {
                    db.set_job(cluster, id, JobState::Failed, None)?;
                }
                return Err(e);
            }
        };
        if code == 0 && c != 0 {
            code = c;
        }
    }
    let state = if code == 0 {
        JobState::Succeeded
    } else {
        JobState::Failed
    };
    db.set_job(cluster, id, state, Some(code))?;
    Ok(code)
}

/// How broker exits after a job ended with `code`.
pub(super) fn exit_status(code: i32) -> ExitStatus {
    if code == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Job(u8::try_from(code).unwrap_or(1))
    }
}
