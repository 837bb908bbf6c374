//! The real launch: provision the plan's first available candidate, reach every node over SSH,
//! sync the workdir, run the job on every node, stream its output, and tear down with `--down`.
//!
//! Teardown is never inside a future that Ctrl-C can drop: the job runs in a `select!` against
//! the signal, and whichever wins, the `--down` teardown runs afterwards.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use broker_docker::{DockerConfig, DockerProvider};
use broker_provider::{Candidate, Cloud, ClusterName, Node, Provider};
use futures_util::future::try_join_all;

use crate::cli::LaunchArgs;
use crate::commands::interrupt::{Interrupt, Interrupted};
use crate::commands::launch::TaskSource;
use crate::commands::report::{RunEnd, RunReport};
use crate::commands::{ExitStatus, UserError};
use crate::config::Config;
use crate::provision::{self, LaunchTemplate, Providers};
use crate::ssh::{self, JobSpec, UserKey};
use crate::state::{RunKind, RunStart, RunState, StateDb, unix_now};
use crate::task::Task;
use crate::{ledger, output};

/// Where a task's workdir lands on every node (SkyPilot's path, so existing scripts work).
const REMOTE_WORKDIR: &str = "sky_workdir";

/// With `--down`, how long after the job ends a node removes itself if broker has not.
const DOWN_BACKSTOP: Duration = Duration::from_secs(20);

/// How long a node may take from "created" to "answers SSH".
const SSH_DEADLINE: Duration = Duration::from_secs(90);

