//! Cost totals over recorded runs, for `broker cost-report`.
//!
//! Pure arithmetic on [`RunRecord`]s: each run costs its recorded hourly price times the time it
//! ran, so a later catalog change, or an instance type since dropped from every catalog, leaves
//! past totals exactly as they were. Days are UTC; a run that crosses midnight is split there,
//! so each day carries the hours it actually had.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use super::short_commit;
use crate::date::Date;
use crate::state::RunRecord;

const DAY: i64 = 86_400;

/// What a report totals by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The cluster the run ran on.
    Cluster,
    /// The task's name (else its file name).
    Task,
    /// The workdir's commit, `+dirty` apart from clean.
    Commit,
    /// The UTC day.
    Day,
}

impl GroupBy {
    /// Its name, as in `--by` and the JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cluster => "cluster",
            Self::Task => "task",
            Self::Commit => "commit",
            Self::Day => "day",
        }
    }
}

/// Totals of a group of runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Runs with time in the group (a run crossing midnight counts on both days).
    pub runs: usize,
    /// Node-hours (nodes times hours).
    pub node_hours: f64,
    /// USD, at the prices recorded when each run started.
    pub cost: f64,
}

/// One line of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostGroup {
    /// The cluster, task, commit or day.
    pub key: String,
    /// Its totals.
    #[serde(flatten)]
    pub totals: Totals,
}

/// A cost report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    /// What it is grouped by.
    pub by: &'static str,
    /// The first day counted (`YYYY-MM-DD`), if limited.
    pub since: Option<String>,
    /// The groups: days in order, anything else most expensive first.
    pub groups: Vec<CostGroup>,
    /// Every run counted once.
    pub total: Totals,
}

/// Totals `runs` by `by`, counting only time from the start of `since` (UTC) on; a run still
/// going is counted up to `now` (Unix seconds).
pub fn cost_report(runs: &[RunRecord], by: GroupBy, since: Option<Date>, now: i64) -> CostReport {
    let since_secs = since.map(midnight);
    let mut groups: BTreeMap<String, (BTreeSet<i64>, f64, f64)> = BTreeMap::new();
    let mut counted = BTreeSet::new();
    let mut total = Totals::default();
    for run in runs {
        let end = run.ended_at.unwrap_or(now).max(run.started_at);
        let from = since_secs.map_or(run.started_at, |s| run.started_at.max(s));
        // Ended before the window opened; a run of no length counts where it started.
        if end < from || (end == from && run.started_at < from) {
            continue;
        }
        let mut add = |key: String, secs: i64| {
            let hours = secs as f64 / 3600.0;
            let node_hours = f64::from(run.num_nodes) * hours;
            let cost = run.offer.hourly_total * hours;
            let group = groups.entry(key).or_default();
            group.0.insert(run.id);
            group.1 += node_hours;
            group.2 += cost;
            total.node_hours += node_hours;
            total.cost += cost;
        };
        counted.insert(run.id);
        match by {
            GroupBy::Day => {
                let mut at = from;
                loop {
                    let day = day_of(at);
                    let until = end.min(midnight(day) + DAY);
                    add(day.to_string(), until - at);
                    at = until;
                    if at >= end {
                        break;
                    }
                }
            }
            GroupBy::Cluster => add(run.cluster.clone(), end - from),
            GroupBy::Task => add(task_key(run), end - from),
            GroupBy::Commit => add(
                short_commit(run.workdir_commit.as_deref(), run.workdir_dirty),
                end - from,
            ),
        }
    }
    total.runs = counted.len();
    let mut groups: Vec<CostGroup> = groups
        .into_iter()
        .map(|(key, (ids, node_hours, cost))| CostGroup {
            key,
            totals: Totals {
                runs: ids.len(),
                node_hours,
                cost,
            },
        })
        .collect();
    if by != GroupBy::Day {
        // Stable, so equal costs stay in key order.
        groups.sort_by(|a, b| b.totals.cost.total_cmp(&a.totals.cost));
    }
    CostReport {
        by: by.as_str(),
        since: since.map(|d| d.to_string()),
        groups,
        total,
    }
}

