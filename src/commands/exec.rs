//! `broker exec`: run a task file or a command on an existing cluster, as a new job.
//!
//! The job is queued on every node behind the cluster's running job (the agent's lock), gets
//! the same `BROKER_*`/`SKYPILOT_*` variables as a launched job, and runs in `sky_workdir` when
//! the node has one (the launch's workdir), else in the home directory.

use std::path::Path;

use anyhow::Context as _;
use broker_docker::{DockerConfig, DockerProvider};
use broker_provider::Cloud;

use crate::catalog::{Catalog, Origin, TableInfo};
use crate::cli::ExecArgs;
use crate::commands::{ExitStatus, nodes, up};
use crate::ssh::{self, JobSpec};
use crate::state::{ClusterRecord, RunKind, RunOffer, RunStart, StateDb, unix_now};
use crate::task::{Overrides, Task, TaskResources};
use crate::vocabulary::Vocabulary;
use crate::{env, ledger, output};

/// Where launch puts the task's workdir (`up::REMOTE_WORKDIR`).
const REMOTE_WORKDIR: &str = "sky_workdir";

pub(super) async fn run(args: &ExecArgs) -> anyhow::Result<ExitStatus> {
    let home = nodes::home()?;
    let db = StateDb::open(&home.join("state.db"))?;
    let cluster = nodes::cluster(&db, &args.cluster)?;
    let overrides = Overrides {
        envs: args.envs.clone(),
        ..Overrides::default()
    };
    let task = match args.command.as_slice() {
        [file] if Path::new(file).is_file() => load_task(Path::new(file), &overrides)?,
        words => command_task(&words.join(" "), &overrides)?,
    };
    ignored_fields(&task, &cluster);

    let connected = nodes::connect_all(&home, &cluster).await?;
    if let Some(workdir) = &task.workdir {
        for node in &connected {
            ssh::rsync_dir(node.session.target(), workdir, REMOTE_WORKDIR)
                .await
                .with_context(|| format!("syncing the workdir to node {}", node.node.rank))?;
        }
    }
    let name = task.name.clone().unwrap_or_else(|| job_name(&args.command));
    let job_id = db.add_job(&cluster.name, &name)?;
    record_run(
        &db,
        &cluster,
        &task,
        &args.command,
        &overrides,
        job_id,
        up::job_image(&task, cluster.cloud),
    );
    let ips: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| n.private_ip.map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string()))
        .collect();
    let gpus = gpus_per_node(&cluster);
    let image = up::job_image(&task, cluster.cloud);
    for node in &connected {
        let rank = node.node.rank;
        let spec = JobSpec {
            id: job_id,
            envs: up::job_env(&task, &cluster.name, rank, &ips, gpus, job_id),
            setup: task.setup.clone(),
            run: task.run.clone().unwrap_or_default(),
            workdir: workdir(&node.session).await?,
            image: image.clone(),
            gpus: gpus > 0,
        };
        ssh::submit(&node.session, &spec)
            .await
            .with_context(|| format!("starting job {job_id} on node {rank}"))?;
    }
    let c = &cluster.name;
    if args.detach {
        output::message(&format!(
            "job {job_id} queued on cluster {c}; follow it with: broker logs {c} {job_id} --follow"
        ));
        return Ok(ExitStatus::Success);
    }
    output::message(&format!("job {job_id} queued on cluster {c}"));
    let code = nodes::follow(&db, c, &connected, job_id).await?;
    Ok(nodes::exit_status(code))
}

/// Writes the exec's ledger record; the job's end closes it (`StateDb::set_job`). A failure is a
/// warning: the job should run whether or not the ledger could be written.
fn record_run(
    db: &StateDb,
    cluster: &crate::state::ClusterRecord,
    task: &Task,
    command: &[String],
    overrides: &Overrides,
    job_id: u64,
    image: Option<String>,
) {
    let Some(offer) = RunOffer::of_cluster(cluster) else {
        return;
    };
    let file = match command {
        [file] if Path::new(file).is_file() => Some(file.clone()),
        _ => None,
    };
    let bytes = file.as_ref().and_then(|f| fs_err::read(f).ok());
    let text = bytes.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    let git = task.workdir.as_deref().and_then(ledger::git_state);
    let start = RunStart {
        cluster: cluster.name.clone(),
        job_id: Some(job_id),
        kind: RunKind::Exec,
        task_name: task.name.clone().or_else(|| Some(job_name(command))),
        task_file: file,
        task_hash: bytes.as_deref().map(ledger::task_hash),
        overrides: Some(ledger::run_overrides(overrides, text.as_deref(), None)),
        task_content: text,
        workdir_commit: git.as_ref().map(|(c, _)| c.clone()),
        workdir_dirty: git.as_ref().map(|(_, d)| *d),
        image,
        offer,
        num_nodes: cluster.num_nodes,
        candidates: Vec::new(),
        labels: task.resources.labels.clone(),
        started_at: unix_now(),
    };
    if let Err(e) = db.start_run(&start) {
        output::message(&format!("warning: could not record the run in the ledger: {e}"));
    }
}