pub(super) async fn execute(
    args: &LaunchArgs,
    task: &Task,
    source: &TaskSource,
    plan: &[Candidate],
    providers: &Providers,
    home: &Path,
    config: &Config,
) -> anyhow::Result<ExitStatus> {
    let plan: Vec<Candidate> = plan
        .iter()
        .filter(|c| providers.contains_key(&c.offer.cloud))
        .cloned()
        .collect();
    let Some(first) = plan.first() else {
        let enabled: Vec<&str> = providers.keys().map(|c| c.as_str()).collect();
        return Err(UserError::new("no enabled cloud can serve this task")
            .with_hint(format!(
                "enabled clouds: {}; `broker launch {} --dry-run` shows what would fit elsewhere",
                if enabled.is_empty() {
                    "none".to_owned()
                } else {
                    enabled.join(", ")
                },
                source.file.display()
            ))
            .into());
    };
    if args.detach && args.down && args.idle.is_none() {
        return Err(UserError::new(
            "`--down` with `--detach` needs `-i`: nothing would be left to tear the cluster down",
        )
        .with_hint("`-i 10 --down --detach` tears it down after 10 idle minutes; `--max-duration 2h` caps its life")
        .into());
    }
    let cluster = cluster_name(args, task)?;
    // Checked before anything is created: a typo in a path must not cost a GPU hour.
    let mounts = local_mounts(task, &source.file)?;
    if !args.yes && !confirm(first, &cluster)? {
        output::message("aborted: nothing was created");
        return Ok(ExitStatus::UserError);
    }

    if let Some(docker) = providers.get(&Cloud::Docker) {
        ensure_docker_image(docker.as_ref()).await?;
    }
    let key = ssh::ensure_user_key(home)?;
    let db = StateDb::open(&home.join("state.db"))?;
    // Read before anything is created: what the run ledger says the code was.
    let git = {
        let dir = task
            .workdir
            .clone()
            .unwrap_or_else(|| source.file.parent().map(Path::to_path_buf).unwrap_or_default());
        tokio::task::spawn_blocking(move || ledger::git_state(&dir))
            .await
            .unwrap_or_default()
    };
    let template = LaunchTemplate {
        disk_gib: task.resources.disk_size.unwrap_or(256),
        image: machine_image(task),
        ssh_public_key: key.public.clone(),
        labels: task.resources.labels.clone(),
        task_name: task.name.clone(),
        max_run_seconds: args.max_duration.map(|d| d.as_secs()),
    };
    let quiet = args.quiet;
    // Spinners would interleave with a script's reading of stderr; `--json` is for scripts.
    let hide_progress = args.quiet || args.json;
    let interrupt = Interrupt::listen();
    let started = SystemTime::now();
    // Counted from before the request, so it passes before the node's own timer (counted from
    // its boot) ends the node under the job.
    let deadline = args.max_duration.map(|d| (tokio::time::Instant::now() + d, d));
    let mut report = RunReport::new(cluster.as_str(), started);
    let mut run_started: Option<i64> = None;
    // Not raced against the signal: a create in flight finishes, so teardown sees its nodes.
    let stage = output::Stage::start(
        hide_progress,
        "provision",
        &format!(
            "{} node(s) of {} on {}",
            first.nodes, first.offer.instance_type, first.offer.cloud
        ),
    );
    let mut show = |event: provision::LaunchEvent| {
        if !quiet {
            stage.message(&event.to_string());
        }
    };
    let launched = match args.retry_until_up {
        None => provision::launch(&db, providers, &cluster, &plan, &template, &mut show).await,
        Some(within) => {
            let until = provision::RetryUntilUp {
                cancelled: Some(interrupt.flag()),
                ..provision::RetryUntilUp::within(within)
            };
            let retry = provision::RetryPolicy::default();
            provision::launch_until(&db, providers, &cluster, &plan, &template, retry, until, &mut show).await
        }
    };
    stage.done(if launched.is_ok() { "done" } else { "failed" });

    // From here on resources may exist: the job's outcome, a failed launch, an error or a signal
    // must all reach the teardown below when `--down` is set.
    let outcome: anyhow::Result<JobOutcome> = match launched {
        Err(e) => Err(anyhow::Error::new(e).context(format!("launching `{cluster}`"))),
        Ok(_) if interrupt.fired() => Err(Interrupted.into()),
        Ok(launched) => {
            report.set_offer(&launched.candidate);
            if !args.json {
                output::message(&format!(
                    "cluster `{cluster}`: {} node{} of {} on {} ({})",
                    launched.nodes.len(),
                    if launched.nodes.len() == 1 { "" } else { "s" },
                    launched.candidate.offer.instance_type,
                    launched.candidate.offer.cloud,
                    launched.candidate.offer.location,
                ));
            }
            let image = job_image(task, Some(launched.candidate.offer.cloud));
            let run_id = record_run(
                &db,
                &cluster,
                task,
                source,
                plan.as_slice(),
                &launched.candidate,
                git.as_ref(),
                image.clone().or_else(|| machine_image(task)),
            );
            run_started = run_id;
            let job = JobPlan {
                run_id,
                image,
                cloud: launched.candidate.offer.cloud,
                gpus_per_node: gpus_per_node(&launched.candidate),
                mounts,
            };
            let timer = async {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let outcome = tokio::select! {
                outcome = run_job(args, task, &job, config, &cluster, &launched.nodes, &key, home, &db) => outcome,
                () = interrupt.wait() => Err(Interrupted.into()),
                () = timer => Err(DeadlineExceeded(deadline.map(|(_, d)| d).unwrap_or_default()).into()),
            };
            // A node that ended itself at the deadline drops the connection first on a busy
            // machine; that failure is the deadline, not an SSH problem.
            match (outcome, deadline) {
                (Err(e), Some((at, d)))
                    if tokio::time::Instant::now() >= at && e.downcast_ref::<Interrupted>().is_none() =>
                {
                    Err(DeadlineExceeded(d).into())
                }
                (outcome, _) => outcome,
            }
        }
    };
    let torn_down = if args.down {
        provision::teardown(&db, providers, &cluster)
            .await
            .with_context(|| format!("tearing down `{cluster}`"))?;
        output::message(&format!("cluster `{cluster}` torn down"));
        true
    } else {
        let how = if args.max_duration.is_some() {
            " (its nodes power themselves off at the --max-duration deadline)"
        } else {
            ""
        };
        output::message(&format!(
            "cluster `{cluster}` is still up{how}; `broker down {cluster}` stops the billing"
        ));
        false
    };
    let (end, code) = run_end(&outcome);
    if let Some(run_id) = run_started {
        finish_run(&db, run_id, end, code);
    }
    if args.json {
        report.set_attempts(&db.attempts(&cluster)?);
        if let Ok(JobOutcome::Detached(id) | JobOutcome::Exited(id, _)) = &outcome {
            report.set_job(*id);
        }
        report.finish(started, end, code, torn_down);
        output::data(&report.to_json());
    }
    let code = match outcome? {
        JobOutcome::Detached(_) => 0,
        JobOutcome::Exited(_, code) => code,
    };
    Ok(if code == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Job(u8::try_from(code).unwrap_or(1))
    })
}

