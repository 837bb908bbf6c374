//! The run ledger (DESIGN §8, the "factory" record): one row per `broker launch` and
//! `broker exec`, saying what ran (task file hash and text, workdir commit, image), where (the
//! offer and the candidates it beat), at what price, for how long, and how it ended.
//!
//! Runs are history, not state: the table has no foreign key to `clusters`, so a run outlives
//! `broker down`. The price recorded at the start is the run's cost basis for good; nothing here
//! reads the catalogs, so a later price change or a retired instance type never rewrites a past
//! cost.
//!
//! Secrets never reach this table: [`StateDb::start_run`] stores the task file's text with every
//! `secrets:` value replaced by `null` (see [`crate::ledger::redact_secrets`]), and stores no
//! text at all when it cannot do that with certainty.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use broker_provider::{Candidate, Cloud, ClusterName};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{ClusterRecord, JobState, StateDb, StateError, now, parse};

text_enum! {
    /// What recorded the run.
    RunKind {
        /// `broker launch`: a new cluster.
        Launch => "launch",
        /// `broker exec`: a job on an existing cluster.
        Exec => "exec",
    }
}

text_enum! {
    /// Where a run is in its life.
    RunState {
        /// Started and not known to have ended; its cost so far grows with the clock.
        Running => "running",
        /// The job exited 0.
        Succeeded => "succeeded",
        /// The job exited non-zero or could not start.
        Failed => "failed",
        /// The user cancelled the job.
        Cancelled => "cancelled",
        /// Ctrl-C or SIGTERM stopped broker during the run.
        Interrupted => "interrupted",
        /// The cluster was torn down while the run was still recorded as running, so its outcome
        /// is unknown; it ended (and stopped costing) at the teardown.
        Lost => "lost",
    }
}

impl RunState {
    /// The state of a run whose job exited with `code`.
    pub const fn from_exit_code(code: i32) -> Self {
        if code == 0 { Self::Succeeded } else { Self::Failed }
    }

    /// Whether the run has ended.
    pub const fn is_terminal(self) -> bool {
        !matches!(self, Self::Running)
    }
}

/// An offer as the ledger keeps it: the chosen one of a run, or one of the candidates it beat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOffer {
    /// The cloud.
    pub cloud: Cloud,
    /// Region.
    pub region: String,
    /// Zone, for clouds that have them.
    pub zone: Option<String>,
    /// Instance type.
    pub instance_type: String,
    /// Spot market or on-demand.
    pub spot: bool,
    /// USD per hour for all nodes together, as priced when the run started.
    pub hourly_total: f64,
}

impl From<&Candidate> for RunOffer {
    fn from(c: &Candidate) -> Self {
        Self {
            cloud: c.offer.cloud,
            region: c.offer.location.region.to_string(),
            zone: c.offer.location.zone.as_deref().map(str::to_owned),
            instance_type: c.offer.instance_type.to_string(),
            spot: c.spot,
            hourly_total: c.hourly_total,
        }
    }
}

impl RunOffer {
    /// What a recorded cluster runs on, for `broker exec` runs; `None` when the record lacks the
    /// cloud, region, instance type or price (a cluster that never got past planning).
    pub fn of_cluster(cluster: &ClusterRecord) -> Option<Self> {
        Some(Self {
            cloud: cluster.cloud?,
            region: cluster.region.clone()?,
            zone: cluster.zone.clone(),
            instance_type: cluster.instance_type.clone()?,
            spot: cluster.spot,
            hourly_total: cluster.hourly_total?,
        })
    }
}

