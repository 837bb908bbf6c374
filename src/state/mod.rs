//! The state database: what broker has asked the clouds for and what it got back.
//!
//! One `SQLite` file (`~/.broker/state.db`, WAL mode) holds clusters, their nodes, every launch
//! attempt and the jobs run on them. It is the first half of the money-safety protocol: the
//! provisioner writes its intent here before any call that can start billing, so a crash leaves
//! a row that `reconcile` and `teardown` can finish. The cloud stays the source of truth for what
//! exists; this is broker's memory of what it asked for.
//!
//! All SQL lives in this module; callers see typed records only. Secrets never reach the
//! database: there is no column that could hold a task's environment.

mod schema;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker_provider::{Candidate, Cloud, ClusterName, ErrorClass, LaunchToken, Node, NodeState};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A failure of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// `SQLite` itself failed (I/O, locking, constraint).
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The directory holding the database could not be created.
    #[error("cannot create state directory `{path}`: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer broker.
    #[error(
        "state database has schema version {found}, but this broker only knows up to {known}; upgrade broker \
         (refusing to guess at a newer schema, which could lose track of running nodes)"
    )]
    TooNew {
        /// The version found in the file.
        found: usize,
        /// The newest version this build knows.
        known: usize,
    },
    /// No cluster of that name is recorded.
    #[error("no cluster named `{0}` in the state database")]
    UnknownCluster(String),
    /// No node of that rank is recorded for the cluster.
    #[error("cluster `{cluster}` has no node of rank {rank}")]
    UnknownNode {
        /// The cluster.
        cluster: String,
        /// The rank asked for.
        rank: u32,
    },
    /// No job of that id is recorded for the cluster.
    #[error("cluster `{cluster}` has no job {job_id}")]
    UnknownJob {
        /// The cluster.
        cluster: String,
        /// The job id asked for.
        job_id: u64,
    },
    /// A stored value does not parse back (hand-edited file, or a bug).
    #[error("state database holds an unreadable value: {0}")]
    Corrupt(String),
    /// No run of that id is recorded.
    #[error("no run {0} in the run ledger")]
    UnknownRun(i64),
}

/// Defines a string-backed enum stored as text, with `as_str`, `FromStr` and `Display`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The name stored in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = StateError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(StateError::Corrupt(format!(concat!("unknown ", stringify!($name), " `{}`"), other))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

// After `text_enum!`, which it uses.
mod runs;

pub use runs::{RunFilter, RunKind, RunOffer, RunOverrides, RunRecord, RunStart, RunState, unix_now};

text_enum! {
    /// Where a cluster is in its life (DESIGN §6):
    /// `planned -> requesting -> provisioned -> ready -> running -> done -> torn_down`, with
    /// `terminating` on the way down and `failed` when a launch gave up.
    ClusterState {
        /// Chosen by the optimizer, nothing asked of a cloud yet.
        Planned => "planned",
        /// A launch call may be in flight: something may be billing.
        Requesting => "requesting",
        /// The cloud returned node ids.
        Provisioned => "provisioned",
        /// SSH works on every node.
        Ready => "ready",
        /// A job is running.
        Running => "running",
        /// The job finished; nodes may still exist.
        Done => "done",
        /// Stopped by `broker stop`: compute is not billed, disks are.
        Stopped => "stopped",
        /// Teardown has started.
        Terminating => "terminating",
        /// Every resource is gone.
        TornDown => "torn_down",
        /// The launch gave up; resources of a half-done attempt may still exist.
        Failed => "failed",
    }
}

text_enum! {
    /// How a launch attempt ended.
    AttemptOutcome {
        /// Not known yet: the call is in flight, or broker crashed during it.
        Pending => "pending",
        /// Nodes were created.
        Ok => "ok",
        /// No capacity there.
        Capacity => "capacity",
        /// A quota was exhausted.
        Quota => "quota",
        /// Credentials failed.
        Auth => "auth",
        /// Temporary failures outlasted the retries.
        Transient => "transient",
        /// The request was invalid.
        Invalid => "invalid",
        /// Anything else.
        Other => "other",
    }
}