/// The cluster outlived `--max-duration`; its nodes power themselves off.
#[derive(Debug, thiserror::Error)]
#[error(
    "the run reached its --max-duration of {}; the nodes power themselves off at that deadline",
    crate::duration::format(*.0)
)]
pub struct DeadlineExceeded(pub Duration);

/// How the job phase ended.
enum JobOutcome {
    /// `--detach`: job `id` was started and left running.
    Detached(u64),
    /// Job `id` ended everywhere with this exit code (the first failing rank's).
    Exited(u64, i32),
}

fn cluster_name(args: &LaunchArgs, task: &Task) -> anyhow::Result<ClusterName> {
    if let Some(name) = &args.cluster {
        return name.parse().map_err(|e| UserError::new(format!("{e}")).into());
    }
    // The task's name made cloud-safe, plus a suffix so two launches of one file do not collide.
    let base: String = task
        .name
        .as_deref()
        .unwrap_or("job")
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let base = base.trim_matches('-');
    let base = if base.starts_with(|c: char| c.is_ascii_lowercase()) {
        base
    } else {
        "job"
    };
    let suffix = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "{}-{:04x}",
        base.chars().take(30).collect::<String>().trim_end_matches('-'),
        suffix & 0xffff
    );
    Ok(name.parse()?)
}

