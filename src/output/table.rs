//! Price and plan tables. Pure functions from data to text, so tests snapshot them directly.

use std::collections::BTreeMap;

use broker_provider::{Candidate, Cloud, Offer};
use comfy_table::{CellAlignment, ContentArrangement, LineStyle, Table, TableStyle, presets};

use crate::format::{number, usd};

/// Columns aligned by spaces with one rule under the header: compact enough for long plans.
const STYLE: TableStyle = presets::NOTHING.header_separator(LineStyle::none().fill('─').junction('─'));

fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(STYLE)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(header.iter().copied());
    table
}

fn right_align(table: &mut Table, columns: &[usize]) {
    for &i in columns {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn opt(value: Option<f64>, f: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "-".to_owned(), f)
}

/// `broker cost A100:8`: one row per candidate, cheapest first.
pub fn render_cost_table(candidates: &[&Candidate]) -> String {
    let mut table = new_table(&[
        "GPU",
        "COUNT",
        "CLOUD",
        "INSTANCE TYPE",
        "VCPUS",
        "MEMORY",
        "$/H",
        "SPOT $/H",
        "$/GPU-H",
        "REGION",
    ]);
    for c in candidates {
        let o = &c.offer;
        let (gpu, count) = match &o.accelerator {
            Some(a) => (a.name.to_string(), number(a.count)),
            None => ("-".to_owned(), "-".to_owned()),
        };
        let per_gpu = o
            .accelerator
            .as_ref()
            .filter(|a| a.count > 0.0)
            .map(|a| c.hourly_per_node() / a.count);
        table.add_row(vec![
            gpu,
            count,
            o.cloud.to_string(),
            o.instance_type.to_string(),
            opt(o.vcpus, number),
            opt(o.memory_gib, |m| format!("{} GiB", number(m))),
            opt(o.price, usd),
            opt(o.spot_price, usd),
            opt(per_gpu, usd),
            o.location.region.to_string(),
        ]);
    }
    right_align(&mut table, &[1, 4, 5, 6, 7, 8]);
    table.to_string()
}

/// `broker cost` with no accelerator: the cheapest price per GPU-hour of every accelerator on
/// every cloud, whatever the count per instance.
pub fn render_accelerator_summary(offers: &[&Offer], spot: bool) -> String {
    let mut best: BTreeMap<String, BTreeMap<Cloud, f64>> = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for o in offers {
        let Some(acc) = o.accelerator.as_ref().filter(|a| a.count > 0.0) else {
            continue;
        };
        let Some(price) = o.price_for(spot) else { continue };
        let key = acc.name.to_lowercase();
        names.entry(key.clone()).or_insert_with(|| acc.name.to_string());
        let cheapest = best.entry(key).or_default().entry(o.cloud).or_insert(f64::INFINITY);
        *cheapest = cheapest.min(price / acc.count);
    }
    let mut clouds: Vec<Cloud> = best.values().flat_map(|m| m.keys().copied()).collect();
    clouds.sort();
    clouds.dedup();
    let mut header = vec!["GPU".to_owned()];
    header.extend(clouds.iter().map(|c| format!("{c} $/GPU-H")));
    let mut table = new_table(&header.iter().map(String::as_str).collect::<Vec<_>>());
    for (key, per_cloud) in &best {
        let mut row = vec![names.get(key).cloned().unwrap_or_default()];
        row.extend(clouds.iter().map(|c| opt(per_cloud.get(c).copied(), usd)));
        table.add_row(row);
    }
    right_align(&mut table, &(1..=clouds.len()).collect::<Vec<_>>());
    table.to_string()
}

/// `broker launch --dry-run`: the plan, first to try at the top.
pub fn render_plan(candidates: &[&Candidate], enabled: impl Fn(Cloud) -> bool) -> String {
    let mut table = new_table(&[
        "#",
        "CLOUD",
        "INSTANCE TYPE",
        "GPU",
        "VCPUS",
        "MEMORY",
        "REGION",
        "ZONE",
        "MARKET",
        "NODES",
        "$/H TOTAL",
        "ENABLED",
    ]);
    for c in candidates {
        let o = &c.offer;
        table.add_row(vec![
            c.rank.to_string(),
            o.cloud.to_string(),
            o.instance_type.to_string(),
            o.accelerator
                .as_ref()
                .map_or_else(|| "-".to_owned(), |a| format!("{}:{}", a.name, number(a.count))),
            opt(o.vcpus, number),
            opt(o.memory_gib, |m| format!("{} GiB", number(m))),
            o.location.region.to_string(),
            o.location.zone.as_deref().unwrap_or("-").to_owned(),
            if c.spot { "spot" } else { "on-demand" }.to_owned(),
            c.nodes.to_string(),
            usd(c.hourly_total),
            if enabled(o.cloud) { "yes" } else { "no" }.to_owned(),
        ]);
    }
    right_align(&mut table, &[0, 4, 5, 9, 10]);
    table.to_string()
}

/// `broker status`: one row per cluster.
pub fn render_clusters(clusters: &[crate::state::ClusterRecord]) -> String {
    let mut table = new_table(&["CLUSTER", "STATE", "CLOUD", "INSTANCE TYPE", "NODES", "WHERE", "$/H"]);
    for c in clusters {
        let place = [c.region.as_deref(), c.zone.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/");
        table.add_row(vec![
            c.name.to_string(),
            c.state.as_str().to_owned(),
            c.cloud.map_or_else(|| "-".to_owned(), |cloud| cloud.to_string()),
            c.instance_type.clone().unwrap_or_else(|| "-".to_owned()),
            c.nodes.len().to_string(),
            if place.is_empty() { "-".to_owned() } else { place },
            opt(c.hourly_total, usd),
        ]);
    }
    right_align(&mut table, &[4, 6]);
    table.to_string()
}

/// One row of the queue, for the table and for `--json`.
#[derive(Debug, serde::Serialize)]
pub struct JobRow {
    /// The job id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// `queued`, `running`, `succeeded`, `failed`, `cancelled` or `lost`.
    pub state: String,
    /// Its exit code, once ended.
    pub exit_code: Option<i32>,
    /// Unix seconds when submitted.
    pub submitted_at: i64,
    /// The same, as `YYYY-MM-DD HH:MM:SS` UTC.
    pub submitted: String,
}

/// `broker queue`: one row per job, oldest first.
pub fn render_jobs(jobs: &[JobRow]) -> String {
    let mut table = new_table(&["ID", "NAME", "STATE", "EXIT", "SUBMITTED (UTC)"]);
    for j in jobs {
        table.add_row(vec![
            j.id.to_string(),
            j.name.clone(),
            j.state.clone(),
            j.exit_code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            j.submitted.clone(),
        ]);
    }
    right_align(&mut table, &[0, 3]);
    table.to_string()
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of Unix seconds.
pub fn utc_timestamp(secs: i64) -> String {
    let day = crate::ledger::report::day_of(secs);
    let of_day = secs.rem_euclid(86_400);
    format!("{day} {:02}:{:02}:{:02}", of_day / 3600, of_day / 60 % 60, of_day % 60)
}

/// A duration as people read it: `42s`, `5m 03s`, `2h 05m`, `3d 04h`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `broker runs`: one row per run, as given (newest first); a running run's duration and cost
/// are counted up to `now` (Unix seconds).
pub fn render_runs(runs: &[crate::state::RunRecord], now: i64) -> String {
    let mut table = new_table(&[
        "ID",
        "STARTED (UTC)",
        "CLUSTER",
        "TASK",
        "COMMIT",
        "OFFER",
        "$/H",
        "DURATION",
        "COST",
        "EXIT",
        "STATE",
    ]);
    for r in runs {
        let o = &r.offer;
        let started = utc_timestamp(r.started_at);
        table.add_row(vec![
            r.id.to_string(),
            // Minutes are enough to tell runs apart; JSON has the seconds.
            started.get(..16).unwrap_or(&started).to_owned(),
            r.cluster.clone(),
            crate::ledger::report::task_key(r),
            crate::ledger::short_commit(r.workdir_commit.as_deref(), r.workdir_dirty),
            format!(
                "{}x {} {}/{}{}",
                r.num_nodes,
                o.instance_type,
                o.cloud,
                o.zone.as_deref().unwrap_or(&o.region),
                if o.spot { " spot" } else { "" }
            ),
            usd(o.hourly_total),
            human_duration(r.seconds_at(now)),
            usd(r.cost_at(now)),
            r.exit_code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            r.state.as_str().to_owned(),
        ]);
    }
    right_align(&mut table, &[0, 6, 7, 8, 9]);
    table.to_string()
}

/// `broker cost-report`: one row per group, then the total.
pub fn render_cost_report(report: &crate::ledger::report::CostReport) -> String {
    let key = match report.by {
        "day" => "DAY (UTC)",
        other => &other.to_uppercase(),
    };
    let mut table = new_table(&[key, "RUNS", "NODE-HOURS", "COST"]);
    let row = |key: &str, t: &crate::ledger::report::Totals| {
        vec![
            key.to_owned(),
            t.runs.to_string(),
            format!("{:.2}", t.node_hours),
            usd(t.cost),
        ]
    };
    for g in &report.groups {
        table.add_row(row(&g.key, &g.totals));
    }
    table.add_row(row("total", &report.total));
    right_align(&mut table, &[1, 2, 3]);
    table.to_string()
}