text_enum! {
    /// Where a job is in its life.
    JobState {
        /// Submitted, not started.
        Queued => "queued",
        /// Running.
        Running => "running",
        /// Exited 0.
        Succeeded => "succeeded",
        /// Exited non-zero or could not start.
        Failed => "failed",
        /// Stopped by the user.
        Cancelled => "cancelled",
    }
}

impl AttemptOutcome {
    /// The outcome recorded for a provider failure of this class.
    pub const fn from_class(class: ErrorClass) -> Self {
        match class {
            ErrorClass::Capacity => Self::Capacity,
            ErrorClass::Quota => Self::Quota,
            ErrorClass::Auth => Self::Auth,
            ErrorClass::Transient => Self::Transient,
            ErrorClass::Invalid => Self::Invalid,
            ErrorClass::NotFound | ErrorClass::Other => Self::Other,
        }
    }

    /// Whether an attempt that ended like this may have created resources.
    ///
    /// Capacity, quota, auth and invalid-request errors are refusals before anything is made;
    /// anything else (in flight, succeeded, timed out, unknown) must be assumed to have billed.
    pub const fn may_have_created(self) -> bool {
        matches!(self, Self::Pending | Self::Ok | Self::Transient | Self::Other)
    }
}

impl JobState {
    /// Whether the job has ended.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// A node as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Rank inside the cluster; 0 is the head.
    pub rank: u32,
    /// The provider's id for it.
    pub provider_id: String,
    /// State as last reported by the provider.
    pub state: NodeState,
    /// Where its SSH server listens, once known.
    pub ssh_addr: Option<SocketAddr>,
    /// Address the other nodes reach it on.
    pub private_ip: Option<IpAddr>,
    /// The SSH host key pinned on first contact (OpenSSH public key line).
    pub host_key: Option<String>,
}

/// A cluster as recorded, with its nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRecord {
    /// Its name.
    pub name: ClusterName,
    /// Where it is in its life.
    pub state: ClusterState,
    /// The cloud of the latest attempt; `None` only for a cluster that was never requested.
    pub cloud: Option<Cloud>,
    /// Region of the latest attempt.
    pub region: Option<String>,
    /// Zone of the latest attempt.
    pub zone: Option<String>,
    /// Instance type of the latest attempt.
    pub instance_type: Option<String>,
    /// Spot market or on-demand.
    pub spot: bool,
    /// Nodes asked for.
    pub num_nodes: u32,
    /// USD per hour for all nodes, as planned.
    pub hourly_total: Option<f64>,
    /// Unix seconds when first recorded.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// The task it was launched for, if named.
    pub task_name: Option<String>,
    /// Its nodes, by rank.
    pub nodes: Vec<NodeRecord>,
}

/// One launch attempt as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Row id, as returned by [`StateDb::record_intent`].
    pub id: i64,
    /// The cluster.
    pub cluster: String,
    /// The launch token sent with it.
    pub token: LaunchToken,
    /// Where it was tried.
    pub cloud: Cloud,
    /// Region.
    pub region: String,
    /// Zone, for clouds that have them.
    pub zone: Option<String>,
    /// Instance type.
    pub instance_type: String,
    /// Spot market or on-demand.
    pub spot: bool,
    /// Unix seconds when it was recorded (before the call).
    pub started_at: i64,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The provider's message, for failures.
    pub message: Option<String>,
}

/// One job as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// The cluster it runs on.
    pub cluster: String,
    /// Its id, counting from 1 per cluster.
    pub job_id: u64,
    /// Its name.
    pub name: String,
    /// Where it is in its life.
    pub state: JobState,
    /// Exit code, once ended.
    pub exit_code: Option<i32>,
    /// Unix seconds when submitted.
    pub submitted_at: i64,
    /// Unix seconds when it ended.
    pub ended_at: Option<i64>,
}

