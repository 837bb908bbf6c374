//! `broker launch`: plan a task file; with `--dry-run`, show the plan and stop.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context as _;
use broker_provider::{Candidate, Cloud};
use serde::Serialize;

use broker_docker::{DockerConfig, DockerProvider};

use crate::catalog::{Catalog, Origin, TableInfo};
use crate::cli::{LaunchArgs, OverrideArgs};
use crate::commands::{ExitStatus, UserError};
use crate::commands::{clouds, nodes, up};
use crate::output::json::CandidateJson;
use crate::output::{self, table};
use crate::task::{Overrides, Task};
use crate::vocabulary::Vocabulary;
use crate::{env, ledger, optimizer};

pub(super) async fn run(args: &LaunchArgs) -> anyhow::Result<ExitStatus> {
    if let Some(price) = args.max_price
        && !(price.is_finite() && price > 0.0)
    {
        return Err(UserError::new(format!(
            "`--max-price` must be a positive number of USD per hour, got `{price}`"
        ))
        .into());
    }
    let mut catalog = Catalog::load(env::user_catalog_dir().as_deref(), &[])?;
    // The Docker cloud's offers are sized from this host, not read from a table.
    let docker = DockerProvider::new(DockerConfig::from_env());
    catalog.extend(
        TableInfo {
            cloud: Cloud::Docker,
            snapshot: Some(env::today()),
            origin: Origin::Host,
            rows: 0,
        },
        docker.offers(),
    );
    let vocab = Vocabulary::from_offers(&catalog.offers);
    let (task, source) = load_task(args, &vocab)?;
    let request = task.request(source.max_price);
    let plan = optimizer::rank(&request, &catalog.offers)?;
    // A cloud is enabled when its provider is compiled in, the settings allow it and its
    // credentials work; only the plan's clouds are asked.
    let config = nodes::settings()?;
    let wanted: BTreeSet<Cloud> = plan
        .iter()
        .map(|c| c.offer.cloud)
        .filter(|&cloud| config.allows(cloud))
        .collect();
    let providers = clouds::enabled(&wanted).await;
    let enabled: BTreeSet<Cloud> = providers.keys().copied().collect();

    if !args.dry_run {
        let home = env::broker_home().ok_or_else(|| {
            UserError::new("cannot find a home directory for broker's state").with_hint("set `BROKER_HOME`")
        })?;
        return up::execute(args, &task, &source, &plan, &providers, &home, &config).await;
    }
    print_plan(args, &task, &plan, &enabled);
    Ok(ExitStatus::Success)
}

/// Where a launch's task came from, as the run ledger records it.
pub(super) struct TaskSource {
    /// The task file's path (as recorded, for `--from-run`).
    pub(super) file: PathBuf,
    /// Its bytes as read.
    pub(super) bytes: Vec<u8>,
    /// The resource flags in effect.
    pub(super) overrides: Overrides,
    /// `--max-price` in effect.
    pub(super) max_price: Option<f64>,
}

fn load_task(args: &LaunchArgs, vocab: &Vocabulary) -> anyhow::Result<(Task, TaskSource)> {
    let given = overrides(&args.overrides);
    let source = match (args.from_run, &args.file) {
        (Some(id), _) => recorded_source(id, &given, args.max_price)?,
        (None, Some(file)) => {
            let bytes = fs_err::read(file).map_err(|e| {
                UserError::new(format!("cannot read task file: {e}"))
                    .with_hint("give the path of a task YAML, e.g. `examples/hello.yaml`")
            })?;
            TaskSource {
                file: file.clone(),
                bytes,
                overrides: given,
                max_price: args.max_price,
            }
        }
        (None, None) => return Err(UserError::new("a task file or `--from-run ID` is needed").into()),
    };
    // `--env` must be known while parsing: it supplies `envs` the file leaves null.
    let mut task = source.overrides.parse_task(&source.file, &source.bytes, vocab)?;
    source
        .overrides
        .apply(&mut task, vocab)
        .context("applying command-line overrides")?;
    Ok((task, source))
}