/// The task a run is reported under: its name, else its file's name, else `-`.
pub fn task_key(run: &RunRecord) -> String {
    run.task_name
        .clone()
        .or_else(|| {
            run.task_file
                .as_deref()
                .and_then(|f| Path::new(f).file_name())
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "-".to_owned())
}

/// Unix seconds at the start of `day` (UTC).
pub fn midnight(day: Date) -> i64 {
    Date::from_system_time(UNIX_EPOCH).days_until(day) * DAY
}

/// The UTC day Unix second `secs` falls on.
pub fn day_of(secs: i64) -> Date {
    let at = u64::try_from(secs).map_or(UNIX_EPOCH, |s| UNIX_EPOCH + Duration::from_secs(s));
    Date::from_system_time(at)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use broker_provider::Cloud;

    use super::*;
    use crate::state::{RunKind, RunOffer, RunState};

    fn day(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn run(id: i64, cluster: &str, start: i64, end: Option<i64>, price: f64) -> RunRecord {
        RunRecord {
            id,
            cluster: cluster.into(),
            job_id: Some(1),
            kind: RunKind::Launch,
            task_name: None,
            task_file: Some("tasks/train.yaml".into()),
            task_hash: None,
            task_content: None,
            overrides: None,
            workdir_commit: Some("0123456789abcdef".into()),
            workdir_dirty: Some(id % 2 == 0),
            image: None,
            offer: RunOffer {
                cloud: Cloud::Aws,
                region: "us-east-1".into(),
                zone: None,
                instance_type: "g5.xlarge".into(),
                spot: false,
                hourly_total: price,
            },
            num_nodes: 2,
            candidates: Vec::new(),
            labels: BTreeMap::new(),
            started_at: start,
            ended_at: end,
            exit_code: end.map(|_| 0),
            state: if end.is_some() {
                RunState::Succeeded
            } else {
                RunState::Running
            },
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn midnight_and_day_of_agree() {
        let d = day("2026-11-28");
        assert_eq!(midnight(d), 1_795_824_000);
        assert_eq!(day_of(midnight(d)), d);
        assert_eq!(day_of(midnight(d) - 1), day("2026-11-27"));
    }

    #[test]
    fn a_run_crossing_midnight_is_split_and_counted_once_in_the_total() {
        let m = midnight(day("2026-11-28"));
        // 22:00 to 02:00 at $3/h: $6 on each day.
        let runs = [run(1, "a", m - 2 * 3600, Some(m + 2 * 3600), 3.0)];
        let report = cost_report(&runs, GroupBy::Day, None, m + DAY);
        let keys: Vec<&str> = report.groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["2026-11-27", "2026-11-28"]);
        assert!(
            report
                .groups
                .iter()
                .all(|g| close(g.totals.cost, 6.0) && g.totals.runs == 1)
        );
        assert!(close(report.groups[0].totals.node_hours, 4.0));
        assert_eq!(report.total.runs, 1);
        assert!(close(report.total.cost, 12.0));
    }

    #[test]
    fn since_counts_only_the_time_after_it() {
        let m = midnight(day("2026-11-28"));
        let runs = [
            run(1, "a", m - 2 * 3600, Some(m + 3600), 1.0),
            run(2, "a", m - 5 * 3600, Some(m - 3600), 1.0),
            run(3, "b", m + 3600, None, 2.0),
        ];
        let report = cost_report(&runs, GroupBy::Cluster, Some(day("2026-11-28")), m + 4 * 3600);
        assert_eq!(report.since.as_deref(), Some("2026-11-28"));
        assert_eq!(report.total.runs, 2, "run 2 ended before the day began");
        // b: 3 h at $2 so far; a: the 1 h after midnight at $1. Most expensive first.
        let lines: Vec<(&str, f64)> = report.groups.iter().map(|g| (g.key.as_str(), g.totals.cost)).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, "b");
        assert!(close(lines[0].1, 6.0) && close(lines[1].1, 1.0));
    }

    #[test]
    fn task_and_commit_keys() {
        let mut named = run(1, "a", 0, Some(3600), 1.0);
        named.task_name = Some("train".into());
        let runs = [named, run(2, "a", 0, Some(3600), 1.0), run(3, "a", 0, Some(3600), 1.0)];
        let by_task = cost_report(&runs, GroupBy::Task, None, 0);
        let keys: BTreeSet<&str> = by_task.groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["train", "train.yaml"].into_iter().collect());
        let by_commit = cost_report(&runs, GroupBy::Commit, None, 0);
        let keys: BTreeSet<&str> = by_commit.groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["0123456", "0123456+dirty"].into_iter().collect());
    }

    #[test]
    fn a_run_of_no_length_counts_once_at_no_cost() {
        let runs = [run(1, "a", 100, Some(100), 5.0)];
        let report = cost_report(&runs, GroupBy::Day, None, 200);
        assert_eq!(report.total.runs, 1);
        assert_eq!(report.groups.len(), 1);
        assert!(close(report.total.cost, 0.0));
    }
}