/// The state database.
///
/// The connection sits behind a mutex so a `&StateDb` can be shared by async tasks; every call is
/// a few small statements, so blocking on it briefly is cheaper than a thread hop. The lock is
/// never held across an `.await` (no method is async).
#[derive(Debug)]
pub struct StateDb {
    conn: Mutex<Connection>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn parse<T: FromStr>(what: &str, text: &str) -> Result<T, StateError> {
    text.parse()
        .map_err(|_| StateError::Corrupt(format!("{what} `{text}` does not parse")))
}

fn node_state_str(state: NodeState) -> &'static str {
    match state {
        NodeState::Pending => "pending",
        NodeState::Running => "running",
        NodeState::Stopped => "stopped",
        NodeState::Terminated => "terminated",
    }
}

fn node_state_from(text: &str) -> Result<NodeState, StateError> {
    match text {
        "pending" => Ok(NodeState::Pending),
        "running" => Ok(NodeState::Running),
        "stopped" => Ok(NodeState::Stopped),
        "terminated" => Ok(NodeState::Terminated),
        other => Err(StateError::Corrupt(format!("unknown node state `{other}`"))),
    }
}

/// Raw column values of a `clusters` row, parsed outside the row closure so parse errors keep
/// their own type instead of being squeezed into `rusqlite::Error`.
struct ClusterRow {
    name: String,
    state: String,
    cloud: Option<String>,
    region: Option<String>,
    zone: Option<String>,
    instance_type: Option<String>,
    spot: bool,
    num_nodes: i64,
    hourly_total: Option<f64>,
    created_at: i64,
    updated_at: i64,
    task_name: Option<String>,
}

const CLUSTER_COLUMNS: &str = "name, state, cloud, region, zone, instance_type, spot, num_nodes, hourly_total, \
                               created_at, updated_at, task_name";

impl ClusterRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            name: row.get(0)?,
            state: row.get(1)?,
            cloud: row.get(2)?,
            region: row.get(3)?,
            zone: row.get(4)?,
            instance_type: row.get(5)?,
            spot: row.get(6)?,
            num_nodes: row.get(7)?,
            hourly_total: row.get(8)?,
            created_at: row.get(9)?,
            updated_at: row.get(10)?,
            task_name: row.get(11)?,
        })
    }
}

