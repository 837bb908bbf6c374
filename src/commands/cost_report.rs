//! `broker cost-report`: what recorded runs cost, grouped, from the prices recorded with them.

use crate::cli::{CostReportArgs, ReportBy};
use crate::commands::{ExitStatus, UserError, nodes};
use crate::date::Date;
use crate::ledger::report::{self, CostReport, GroupBy, Totals};
use crate::output;
use crate::state::{RunFilter, RunState, StateDb, unix_now};

pub(super) fn run(args: &CostReportArgs) -> anyhow::Result<ExitStatus> {
    let since = args
        .since
        .as_deref()
        .map(|text| {
            Date::parse(text).ok_or_else(|| {
                UserError::new(format!("invalid `--since` date `{text}`"))
                    .with_hint("give a day as `YYYY-MM-DD`, e.g. `--since 2026-11-01` (UTC)")
            })
        })
        .transpose()?;
    let by = match args.by {
        ReportBy::Cluster => GroupBy::Cluster,
        ReportBy::Task => GroupBy::Task,
        ReportBy::Commit => GroupBy::Commit,
        ReportBy::Day => GroupBy::Day,
    };
    let home = nodes::home()?;
    let db = StateDb::open(&home.join("state.db"))?;
    let runs = db.runs(&RunFilter {
        active_since: since.map(report::midnight),
        ..RunFilter::default()
    })?;
    let now = unix_now();
    let report = report::cost_report(&runs, by, since, now);
    if args.json {
        output::data(&output::json::to_string(&rounded(report)));
        return Ok(ExitStatus::Success);
    }
    if report.groups.is_empty() {
        output::message(&match since {
            Some(day) => format!("no runs since {day}; `broker runs` lists every recorded run"),
            None => "no runs recorded yet; `broker launch TASK.yaml` records one".to_owned(),
        });
        return Ok(ExitStatus::Success);
    }
    output::data(&output::table::render_cost_report(&report));
    let running = runs.iter().filter(|r| r.state == RunState::Running).count();
    if running > 0 {
        output::message(&format!(
            "note: {running} run(s) still running are counted up to now; `broker runs` shows which"
        ));
    }
    Ok(ExitStatus::Success)
}

/// Sums of float products print as `0.30000000000000004`; micro-dollars and micro-hours are
/// more than enough for a report.
fn rounded(mut report: CostReport) -> CostReport {
    let round = |t: &mut Totals| {
        t.cost = (t.cost * 1e6).round() / 1e6;
        t.node_hours = (t.node_hours * 1e6).round() / 1e6;
    };
    for group in &mut report.groups {
        round(&mut group.totals);
    }
    round(&mut report.total);
    report
}
