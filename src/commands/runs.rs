//! `broker runs`: the run ledger, newest first.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cli::RunsArgs;
use crate::commands::{ExitStatus, nodes};
use crate::output;
use crate::state::{RunFilter, RunOffer, RunOverrides, RunRecord, StateDb, unix_now};

/// One run as `broker runs --json` prints it: every recorded field, flat, plus what follows
/// from them (duration, node-hours, cost so far).
#[derive(Serialize)]
struct RunJson<'a> {
    id: i64,
    cluster: &'a str,
    job_id: Option<u64>,
    kind: &'a str,
    state: &'a str,
    exit_code: Option<i32>,
    task_name: Option<&'a str>,
    task_file: Option<&'a str>,
    task_hash: Option<&'a str>,
    task_content: Option<&'a str>,
    overrides: Option<&'a RunOverrides>,
    workdir_commit: Option<&'a str>,
    workdir_dirty: Option<bool>,
    image: Option<&'a str>,
    cloud: &'a str,
    region: &'a str,
    zone: Option<&'a str>,
    instance_type: &'a str,
    spot: bool,
    num_nodes: u32,
    hourly_price: f64,
    candidates: &'a [RunOffer],
    labels: &'a BTreeMap<String, String>,
    started_at: i64,
    started: String,
    ended_at: Option<i64>,
    duration_seconds: i64,
    node_hours: f64,
    cost: f64,
}

impl<'a> RunJson<'a> {
    fn new(r: &'a RunRecord, now: i64) -> Self {
        Self {
            id: r.id,
            cluster: &r.cluster,
            job_id: r.job_id,
            kind: r.kind.as_str(),
            state: r.state.as_str(),
            exit_code: r.exit_code,
            task_name: r.task_name.as_deref(),
            task_file: r.task_file.as_deref(),
            task_hash: r.task_hash.as_deref(),
            task_content: r.task_content.as_deref(),
            overrides: r.overrides.as_ref(),
            workdir_commit: r.workdir_commit.as_deref(),
            workdir_dirty: r.workdir_dirty,
            image: r.image.as_deref(),
            cloud: r.offer.cloud.as_str(),
            region: &r.offer.region,
            zone: r.offer.zone.as_deref(),
            instance_type: &r.offer.instance_type,
            spot: r.offer.spot,
            num_nodes: r.num_nodes,
            hourly_price: r.offer.hourly_total,
            candidates: &r.candidates,
            labels: &r.labels,
            started_at: r.started_at,
            started: output::table::utc_timestamp(r.started_at),
            ended_at: r.ended_at,
            duration_seconds: r.seconds_at(now),
            node_hours: r.node_hours_at(now),
            cost: r.cost_at(now),
        }
    }
}

pub(super) fn run(args: &RunsArgs) -> anyhow::Result<ExitStatus> {
    let home = nodes::home()?;
    let db = StateDb::open(&home.join("state.db"))?;
    let limit = (args.limit > 0).then_some(args.limit);
    // One more than shown, to know whether older runs were left out.
    let mut runs = db.runs(&RunFilter {
        cluster: args.cluster.clone(),
        limit: limit.map(|n| n.saturating_add(1)),
        ..RunFilter::default()
    })?;
    let cut = limit.filter(|&n| runs.len() > n);
    if let Some(n) = cut {
        runs.truncate(n);
    }
    let now = unix_now();
    if args.json {
        let rows: Vec<RunJson<'_>> = runs.iter().map(|r| RunJson::new(r, now)).collect();
        output::data(&output::json::to_string(&rows));
    } else if runs.is_empty() {
        output::message(&match &args.cluster {
            Some(cluster) => format!("no runs recorded on cluster `{cluster}`"),
            None => "no runs recorded yet; `broker launch TASK.yaml` records one".to_owned(),
        });
    } else {
        output::data(&output::table::render_runs(&runs, now));
    }
    if let Some(n) = cut {
        output::message(&format!("showing the newest {n} runs; `--limit 0` shows all"));
    }
    Ok(ExitStatus::Success)
}
