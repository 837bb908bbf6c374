//! Helpers around the run ledger (DESIGN §8) for the commands that write and read it: what to
//! record about a task and its workdir, how to keep secrets out, how to total costs and how to
//! turn a recorded run back into the inputs of a launch.
//!
//! No database access here (that is [`crate::state`]) and no catalog access ever: a run's cost
//! comes from the price recorded when it started.

mod redact;
pub mod report;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use broker_provider::Candidate;
use sha2::{Digest, Sha256};

pub use redact::{plain_env_keys, redact_secrets};

use crate::state::{RunOffer, RunOverrides, RunRecord};
use crate::task::Overrides;

/// How many of the candidates after the chosen one a run keeps.
pub const CANDIDATES_KEPT: usize = 3;

/// SHA-256 of a task file's bytes, as lower-case hex.
pub fn task_hash(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// The git commit checked out in `workdir` and whether the workdir has uncommitted changes
/// (untracked files count); `None` when it is not in a git repository, the repository has no
/// commit yet, or git is not installed. Never an error: a run without a commit is still a run.
///
/// Only changes under `workdir` make it dirty, since that is all a launch syncs.
pub fn git_state(workdir: &Path) -> Option<(String, bool)> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(workdir)
            .args(args)
            // A caller inside a git hook would otherwise point us at its repository.
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            // `status` refreshes the index under a lock; skip that so a launch never races the
            // user's own git commands.
            .env("GIT_OPTIONAL_LOCKS", "0")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let commit = git(&["rev-parse", "--verify", "--quiet", "HEAD"])?.trim().to_owned();
    if commit.is_empty() || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let status = git(&["status", "--porcelain", "--", "."])?;
    Some((commit, !status.trim().is_empty()))
}

/// A commit as tables show it: 7 hex digits, `+dirty` when the workdir had changes, `-` when
/// there was no repository.
pub fn short_commit(commit: Option<&str>, dirty: Option<bool>) -> String {
    match commit {
        Some(c) => {
            let short: String = c.chars().take(7).collect();
            if dirty == Some(true) {
                format!("{short}+dirty")
            } else {
                short
            }
        }
        None => "-".to_owned(),
    }
}

/// The next [`CANDIDATES_KEPT`] candidates of `plan` after `chosen`: what the run's offer beat
/// (or, after a failover, what would have been tried next).
pub fn beaten_candidates(plan: &[Candidate], chosen: &Candidate) -> Vec<RunOffer> {
    plan.iter()
        .filter(|c| c.rank > chosen.rank)
        .take(CANDIDATES_KEPT)
        .map(RunOffer::from)
        .collect()
}

/// The overrides to record for a run.
///
/// `--env KEY=VALUE` keeps its value only when the task file declares `KEY` under `envs`
/// (`task_text` is the file's text; `None` for a bare command): anything else may be a secret
/// passed on the command line, so only `KEY` is kept and a relaunch takes the value from the
/// environment again, or says which key is missing.
pub fn run_overrides(overrides: &Overrides, task_text: Option<&str>, max_price: Option<f64>) -> RunOverrides {
    let plain = task_text.map(plain_env_keys).unwrap_or_default();
    let envs = overrides
        .envs
        .iter()
        .map(|entry| match entry.split_once('=') {
            Some((key, _)) if !plain.contains(key) => key.to_owned(),
            _ => entry.clone(),
        })
        .collect();
    RunOverrides {
        gpus: overrides.gpus.clone(),
        cloud: overrides.cloud.clone(),
        region: overrides.region.clone(),
        zone: overrides.zone.clone(),
        use_spot: overrides.use_spot,
        num_nodes: overrides.num_nodes.clone(),
        cpus: overrides.cpus.clone(),
        memory: overrides.memory.clone(),
        instance_type: overrides.instance_type.clone(),
        envs,
        max_price,
    }
}