impl StateDb {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// The parent directory is created owner-only: cluster names, addresses and host keys are
    /// nobody else's business.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|source| StateError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        // WAL lets `broker status` read while a launch in another process writes.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
        Self::init(conn)
    }

    /// An empty database in memory, for tests.
    pub fn open_in_memory() -> Result<Self, StateError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, StateError> {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Two brokers (a launch and a `status`) may touch the file at once; wait rather than fail.
        conn.busy_timeout(Duration::from_secs(5))?;
        schema::migrate(&mut conn)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (statements are atomic
        // and transactions roll back on drop), so the connection is still good.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<usize, StateError> {
        let v: i64 = self.lock().pragma_query_value(None, "user_version", |row| row.get(0))?;
        usize::try_from(v).map_err(|_| StateError::Corrupt(format!("user_version {v}")))
    }

    /// Records that `candidate` is about to be launched with `token`: upserts the cluster in
    /// `requesting` and inserts a `pending` attempt. Returns the attempt id.
    ///
    /// Call it *before* the provider's `launch`, so a crash during the call leaves a trace.
    pub fn record_intent(
        &self,
        cluster: &ClusterName,
        candidate: &Candidate,
        token: &LaunchToken,
        task_name: Option<&str>,
    ) -> Result<i64, StateError> {
        let offer = &candidate.offer;
        let now = now();
        let mut conn = self.lock();
        // One transaction: an attempt without its cluster row (or the reverse) would confuse reconcile.
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO clusters (name, state, cloud, region, zone, instance_type, spot, num_nodes, hourly_total,
                                   created_at, updated_at, task_name)
             VALUES (?1, 'requesting', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)
             ON CONFLICT (name) DO UPDATE SET
                 state = 'requesting', cloud = excluded.cloud, region = excluded.region, zone = excluded.zone,
                 instance_type = excluded.instance_type, spot = excluded.spot, num_nodes = excluded.num_nodes,
                 hourly_total = excluded.hourly_total, updated_at = excluded.updated_at,
                 task_name = COALESCE(excluded.task_name, clusters.task_name)",
            params![
                cluster.as_str(),
                offer.cloud.as_str(),
                offer.location.region.as_ref(),
                offer.location.zone.as_deref(),
                offer.instance_type.as_ref(),
                candidate.spot,
                candidate.nodes,
                candidate.hourly_total,
                now,
                task_name,
            ],
        )?;
        tx.execute(
            "INSERT INTO attempts (cluster, token, cloud, region, zone, instance_type, spot, started_at, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending')",
            params![
                cluster.as_str(),
                token.0,
                offer.cloud.as_str(),
                offer.location.region.as_ref(),
                offer.location.zone.as_deref(),
                offer.instance_type.as_ref(),
                candidate.spot,
                now,
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    /// Records how attempt `id` ended.
    pub fn finish_attempt(&self, id: i64, outcome: AttemptOutcome, message: Option<&str>) -> Result<(), StateError> {
        let changed = self.lock().execute(
            "UPDATE attempts SET outcome = ?2, message = ?3 WHERE id = ?1",
            params![id, outcome.as_str(), message],
        )?;
        if changed == 0 {
            return Err(StateError::Corrupt(format!("no attempt with id {id}")));
        }
        Ok(())
    }

    /// Records the cluster's nodes as the provider reported them and sets it `provisioned`.
    ///
    /// Replaces the node set: ranks not in `nodes` are dropped, a rank whose provider id
    /// changed loses its pinned host key (it is another machine), and otherwise the key is kept.
    pub fn record_nodes(&self, cluster: &ClusterName, nodes: &[Node]) -> Result<(), StateError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        ensure_cluster(&tx, cluster)?;
        sync_nodes(&tx, cluster, nodes)?;
        tx.execute(
            "UPDATE clusters SET state = 'provisioned', updated_at = ?2 WHERE name = ?1",
            params![cluster.as_str(), now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces the node set like [`record_nodes`](Self::record_nodes) without touching the
    /// cluster's state (for reconciling a cluster that is already past `provisioned`).
    pub fn update_nodes(&self, cluster: &ClusterName, nodes: &[Node]) -> Result<(), StateError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        ensure_cluster(&tx, cluster)?;
        sync_nodes(&tx, cluster, nodes)?;
        tx.execute(
            "UPDATE clusters SET updated_at = ?2 WHERE name = ?1",
            params![cluster.as_str(), now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Moves the cluster to `state`.
    pub fn set_state(&self, cluster: &ClusterName, state: ClusterState) -> Result<(), StateError> {
        let changed = self.lock().execute(
            "UPDATE clusters SET state = ?2, updated_at = ?3 WHERE name = ?1",
            params![cluster.as_str(), state.as_str(), now()],
        )?;
        if changed == 0 {
            return Err(StateError::UnknownCluster(cluster.to_string()));
        }
        Ok(())
    }

    /// Pins the SSH host key of one node.
    pub fn set_host_key(&self, cluster: &ClusterName, rank: u32, key: &str) -> Result<(), StateError> {
        let changed = self.lock().execute(
            "UPDATE nodes SET host_key = ?3 WHERE cluster = ?1 AND rank = ?2",
            params![cluster.as_str(), rank, key],
        )?;
        if changed == 0 {
            return Err(StateError::UnknownNode {
                cluster: cluster.to_string(),
                rank,
            });
        }
        Ok(())
    }

    /// The cluster and its nodes, if recorded.
    pub fn cluster(&self, name: &ClusterName) -> Result<Option<ClusterRecord>, StateError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                &format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE name = ?1"),
                [name.as_str()],
                ClusterRow::read,
            )
            .optional()?;
        row.map(|row| cluster_record(&conn, row)).transpose()
    }

    /// Every recorded cluster (torn-down ones included), by name.
    pub fn clusters(&self) -> Result<Vec<ClusterRecord>, StateError> {
        let conn = self.lock();
        let rows = conn
            .prepare(&format!("SELECT {CLUSTER_COLUMNS} FROM clusters ORDER BY name"))?
            .query_map([], ClusterRow::read)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(|row| cluster_record(&conn, row)).collect()
    }

    /// Every launch attempt for the cluster, oldest first.
    pub fn attempts(&self, cluster: &ClusterName) -> Result<Vec<AttemptRecord>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, cluster, token, cloud, region, zone, instance_type, spot, started_at, outcome, message
             FROM attempts WHERE cluster = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([cluster.as_str()], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, Option<String>>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, bool>(7)?,
                    row.get::<_, i64>(8)?,
                    row.get::<_, String>(9)?,
                    row.get::<_, Option<String>>(10)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(
                |(id, cluster, token, cloud, region, zone, instance_type, spot, started_at, outcome, message)| {
                    Ok(AttemptRecord {
                        id,
                        cluster,
                        token: LaunchToken(token),
                        cloud: parse("cloud", &cloud)?,
                        region,
                        zone,
                        instance_type,
                        spot,
                        started_at,
                        outcome: outcome.parse()?,
                        message,
                    })
                },
            )
            .collect()
    }

    /// After a teardown: keeps the cluster (and its attempt history) in `torn_down`, deletes
    /// its nodes and ends its still-running runs as `lost`. A cluster that was never recorded is
    /// left alone.
    pub fn forget(&self, cluster: &ClusterName) -> Result<(), StateError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM nodes WHERE cluster = ?1", [cluster.as_str()])?;
        tx.execute(
            "UPDATE clusters SET state = 'torn_down', updated_at = ?2 WHERE name = ?1",
            params![cluster.as_str(), now()],
        )?;
        runs::end_lost(&tx, cluster, now())?;
        tx.commit()?;
        Ok(())
    }

    /// Adds a queued job to the cluster and returns its id (one more than the cluster's last).
    pub fn add_job(&self, cluster: &ClusterName, name: &str) -> Result<u64, StateError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        ensure_cluster(&tx, cluster)?;
        let id: i64 = tx.query_row(
            "SELECT COALESCE(MAX(job_id), 0) + 1 FROM jobs WHERE cluster = ?1",
            [cluster.as_str()],
            |row| row.get(0),
        )?;
        tx.execute(
            "INSERT INTO jobs (cluster, job_id, name, state, submitted_at) VALUES (?1, ?2, ?3, 'queued', ?4)",
            params![cluster.as_str(), id, name, now()],
        )?;
        tx.commit()?;
        u64::try_from(id).map_err(|_| StateError::Corrupt(format!("job id {id}")))
    }

    /// Updates a job's state and exit code; a terminal state also stamps `ended_at` and ends
    /// the job's run in the ledger if it is still running.
    pub fn set_job(
        &self,
        cluster: &ClusterName,
        job_id: u64,
        state: JobState,
        exit_code: Option<i32>,
    ) -> Result<(), StateError> {
        let ended_at = state.is_terminal().then(now);
        // Ids come from `add_job`, so they fit; one that does not cannot name a stored job.
        let unknown = || StateError::UnknownJob {
            cluster: cluster.to_string(),
            job_id,
        };
        let id = i64::try_from(job_id).map_err(|_| unknown())?;
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE jobs SET state = ?3, exit_code = COALESCE(?4, exit_code), ended_at = COALESCE(ended_at, ?5)
             WHERE cluster = ?1 AND job_id = ?2",
            params![cluster.as_str(), id, state.as_str(), exit_code, ended_at],
        )?;
        if changed == 0 {
            return Err(unknown());
        }
        if let Some(ended_at) = ended_at {
            runs::end_with_job(&tx, cluster, id, state, exit_code, ended_at)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The cluster's jobs, by id.
    pub fn jobs(&self, cluster: &ClusterName) -> Result<Vec<JobRecord>, StateError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT cluster, job_id, name, state, exit_code, submitted_at, ended_at
             FROM jobs WHERE cluster = ?1 ORDER BY job_id",
        )?;
        let rows = stmt
            .query_map([cluster.as_str()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<i32>>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, Option<i64>>(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(cluster, job_id, name, state, exit_code, submitted_at, ended_at)| {
                Ok(JobRecord {
                    cluster,
                    job_id: u64::try_from(job_id).map_err(|_| StateError::Corrupt(format!("job id {job_id}")))?,
                    name,
                    state: state.parse()?,
                    exit_code,
                    submitted_at,
                    ended_at,
                })
            })
            .collect()
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

fn ensure_cluster(conn: &Connection, cluster: &ClusterName) -> Result<(), StateError> {
    let exists = conn
        .query_row("SELECT 1 FROM clusters WHERE name = ?1", [cluster.as_str()], |_| Ok(()))
        .optional()?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(StateError::UnknownCluster(cluster.to_string()))
    }
}

fn sync_nodes(conn: &Connection, cluster: &ClusterName, nodes: &[Node]) -> Result<(), StateError> {
    let mut upsert = conn.prepare(
        "INSERT INTO nodes (cluster, rank, provider_id, state, ssh_addr, private_ip)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (cluster, rank) DO UPDATE SET
             host_key = CASE WHEN nodes.provider_id = excluded.provider_id THEN nodes.host_key END,
             provider_id = excluded.provider_id, state = excluded.state,
             ssh_addr = COALESCE(excluded.ssh_addr, CASE WHEN nodes.provider_id = excluded.provider_id
                                                         THEN nodes.ssh_addr END),
             private_ip = COALESCE(excluded.private_ip, CASE WHEN nodes.provider_id = excluded.provider_id
                                                             THEN nodes.private_ip END)",
    )?;
    for node in nodes {
        upsert.execute(params![
            cluster.as_str(),
            node.rank,
            node.id,
            node_state_str(node.state),
            node.ssh.map(|a| a.to_string()),
            node.private_ip.map(|ip| ip.to_string()),
        ])?;
    }
    // Ranks the provider no longer reports are gone; keep the table a mirror of the cloud.
    let mut existing = conn.prepare("SELECT rank FROM nodes WHERE cluster = ?1")?;
    let ranks = existing
        .query_map([cluster.as_str()], |row| row.get::<_, u32>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for rank in ranks.into_iter().filter(|r| !nodes.iter().any(|n| n.rank == *r)) {
        conn.execute(
            "DELETE FROM nodes WHERE cluster = ?1 AND rank = ?2",
            params![cluster.as_str(), rank],
        )?;
    }
    Ok(())
}

fn cluster_record(conn: &Connection, row: ClusterRow) -> Result<ClusterRecord, StateError> {
    let mut stmt = conn.prepare(
        "SELECT rank, provider_id, state, ssh_addr, private_ip, host_key FROM nodes WHERE cluster = ?1 ORDER BY rank",
    )?;
    let raw = stmt
        .query_map([row.name.as_str()], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let nodes = raw
        .into_iter()
        .map(|(rank, provider_id, state, ssh_addr, private_ip, host_key)| {
            Ok(NodeRecord {
                rank,
                provider_id,
                state: node_state_from(&state)?,
                ssh_addr: ssh_addr.map(|a| parse("ssh address", &a)).transpose()?,
                private_ip: private_ip.map(|ip| parse("private IP", &ip)).transpose()?,
                host_key,
            })
        })
        .collect::<Result<Vec<_>, StateError>>()?;
    Ok(ClusterRecord {
        name: parse("cluster name", &row.name)?,
        state: row.state.parse()?,
        cloud: row.cloud.map(|c| parse("cloud", &c)).transpose()?,
        region: row.region,
        zone: row.zone,
        instance_type: row.instance_type,
        spot: row.spot,
        num_nodes: u32::try_from(row.num_nodes)
            .map_err(|_| StateError::Corrupt(format!("node count {}", row.num_nodes)))?,
        hourly_total: row.hourly_total,
        created_at: row.created_at,
        updated_at: row.updated_at,
        task_name: row.task_name,
        nodes,
    })
}

#[cfg(test)]
mod tests;