/// A task file, read as `launch` reads it (its names checked against the catalogs).
fn load_task(path: &Path, overrides: &Overrides) -> anyhow::Result<Task> {
    let bytes = fs_err::read(path)?;
    let mut catalog = Catalog::load(env::user_catalog_dir().as_deref(), &[])?;
    catalog.extend(
        TableInfo {
            cloud: Cloud::Docker,
            snapshot: Some(env::today()),
            origin: Origin::Host,
            rows: 0,
        },
        DockerProvider::new(DockerConfig::from_env()).offers(),
    );
    let vocab = Vocabulary::from_offers(&catalog.offers);
    let mut task = overrides.parse_task(path, &bytes, &vocab)?;
    overrides
        .apply(&mut task, &vocab)
        .context("applying command-line overrides")?;
    Ok(task)
}

/// Whole GPUs on each node of `cluster`, from its cloud's catalog (0 when the instance type is
/// not in it, e.g. the Docker cloud's, or the catalog cannot be read).
fn gpus_per_node(cluster: &crate::state::ClusterRecord) -> u32 {
    let (Some(cloud), Some(instance_type)) = (cluster.cloud, cluster.instance_type.as_deref()) else {
        return 0;
    };
    let Ok(catalog) = Catalog::load(env::user_catalog_dir().as_deref(), &[cloud]) else {
        return 0;
    };
    catalog
        .offers
        .iter()
        .find(|o| o.instance_type == instance_type)
        .map_or(0, |o| up::whole_gpus(o.accelerator.as_ref()))
}

/// A task whose `run` is `command` (`sky exec CLUSTER COMMAND`).
fn command_task(command: &str, overrides: &Overrides) -> anyhow::Result<Task> {
    let mut task = Task {
        path: "<command line>".into(),
        name: None,
        workdir: None,
        num_nodes: 1,
        envs: std::collections::BTreeMap::new(),
        secrets: std::collections::BTreeMap::new(),
        file_mounts: std::collections::BTreeMap::new(),
        setup: None,
        run: Some(command.to_owned()),
        resources: no_resources(),
    };
    overrides
        .apply(&mut task, &Vocabulary::from_offers(&[]))
        .context("applying command-line overrides")?;
    Ok(task)
}

/// What a task file without a `resources` section has.
fn no_resources() -> TaskResources {
    TaskResources {
        options: vec![crate::request::Resources::default()],
        ..TaskResources::default()
    }
}

/// Says which of the task's fields `exec` does not use: the cluster is what it is.
fn ignored_fields(task: &Task, cluster: &ClusterRecord) {
    // `image_id` is a property of the job, not of the machines: exec honours it.
    let resources = TaskResources {
        image_id: None,
        ..task.resources.clone()
    };
    if resources != no_resources() {
        output::message(&format!(
            "note: the task's `resources` are ignored (but for `image_id`); the job runs on `{}` as it is",
            cluster.name
        ));
    }
    if task.num_nodes != 1 && usize::try_from(task.num_nodes).ok() != Some(cluster.nodes.len()) {
        output::message(&format!(
            "note: the task's `num_nodes` is ignored; the job runs on all {} node(s) of `{}`",
            cluster.nodes.len(),
            cluster.name
        ));
    }
    if !task.file_mounts.is_empty() {
        output::message("note: the task's `file_mounts` are ignored by `exec`");
    }
}

/// The job's directory: the launch's workdir when the node has one, else the home directory.
async fn workdir(session: &ssh::SshSession) -> anyhow::Result<String> {
    let answer = session
        .run(
            "sh",
            &["-c", &format!("if [ -d {REMOTE_WORKDIR} ]; then echo yes; fi")],
            None,
        )
        .await
        .context("looking for the workdir on the node")?;
    Ok(if String::from_utf8_lossy(&answer).trim() == "yes" {
        REMOTE_WORKDIR.to_owned()
    } else {
        ".".to_owned()
    })
}

/// A short name for a command job: its text, cut to 40 characters.
fn job_name(words: &[String]) -> String {
    let text = words.join(" ");
    let mut name: String = text.chars().take(40).collect();
    if name.len() < text.len() {
        name.push_str("...");
    }
    name
}