/// What `broker launch --from-run ID` needs to launch a recorded run again.
#[derive(Debug, Clone, PartialEq)]
pub struct RelaunchInputs {
    /// The task file's path as recorded: use it as the path given to the parser, so messages
    /// name it and a relative `workdir` resolves as it did.
    pub task_file: PathBuf,
    /// The task file's text, its secrets `null` (so they come from the environment or `--env`).
    pub task_content: String,
    /// The recorded overrides; combine with flags given now using [`merge_overrides`].
    pub overrides: Overrides,
    /// The recorded `--max-price`.
    pub max_price: Option<f64>,
    /// The workdir commit the run used, to compare with [`git_state`] now.
    pub workdir_commit: Option<String>,
    /// Whether that workdir had uncommitted changes (which cannot be reproduced).
    pub workdir_dirty: Option<bool>,
}

/// Why a recorded run cannot be launched again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelaunchError {
    /// It ran a command given on the command line, not a task file.
    #[error("run {0} ran a command, not a task file, so there is no task to launch again")]
    NoTaskFile(i64),
    /// Its task text was not kept, because its secrets could not be located with certainty.
    #[error("run {0} kept no copy of its task file (its `secrets` could not be separated safely)")]
    NoTaskContent(i64),
}

/// The task text and overrides to launch `run` again.
pub fn relaunch_inputs(run: &RunRecord) -> Result<RelaunchInputs, RelaunchError> {
    let task_file = run.task_file.as_deref().ok_or(RelaunchError::NoTaskFile(run.id))?;
    let task_content = run.task_content.clone().ok_or(RelaunchError::NoTaskContent(run.id))?;
    let recorded = run.overrides.clone().unwrap_or_default();
    Ok(RelaunchInputs {
        task_file: PathBuf::from(task_file),
        task_content,
        overrides: Overrides {
            gpus: recorded.gpus,
            cloud: recorded.cloud,
            region: recorded.region,
            zone: recorded.zone,
            use_spot: recorded.use_spot,
            num_nodes: recorded.num_nodes,
            cpus: recorded.cpus,
            memory: recorded.memory,
            instance_type: recorded.instance_type,
            envs: recorded.envs,
        },
        max_price: recorded.max_price,
        workdir_commit: run.workdir_commit.clone(),
        workdir_dirty: run.workdir_dirty,
    })
}

/// `given` (flags on the relaunch's command line) on top of `recorded`: each flag given wins,
/// and `--env` entries are appended so a given key wins over a recorded one.
///
/// Flags that only make sense together are replaced together: giving any of `--cloud`,
/// `--region` or `--zone` drops all three recorded ones (a recorded zone belongs to its region),
/// and giving `--cloud`, `--gpus`, `--cpus`, `--memory` or `--instance-type` drops the recorded
/// `--instance-type` (which would pin the old shape and contradict the new flag).
pub fn merge_overrides(recorded: Overrides, given: &Overrides) -> Overrides {
    let new_place = given.cloud.is_some() || given.region.is_some() || given.zone.is_some();
    let new_shape = given.cloud.is_some()
        || given.gpus.is_some()
        || given.cpus.is_some()
        || given.memory.is_some()
        || given.instance_type.is_some();
    let mut envs = recorded.envs;
    envs.extend(given.envs.iter().cloned());
    let (cloud, region, zone) = if new_place {
        (given.cloud.clone(), given.region.clone(), given.zone.clone())
    } else {
        (recorded.cloud, recorded.region, recorded.zone)
    };
    Overrides {
        gpus: given.gpus.clone().or(recorded.gpus),
        cloud,
        region,
        zone,
        use_spot: given.use_spot.or(recorded.use_spot),
        num_nodes: given.num_nodes.clone().or(recorded.num_nodes),
        cpus: given.cpus.clone().or(recorded.cpus),
        memory: given.memory.clone().or(recorded.memory),
        instance_type: if new_shape {
            given.instance_type.clone()
        } else {
            recorded.instance_type
        },
        envs,
    }
}

#[cfg(test)]
mod tests;