/// The task text and flags of recorded run `id`, with the flags given now on top.
fn recorded_source(id: i64, given: &Overrides, max_price: Option<f64>) -> anyhow::Result<TaskSource> {
    let home =
        env::broker_home().ok_or_else(|| UserError::new("cannot find broker's home").with_hint("set `BROKER_HOME`"))?;
    let db = crate::state::StateDb::open(&home.join("state.db"))?;
    let run = db
        .run(id)?
        .ok_or_else(|| UserError::new(format!("no run {id} is recorded")).with_hint("`broker runs` lists them"))?;
    let inputs = ledger::relaunch_inputs(&run).map_err(|e| UserError::new(e.to_string()))?;
    let workdir = inputs.task_file.parent().unwrap_or_else(|| std::path::Path::new("."));
    let now = ledger::git_state(workdir);
    match (&inputs.workdir_commit, inputs.workdir_dirty, &now) {
        (Some(then), Some(false), Some((commit, false))) if then == commit => {}
        (Some(then), dirty, _) => output::message(&format!(
            "warning: run {id} used commit {}{}; the workdir now is {}: the code may differ",
            ledger::short_commit(Some(then), Some(false)),
            if dirty == Some(true) {
                " with uncommitted changes"
            } else {
                ""
            },
            now.as_ref().map_or_else(
                || "not a git checkout".to_owned(),
                |(c, d)| ledger::short_commit(Some(c), Some(*d))
            )
        )),
        (None, _, _) => {}
    }
    Ok(TaskSource {
        file: inputs.task_file,
        bytes: inputs.task_content.into_bytes(),
        overrides: ledger::merge_overrides(inputs.overrides, given),
        max_price: max_price.or(inputs.max_price),
    })
}

fn overrides(args: &OverrideArgs) -> Overrides {
    Overrides {
        gpus: args.gpus.clone(),
        cloud: args.cloud.clone(),
        region: args.region.clone(),
        zone: args.zone.clone(),
        use_spot: match (args.use_spot, args.no_use_spot) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        num_nodes: args.num_nodes.clone(),
        cpus: args.cpus.clone(),
        memory: args.memory.clone(),
        instance_type: args.instance_type.clone(),
        envs: args.envs.clone(),
    }
}

#[derive(Serialize)]
struct PlanJson<'a> {
    task: Option<&'a str>,
    num_nodes: u32,
    chosen: Option<CandidateJson<'a>>,
    candidates: Vec<CandidateJson<'a>>,
}

fn print_plan(args: &LaunchArgs, task: &Task, plan: &[Candidate], enabled: &BTreeSet<Cloud>) {
    let is_enabled = |cloud: Cloud| enabled.contains(&cloud);
    if args.json {
        let json = PlanJson {
            task: task.name.as_deref(),
            num_nodes: task.num_nodes,
            chosen: plan.first().map(|c| CandidateJson::new(c, is_enabled(c.offer.cloud))),
            candidates: plan
                .iter()
                .map(|c| CandidateJson::new(c, is_enabled(c.offer.cloud)))
                .collect(),
        };
        output::data(&output::json::to_string(&json));
        return;
    }
    if let Some(first) = plan.first() {
        let o = &first.offer;
        output::data(&format!(
            "chosen: {} {} in {} ({}, {} node{}) at {}/h",
            o.cloud,
            o.instance_type,
            o.location,
            if first.spot { "spot" } else { "on-demand" },
            first.nodes,
            if first.nodes == 1 { "" } else { "s" },
            crate::format::usd(first.hourly_total),
        ));
    }
    let shown: Vec<&Candidate> = plan.iter().take(args.show.max(1)).collect();
    output::data(&table::render_plan(&shown, is_enabled));
    if plan.len() > shown.len() {
        output::data(&format!(
            "... and {} more candidates (`--json` lists all)",
            plan.len() - shown.len()
        ));
    }
    if !plan.iter().any(|c| is_enabled(c.offer.cloud)) {
        output::message(
            "note: no cloud in this plan is enabled yet; a real launch needs working credentials (`broker check`)",
        );
    }
}