fn confirm(first: &Candidate, cluster: &ClusterName) -> anyhow::Result<bool> {
    let o = &first.offer;
    let question = format!(
        "launch `{cluster}`: {} x {} on {} in {} at {}/h? [y/N] ",
        first.nodes,
        o.instance_type,
        o.cloud,
        o.location,
        crate::format::usd(first.hourly_total)
    );
    if !std::io::stdin().is_terminal() {
        return Err(UserError::new("refusing to create machines without confirmation")
            .with_hint("pass `--yes` when running without a terminal")
            .into());
    }
    output::prompt(&question);
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

async fn ensure_docker_image(docker: &dyn Provider) -> anyhow::Result<()> {
    // The provider trait has no notion of images; only the Docker cloud builds one locally.
    let provider = DockerProvider::new(DockerConfig::from_env());
    let _ = docker;
    let spinner = output::spinner("node image: checking");
    let status = provider
        .ensure_image_with_progress(|line| spinner.set_message(format!("node image: {line}")))
        .await?;
    spinner.finish_and_clear();
    if matches!(status, broker_docker::ImageStatus::Built) {
        output::message("node image built");
    }
    Ok(())
}

/// Writes the run's ledger record; a failure is a warning, since the nodes exist and the job
/// should still run (and be torn down).
#[allow(clippy::too_many_arguments)]
fn record_run(
    db: &StateDb,
    cluster: &ClusterName,
    task: &Task,
    source: &TaskSource,
    plan: &[Candidate],
    chosen: &Candidate,
    git: Option<&(String, bool)>,
    image: Option<String>,
) -> Option<i64> {
    let text = String::from_utf8_lossy(&source.bytes).into_owned();
    let start = RunStart {
        cluster: cluster.clone(),
        job_id: None,
        kind: RunKind::Launch,
        task_name: task.name.clone(),
        task_file: Some(source.file.display().to_string()),
        task_hash: Some(ledger::task_hash(&source.bytes)),
        overrides: Some(ledger::run_overrides(&source.overrides, Some(&text), source.max_price)),
        task_content: Some(text),
        workdir_commit: git.map(|(c, _)| c.clone()),
        workdir_dirty: git.map(|(_, d)| *d),
        image,
        offer: chosen.into(),
        num_nodes: chosen.nodes,
        candidates: ledger::beaten_candidates(plan, chosen),
        labels: task.resources.labels.clone(),
        started_at: unix_now(),
    };
    match db.start_run(&start) {
        Ok(id) => Some(id),
        Err(e) => {
            output::message(&format!("warning: could not record the run in the ledger: {e}"));
            None
        }
    }
}

/// How a launch ended, once, for both the `--json` report and the run ledger.
fn run_end(outcome: &anyhow::Result<JobOutcome>) -> (RunEnd, Option<i32>) {
    match outcome {
        Ok(JobOutcome::Detached(_)) => (RunEnd::Running, None),
        Ok(JobOutcome::Exited(_, code)) => (if *code == 0 { RunEnd::Succeeded } else { RunEnd::Failed }, Some(*code)),
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => (RunEnd::Interrupted, None),
        Err(e) if e.downcast_ref::<DeadlineExceeded>().is_some() => (RunEnd::DeadlineExceeded, None),
        Err(e) if e.downcast_ref::<provision::ProvisionError>().is_some() => (RunEnd::LaunchFailed, None),
        Err(_) => (RunEnd::Error, None),
    }
}

/// Closes the run's ledger record with how the job ended. A detached job's record stays open
/// until `logs`, `queue` or `status` learn its exit code.
fn finish_run(db: &StateDb, run_id: i64, end: RunEnd, code: Option<i32>) {
    let (state, code) = match end {
        RunEnd::Running => return,
        RunEnd::Succeeded => (RunState::Succeeded, code),
        RunEnd::Interrupted => (RunState::Interrupted, None),
        // The ledger keeps the exit code broker itself gives for a deadline.
        RunEnd::DeadlineExceeded => (RunState::Failed, Some(124)),
        RunEnd::Failed | RunEnd::LaunchFailed | RunEnd::Error => (RunState::Failed, code),
    };
    if let Err(e) = db.finish_run(run_id, unix_now(), code, state) {
        output::message(&format!("warning: could not close run {run_id} in the ledger: {e}"));
    }
}

/// What the job needs to know about where it landed.
struct JobPlan {
    /// The run's ledger record, to attach the job id to.
    run_id: Option<i64>,
    /// The container image to run in (`image_id: docker:IMAGE`).
    image: Option<String>,
    /// The cloud, for its login user and `ProxyCommand`.
    cloud: Cloud,
    /// Whole GPUs on each node (`BROKER_NUM_GPUS_PER_NODE`).
    gpus_per_node: u32,
    /// `file_mounts`: local path (checked to exist) -> remote path.
    mounts: Vec<(PathBuf, String)>,
}

/// The task's `file_mounts` with local paths resolved (`~/` is the user's home, a relative path
/// is relative to the task file, as `workdir` is) and checked to exist.
fn local_mounts(task: &Task, task_file: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let base = task_file.parent().unwrap_or_else(|| Path::new("."));
    let mut mounts = Vec::new();
    for (remote, local) in &task.file_mounts {
        let path = match local.strip_prefix("~/") {
            Some(rest) => std::env::home_dir().unwrap_or_default().join(rest),
            None => base.join(local),
        };
        if !path.exists() {
            return Err(UserError::new(format!(
                "file_mounts: `{local}` (for `{remote}`) does not exist: {}",
                path.display()
            ))
            .with_hint(format!(
                "paths are relative to the task file's directory, {}",
                base.display()
            ))
            .into());
        }
        mounts.push((path, remote.clone()));
    }
    Ok(mounts)
}

/// The machine image to boot: `image_id` unless it names a container (`docker:`), which the job
/// runs in instead (see [`job_image`]).
fn machine_image(task: &Task) -> Option<String> {
    task.resources.image_id.clone().filter(|id| !id.starts_with("docker:"))
}

/// Whole GPUs on each node of `candidate`.
pub(super) fn gpus_per_node(candidate: &Candidate) -> u32 {
    whole_gpus(candidate.offer.accelerator.as_ref())
}

/// Whole GPU devices for an offer's accelerators; a fractional share counts as one device.
pub(super) fn whole_gpus(accelerator: Option<&broker_provider::Accelerator>) -> u32 {
    accelerator.map_or(0, |a| {
        // Catalog counts are small positive numbers; the cast cannot truncate meaningfully.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = a.count.ceil().max(0.0) as u32;
        whole
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_job(
    args: &LaunchArgs,
    task: &Task,
    job: &JobPlan,
    config: &Config,
    cluster: &ClusterName,
    nodes: &[Node],
    key: &UserKey,
    home: &Path,
    db: &StateDb,
) -> anyhow::Result<JobOutcome> {
    let cluster_dir = home.join("clusters").join(cluster.as_str());
    fs_err::create_dir_all(&cluster_dir)?;
    let known_hosts = cluster_dir.join("known_hosts");
    // Every per-node step runs on all nodes at once, so an 8-node launch costs about what a
    // 1-node launch does.
    let quiet = args.quiet;
    let hide_progress = args.quiet || args.json;
    let progress = output::Stage::start(hide_progress, "ssh", &format!("waiting for {} node(s)", nodes.len()));
    let sessions = try_join_all(nodes.iter().map(|node| {
        let known_hosts = &known_hosts;
        async move {
            let addr = node
                .ssh
                .with_context(|| format!("node {} of `{cluster}` has no SSH address", node.rank))?;
            let target = super::nodes::target(addr, job.cloud, config, key, known_hosts);
            let session = ssh::connect(&target, SSH_DEADLINE)
                .await
                .with_context(|| format!("reaching node {} over SSH", node.rank))?;
            anyhow::Ok((node, target, session))
        }
    }))
    .await?;
    progress.done("connected, host keys pinned");
    for (node, target, _) in &sessions {
        if let Some(pinned) = ssh::pinned_key(&known_hosts, target) {
            db.set_host_key(cluster, node.rank, &pinned)?;
        }
    }

    crate::failpoint::hit("after-ssh");

    let progress = output::Stage::start(hide_progress, "sync", "workdir and file mounts");
    if let Some(workdir) = &task.workdir {
        try_join_all(
            sessions
                .iter()
                .map(|(_, target, _)| ssh::rsync_dir(target, workdir, REMOTE_WORKDIR)),
        )
        .await
        .context("syncing the workdir")?;
    }
    for (local, remote) in &job.mounts {
        try_join_all(
            sessions
                .iter()
                .map(|(_, target, _)| ssh::rsync_path(target, local, remote)),
        )
        .await
        .with_context(|| format!("syncing file_mounts `{remote}`"))?;
    }
    progress.done("done");

    let job_id = db.add_job(cluster, task.name.as_deref().unwrap_or("job"))?;
    if let Some(run_id) = job.run_id {
        db.set_run_job(run_id, job_id)?;
    }
    let ips: Vec<String> = nodes
        .iter()
        .map(|n| n.private_ip.map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string()))
        .collect();
    let gpus = job.gpus_per_node;
    let ids = try_join_all(sessions.iter().map(|(node, _, session)| {
        let image = job.image.clone();
        let spec = JobSpec {
            id: job_id,
            envs: job_env(task, cluster, node.rank, &ips, gpus, job_id),
            setup: task.setup.clone(),
            run: task.run.clone().unwrap_or_default(),
            workdir: if task.workdir.is_some() {
                REMOTE_WORKDIR.to_owned()
            } else {
                ".".to_owned()
            },
            image,
            gpus: gpus > 0,
        };
        async move {
            ssh::submit(session, &spec)
                .await
                .with_context(|| format!("starting the job on node {}", node.rank))
        }
    }))
    .await?;
    db.set_job(cluster, job_id, crate::state::JobState::Running, None)?;
    // With `--down` and no `-i`, the nodes still remove themselves shortly after the job ends:
    // this process normally tears down first, but if it dies (a killed CI runner) nothing else
    // would. The grace leaves time to read the job's last lines and exit code.
    let setting = match (args.idle, args.down) {
        (Some(idle), down) => Some(ssh::Autostop::After { idle, down }),
        (None, true) => Some(ssh::Autostop::After {
            idle: DOWN_BACKSTOP,
            down: true,
        }),
        (None, false) => None,
    };
    if let Some(setting) = setting {
        try_join_all(sessions.iter().map(|(node, _, session)| async move {
            ssh::set_autostop(session, setting)
                .await
                .with_context(|| format!("setting autostop on node {}", node.rank))
        }))
        .await?;
        if args.idle.is_some() {
            output::message(&super::power::describe(cluster, setting));
        }
    }
    if args.detach {
        output::message(&format!(
            "job {job_id} started on cluster {cluster}; follow it with: broker logs {cluster} {job_id} --follow"
        ));
        return Ok(JobOutcome::Detached(job_id));
    }
    crate::failpoint::hit("after-submit");

    let many = sessions.len() > 1;
    // With `--json`, stdout is the report's: the job's lines go to stderr.
    let emit = |line: &str| {
        if args.json {
            output::message(line);
        } else {
            output::job_line(line);
        }
    };
    // Until the job prints, a spinner says it is starting (setup may be quiet for a while).
    let waiting = output::spinner_unless(hide_progress, &format!("job {job_id}: running setup and run"));
    let follows = sessions.iter().zip(&ids).map(|((node, _, session), id)| {
        let rank = node.rank;
        let waiting = waiting.clone();
        async move {
            ssh::follow(session, *id, |line| {
                waiting.finish_and_clear();
                if !quiet {
                    if many {
                        emit(&format!("(rank {rank}) {line}"));
                    } else {
                        emit(line);
                    }
                }
            })
            .await
        }
    });
    // Polled together, so every node's output streams as it comes.
    let codes = futures_util::future::join_all(follows).await;
    waiting.finish_and_clear();
    let mut code = 0;
    for result in codes {
        let c = result?;
        if code == 0 && c != 0 {
            code = c;
        }
    }
    let state = if code == 0 {
        crate::state::JobState::Succeeded
    } else {
        crate::state::JobState::Failed
    };
    db.set_job(cluster, job_id, state, Some(code))?;
    Ok(JobOutcome::Exited(job_id, code))
}

/// The container image the job runs in, from `image_id: docker:IMAGE`. Any other `image_id`
/// names a machine image, which VM clouds boot; the Docker cloud has none and says so.
pub(super) fn job_image(task: &Task, cloud: Option<Cloud>) -> Option<String> {
    let id = task.resources.image_id.as_deref()?;
    match id.strip_prefix("docker:") {
        Some(image) if !image.trim().is_empty() => Some(image.trim().to_owned()),
        _ => {
            if cloud == Some(Cloud::Docker) {
                output::message(&format!(
                    "note: `image_id: {id}` is a machine image, which the docker cloud ignores; \
                     `docker:IMAGE` runs the job in a container of IMAGE"
                ));
            }
            None
        }
    }
}

/// The job's environment: the task's envs and secrets, then broker's own variables and their
/// SkyPilot twins (set last, so a task cannot spoof its rank).
pub(super) fn job_env(
    task: &Task,
    cluster: &ClusterName,
    rank: u32,
    ips: &[String],
    gpus: u32,
    job_id: u64,
) -> BTreeMap<String, String> {
    let mut env = task.envs.clone();
    env.extend(task.secrets.clone());
    let ours = [
        ("NODE_RANK", rank.to_string()),
        ("NODE_IPS", ips.join("\n")),
        ("NUM_NODES", ips.len().to_string()),
        ("NUM_GPUS_PER_NODE", gpus.to_string()),
        ("JOB_ID", job_id.to_string()),
        ("CLUSTER_NAME", cluster.to_string()),
    ];
    for (name, value) in ours {
        env.insert(format!("BROKER_{name}"), value.clone());
        env.insert(format!("SKYPILOT_{name}"), value);
    }
    env
}