/// The command-line overrides of a run, kept so that `broker launch --from-run` reproduces them.
///
/// The same fields as [`crate::task::Overrides`], plus `--max-price`. Build it with
/// [`crate::ledger::run_overrides`], which keeps `--env` values only where they cannot be
/// secrets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunOverrides {
    /// `--gpus`.
    pub gpus: Option<String>,
    /// `--cloud`.
    pub cloud: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--zone`.
    pub zone: Option<String>,
    /// `--use-spot` / `--no-use-spot`.
    pub use_spot: Option<bool>,
    /// `--num-nodes`.
    pub num_nodes: Option<String>,
    /// `--cpus`.
    pub cpus: Option<String>,
    /// `--memory`.
    pub memory: Option<String>,
    /// `--instance-type`.
    pub instance_type: Option<String>,
    /// `--env` entries: `KEY=VALUE`, or `KEY` alone when the value was withheld (a relaunch
    /// takes it from the environment again).
    pub envs: Vec<String>,
    /// `--max-price`, USD per hour for the whole cluster.
    pub max_price: Option<f64>,
}

/// Everything known about a run when it starts.
///
/// Its `Debug` leaves out the task text, which still holds the secrets at this point.
#[derive(Clone, PartialEq)]
pub struct RunStart {
    /// The cluster it runs on.
    pub cluster: ClusterName,
    /// The job's id on the cluster, when already known (see [`StateDb::set_run_job`]).
    pub job_id: Option<u64>,
    /// Launch or exec.
    pub kind: RunKind,
    /// The task's name (or the job's name for a bare command).
    pub task_name: Option<String>,
    /// The task file's path as the user gave it; `None` for a bare command.
    pub task_file: Option<String>,
    /// [`crate::ledger::task_hash`] of the task file's bytes.
    pub task_hash: Option<String>,
    /// The task file's text as read. Stored with its secrets replaced by `null`, or not at all
    /// when that cannot be done with certainty.
    pub task_content: Option<String>,
    /// The command-line overrides.
    pub overrides: Option<RunOverrides>,
    /// The workdir's git commit ([`crate::ledger::git_state`]); `None` outside a git repository.
    pub workdir_commit: Option<String>,
    /// Whether the workdir had uncommitted changes; `None` outside a git repository.
    pub workdir_dirty: Option<bool>,
    /// The job's container image or machine image, if the task named one.
    pub image: Option<String>,
    /// The offer it runs on; its `hourly_total` is the cost basis from now on.
    pub offer: RunOffer,
    /// Nodes in the cluster.
    pub num_nodes: u32,
    /// The next few candidates this offer beat ([`crate::ledger::beaten_candidates`]).
    pub candidates: Vec<RunOffer>,
    /// The task's `labels`.
    pub labels: BTreeMap<String, String>,
    /// Unix seconds when billing for the run began.
    pub started_at: i64,
}

impl fmt::Debug for RunStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunStart")
            .field("cluster", &self.cluster)
            .field("job_id", &self.job_id)
            .field("kind", &self.kind)
            .field("task_name", &self.task_name)
            .field("task_file", &self.task_file)
            .field("task_hash", &self.task_hash)
            .field(
                "task_content",
                &self.task_content.as_ref().map(|t| format!("<{} bytes>", t.len())),
            )
            .field("overrides", &self.overrides)
            .field("workdir_commit", &self.workdir_commit)
            .field("workdir_dirty", &self.workdir_dirty)
            .field("image", &self.image)
            .field("offer", &self.offer)
            .field("num_nodes", &self.num_nodes)
            .field("candidates", &self.candidates)
            .field("labels", &self.labels)
            .field("started_at", &self.started_at)
            .finish()
    }
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// Its id, as returned by [`StateDb::start_run`]; never reused.
    pub id: i64,
    /// The cluster it ran on (which may be long gone).
    pub cluster: String,
    /// The job's id on the cluster.
    pub job_id: Option<u64>,
    /// Launch or exec.
    pub kind: RunKind,
    /// The task's name.
    pub task_name: Option<String>,
    /// The task file's path as given.
    pub task_file: Option<String>,
    /// SHA-256 of the task file's bytes, hex.
    pub task_hash: Option<String>,
    /// The task file's text with its secrets replaced by `null`.
    pub task_content: Option<String>,
    /// The command-line overrides.
    pub overrides: Option<RunOverrides>,
    /// The workdir's git commit.
    pub workdir_commit: Option<String>,
    /// Whether the workdir had uncommitted changes.
    pub workdir_dirty: Option<bool>,
    /// The image named by the task.
    pub image: Option<String>,
    /// The offer it ran on, at the price it started at.
    pub offer: RunOffer,
    /// Nodes in the cluster.
    pub num_nodes: u32,
    /// The candidates it beat.
    pub candidates: Vec<RunOffer>,
    /// The task's labels.
    pub labels: BTreeMap<String, String>,
    /// Unix seconds when it started.
    pub started_at: i64,
    /// Unix seconds when it ended.
    pub ended_at: Option<i64>,
    /// The job's exit code, when known.
    pub exit_code: Option<i32>,
    /// Where it is in its life.
    pub state: RunState,
}

impl RunRecord {
    /// Seconds it ran, up to `now` while it is still running.
    pub fn seconds_at(&self, now: i64) -> i64 {
        (self.ended_at.unwrap_or(now) - self.started_at).max(0)
    }

    /// USD it cost: the recorded hourly price times its duration; for a running run, the cost
    /// so far.
    pub fn cost(&self) -> f64 {
        self.cost_at(now())
    }

    /// [`cost`](Self::cost) as of `now` (Unix seconds), for reports computed at one instant.
    pub fn cost_at(&self, now: i64) -> f64 {
        self.offer.hourly_total * self.seconds_at(now) as f64 / 3600.0
    }

    /// Node-hours it used as of `now`.
    pub fn node_hours_at(&self, now: i64) -> f64 {
        f64::from(self.num_nodes) * self.seconds_at(now) as f64 / 3600.0
    }
}

/// Which runs [`StateDb::runs`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs on this cluster.
    pub cluster: Option<String>,
    /// Only runs that were going at or after this Unix time: started then or later, still
    /// running, or ended after it. A cost report since a day needs the runs that straddle it.
    pub active_since: Option<i64>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

const RUN_COLUMNS: &str = "id, cluster, job_id, kind, task_name, task_file, task_hash, task_content, overrides, \
                           workdir_commit, workdir_dirty, image, cloud, region, zone, instance_type, spot, \
                           num_nodes, hourly_price, candidates, labels, started_at, ended_at, exit_code, state";

/// Raw column values of a `runs` row, parsed outside the row closure so parse errors keep their
/// own type.
struct RunRow {
    id: i64,
    cluster: String,
    job_id: Option<i64>,
    kind: String,
    task_name: Option<String>,
    task_file: Option<String>,
    task_hash: Option<String>,
    task_content: Option<String>,
    overrides: Option<String>,
    workdir_commit: Option<String>,
    workdir_dirty: Option<bool>,
    image: Option<String>,
    cloud: String,
    region: String,
    zone: Option<String>,
    instance_type: String,
    spot: bool,
    num_nodes: i64,
    hourly_price: f64,
    candidates: String,
    labels: String,
    started_at: i64,
    ended_at: Option<i64>,
    exit_code: Option<i32>,
    state: String,
}

impl RunRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            cluster: row.get(1)?,
            job_id: row.get(2)?,
            kind: row.get(3)?,
            task_name: row.get(4)?,
            task_file: row.get(5)?,
            task_hash: row.get(6)?,
            task_content: row.get(7)?,
            overrides: row.get(8)?,
            workdir_commit: row.get(9)?,
            workdir_dirty: row.get(10)?,
            image: row.get(11)?,
            cloud: row.get(12)?,
            region: row.get(13)?,
            zone: row.get(14)?,
            instance_type: row.get(15)?,
            spot: row.get(16)?,
            num_nodes: row.get(17)?,
            hourly_price: row.get(18)?,
            candidates: row.get(19)?,
            labels: row.get(20)?,
            started_at: row.get(21)?,
            ended_at: row.get(22)?,
            exit_code: row.get(23)?,
            state: row.get(24)?,
        })
    }

    fn record(self) -> Result<RunRecord, StateError> {
        let id = self.id;
        let json = |what: &str, e: serde_json::Error| StateError::Corrupt(format!("run {id}: {what}: {e}"));
        Ok(RunRecord {
            id,
            cluster: self.cluster,
            job_id: self
                .job_id
                .map(|j| u64::try_from(j).map_err(|_| StateError::Corrupt(format!("run {id}: job id {j}"))))
                .transpose()?,
            kind: self.kind.parse()?,
            task_name: self.task_name,
            task_file: self.task_file,
            task_hash: self.task_hash,
            task_content: self.task_content,
            overrides: self
                .overrides
                .map(|o| serde_json::from_str(&o).map_err(|e| json("overrides", e)))
                .transpose()?,
            workdir_commit: self.workdir_commit,
            workdir_dirty: self.workdir_dirty,
            image: self.image,
            offer: RunOffer {
                cloud: parse("cloud", &self.cloud)?,
                region: self.region,
                zone: self.zone,
                instance_type: self.instance_type,
                spot: self.spot,
                hourly_total: self.hourly_price,
            },
            num_nodes: u32::try_from(self.num_nodes)
                .map_err(|_| StateError::Corrupt(format!("run {id}: node count {}", self.num_nodes)))?,
            candidates: serde_json::from_str(&self.candidates).map_err(|e| json("candidates", e))?,
            labels: serde_json::from_str(&self.labels).map_err(|e| json("labels", e))?,
            started_at: self.started_at,
            ended_at: self.ended_at,
            exit_code: self.exit_code,
            state: self.state.parse()?,
        })
    }
}

fn to_json<T: Serialize>(what: &str, value: &T) -> Result<String, StateError> {
    serde_json::to_string(value).map_err(|e| StateError::Corrupt(format!("cannot encode {what}: {e}")))
}

fn job_id_param(job_id: u64) -> Result<i64, StateError> {
    i64::try_from(job_id).map_err(|_| StateError::Corrupt(format!("job id {job_id}")))
}

impl StateDb {
    /// Records that a run started and returns its id. The state is `running` until
    /// [`finish_run`](Self::finish_run), or until the job's end is recorded with
    /// [`set_job`](Self::set_job), or the cluster is [forgotten](Self::forget) (then `lost`).
    ///
    /// The task text is stored with its secrets replaced by `null`; text whose secrets cannot
    /// be found with certainty is not stored (the run is then not reproducible with
    /// `--from-run`, which beats leaking a secret into the state file).
    pub fn start_run(&self, run: &RunStart) -> Result<i64, StateError> {
        let content = run.task_content.as_deref().and_then(crate::ledger::redact_secrets);
        let overrides = run.overrides.as_ref().map(|o| to_json("overrides", o)).transpose()?;
        let candidates = to_json("candidates", &run.candidates)?;
        let labels = to_json("labels", &run.labels)?;
        let job_id = run.job_id.map(job_id_param).transpose()?;
        let offer = &run.offer;
        let conn = self.lock();
        conn.execute(
            "INSERT INTO runs (cluster, job_id, kind, task_name, task_file, task_hash, task_content, overrides,
                               workdir_commit, workdir_dirty, image, cloud, region, zone, instance_type, spot,
                               num_nodes, hourly_price, candidates, labels, started_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,
                     ?21, 'running')",
            params![
                run.cluster.as_str(),
                job_id,
                run.kind.as_str(),
                run.task_name,
                run.task_file,
                run.task_hash,
                content,
                overrides,
                run.workdir_commit,
                run.workdir_dirty,
                run.image,
                offer.cloud.as_str(),
                offer.region,
                offer.zone,
                offer.instance_type,
                offer.spot,
                run.num_nodes,
                offer.hourly_total,
                candidates,
                labels,
                run.started_at,
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Records the job id of a run started before its job was submitted (a launch records the
    /// run once nodes exist, and the job id comes after the sync).
    pub fn set_run_job(&self, id: i64, job_id: u64) -> Result<(), StateError> {
        let changed = self.lock().execute(
            "UPDATE runs SET job_id = ?2 WHERE id = ?1",
            params![id, job_id_param(job_id)?],
        )?;
        if changed == 0 {
            return Err(StateError::UnknownRun(id));
        }
        Ok(())
    }

    /// Records how run `id` ended. Overwrites an end recorded earlier (by [`set_job`] or
    /// [`forget`]), since the caller that started the run knows best when billing stopped:
    /// for `launch --down`, after the teardown rather than when the job exited.
    ///
    /// [`set_job`]: Self::set_job
    /// [`forget`]: Self::forget
    pub fn finish_run(
        &self,
        id: i64,
        ended_at: i64,
        exit_code: Option<i32>,
        state: RunState,
    ) -> Result<(), StateError> {
        if !state.is_terminal() {
            return Err(StateError::Corrupt(format!("run {id} cannot finish as `{state}`")));
        }
        let changed = self.lock().execute(
            "UPDATE runs SET ended_at = ?2, exit_code = COALESCE(?3, exit_code), state = ?4 WHERE id = ?1",
            params![id, ended_at, exit_code, state.as_str()],
        )?;
        if changed == 0 {
            return Err(StateError::UnknownRun(id));
        }
        Ok(())
    }

    /// Recorded runs, newest first.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StateError> {
        // SQLite reads a negative LIMIT as "no limit".
        let limit = filter.limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let conn = self.lock();
        let rows = conn
            .prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs
                 WHERE (?1 IS NULL OR cluster = ?1)
                   AND (?2 IS NULL OR started_at >= ?2 OR ended_at IS NULL OR ended_at > ?2)
                 ORDER BY started_at DESC, id DESC LIMIT ?3"
            ))?
            .query_map(params![filter.cluster, filter.active_since, limit], RunRow::read)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(RunRow::record).collect()
    }

    /// The run with this id, if recorded.
    pub fn run(&self, id: i64) -> Result<Option<RunRecord>, StateError> {
        let row = self
            .lock()
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
                [id],
                RunRow::read,
            )
            .optional()?;
        row.map(RunRow::record).transpose()
    }
}

/// Ends the running runs of a job whose end [`StateDb::set_job`] just recorded, so a run
/// started with `--detach` ends when `broker logs` or `broker queue` learns the exit code.
pub(super) fn end_with_job(
    conn: &Connection,
    cluster: &ClusterName,
    job_id: i64,
    job: JobState,
    exit_code: Option<i32>,
    ended_at: i64,
) -> Result<(), StateError> {
    let state = match job {
        JobState::Succeeded => RunState::Succeeded,
        JobState::Cancelled => RunState::Cancelled,
        JobState::Failed => RunState::Failed,
        JobState::Queued | JobState::Running => return Ok(()),
    };
    conn.execute(
        "UPDATE runs SET state = ?3, exit_code = COALESCE(?4, exit_code), ended_at = ?5
         WHERE cluster = ?1 AND job_id = ?2 AND state = 'running'",
        params![cluster.as_str(), job_id, state.as_str(), exit_code, ended_at],
    )?;
    Ok(())
}

/// Ends, as `lost`, the runs still recorded as running on a cluster being forgotten: its nodes
/// are gone, so nothing runs and nothing bills any more.
pub(super) fn end_lost(conn: &Connection, cluster: &ClusterName, at: i64) -> Result<(), StateError> {
    conn.execute(
        "UPDATE runs SET state = 'lost', ended_at = MAX(?2, started_at) WHERE cluster = ?1 AND state = 'running'",
        params![cluster.as_str(), at],
    )?;
    Ok(())
}

/// Unix seconds now, for callers stamping `started_at` and `ended_at`.
pub fn unix_now() -> i64 {
    now()
}
