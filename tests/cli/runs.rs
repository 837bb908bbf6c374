//! `broker runs` and `broker cost-report`: the run ledger, seeded through the library API as
//! `launch` and `exec` would record it, then read back through the binary.

use std::collections::BTreeMap;

use broker::ledger::task_hash;
use broker::state::{RunKind, RunOffer, RunOverrides, RunStart, RunState, StateDb};
use broker_provider::Cloud;

use crate::common::{Broker, fixtures};

/// 2026-11-27 00:00:00 UTC.
const NOV_27: i64 = 1_795_737_600;
const HOUR: i64 = 3600;
const SECRET: &str = "hf_cli_SECRET_value";

struct Seed {
    cluster: &'static str,
    kind: RunKind,
    task_name: Option<&'static str>,
    task_file: Option<&'static str>,
    content: Option<String>,
    commit: Option<(&'static str, bool)>,
    offer: RunOffer,
    nodes: u32,
    started_at: i64,
    ended_at: i64,
    exit_code: Option<i32>,
    state: RunState,
}

fn offer(cloud: Cloud, region: &str, zone: &str, instance_type: &str, spot: bool, hourly_total: f64) -> RunOffer {
    RunOffer {
        cloud,
        region: region.into(),
        zone: Some(zone.into()),
        instance_type: instance_type.into(),
        spot,
        hourly_total,
    }
}

fn train_task() -> String {
    format!(
        "# fine-tune\nname: train\nenvs:\n  MODEL: llama  # plain\nsecrets:\n  HF_TOKEN: {SECRET}\nrun: python train.py\n"
    )
}

/// Four finished runs over three days (UTC), $103 and 13 node-hours in all:
/// 1. `exp1` train: 2 nodes at $20/h from Nov 27 22:00 to Nov 28 01:00: $40 on the 27th, $20 on the 28th.
/// 2. `exp1` exec: Nov 28 02:00 to 02:30 at $20/h: $10, exit 1.
/// 3. `ci-gpu`: 1 spot node at $0.50/h, Nov 28 10:00 to 12:00: $1, from a dirty workdir.
/// 4. `old`: an instance type no catalog has, $8/h on Nov 20 for 4 h: $32, lost.
fn seed(broker: &Broker) -> Vec<i64> {
    let p4d = offer(Cloud::Aws, "us-east-1", "us-east-1a", "p4d.24xlarge", false, 20.0);
    let seeds = [
        Seed {
            cluster: "exp1",
            kind: RunKind::Launch,
            task_name: Some("train"),
            task_file: Some("tasks/train.yaml"),
            content: Some(train_task()),
            commit: Some(("4f2a9c1e0b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39", false)),
            offer: p4d.clone(),
            nodes: 2,
            started_at: NOV_27 + 22 * HOUR,
            ended_at: NOV_27 + 25 * HOUR,
            exit_code: Some(0),
            state: RunState::Succeeded,
        },
        Seed {
            cluster: "exp1",
            kind: RunKind::Exec,
            task_name: Some("python eval.py"),
            task_file: None,
            content: None,
            commit: None,
            offer: p4d,
            nodes: 2,
            started_at: NOV_27 + 26 * HOUR,
            ended_at: NOV_27 + 26 * HOUR + HOUR / 2,
            exit_code: Some(1),
            state: RunState::Failed,
        },
        Seed {
            cluster: "ci-gpu",
            kind: RunKind::Launch,
            task_name: None,
            task_file: Some("ci/gpu-test.yaml"),
            content: Some("run: pytest -x\n".into()),
            commit: Some(("a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", true)),
            offer: offer(Cloud::Gcp, "us-central1", "us-central1-a", "g2-standard-4", true, 0.5),
            nodes: 1,
            started_at: NOV_27 + 34 * HOUR,
            ended_at: NOV_27 + 36 * HOUR,
            exit_code: Some(0),
            state: RunState::Succeeded,
        },
        Seed {
            cluster: "old",
            kind: RunKind::Launch,
            task_name: Some("sweep"),
            task_file: Some("sweep.yaml"),
            content: Some("name: sweep\nrun: ./sweep.sh\n".into()),
            commit: None,
            offer: offer(Cloud::Aws, "us-west-2", "us-west-2b", "p9.retired", false, 8.0),
            nodes: 1,
            started_at: NOV_27 - 7 * 24 * HOUR,
            ended_at: NOV_27 - 7 * 24 * HOUR + 4 * HOUR,
            exit_code: None,
            state: RunState::Lost,
        },
    ];
    let db = StateDb::open(&broker.home().join("state.db")).unwrap();
    seeds
        .into_iter()
        .map(|s| {
            let id = db
                .start_run(&RunStart {
                    cluster: s.cluster.parse().unwrap(),
                    job_id: Some(1),
                    kind: s.kind,
                    task_name: s.task_name.map(str::to_owned),
                    task_file: s.task_file.map(str::to_owned),
                    task_hash: s.content.as_deref().map(|c| task_hash(c.as_bytes())),
                    task_content: s.content,
                    overrides: Some(RunOverrides {
                        gpus: Some("A100:8".into()),
                        envs: vec!["HF_TOKEN".into()],
                        ..RunOverrides::default()
                    }),
                    workdir_commit: s.commit.map(|(c, _)| c.to_owned()),
                    workdir_dirty: s.commit.map(|(_, d)| d),
                    image: None,
                    offer: s.offer,
                    num_nodes: s.nodes,
                    candidates: vec![offer(
                        Cloud::Gcp,
                        "us-central1",
                        "us-central1-b",
                        "a2-highgpu-8g",
                        false,
                        29.4,
                    )],
                    labels: BTreeMap::from([("team".to_owned(), "ml".to_owned())]),
                    started_at: s.started_at,
                })
                .unwrap();
            db.finish_run(id, s.ended_at, s.exit_code, s.state).unwrap();
            id
        })
        .collect()
}

fn close(a: &serde_json::Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() < 1e-6
}

#[test]
fn an_empty_ledger_says_how_to_get_a_run() {
    let broker = Broker::new();
    insta::assert_snapshot!(broker.run(&["runs"]).render(), @r"
    exit: 0
    ----- stdout -----
    ----- stderr -----
    no runs recorded yet; `broker launch TASK.yaml` records one
    ");
    insta::assert_snapshot!(broker.run(&["cost-report", "--by", "day"]).render(), @r"
    exit: 0
    ----- stdout -----
    ----- stderr -----
    no runs recorded yet; `broker launch TASK.yaml` records one
    ");
    assert_eq!(broker.run(&["runs", "--json"]).json(), serde_json::json!([]));
    let report = broker.run(&["cost-report", "--json"]).json();
    assert_eq!(report["groups"], serde_json::json!([]));
    assert_eq!(report["total"]["runs"], 0);
}

#[test]
fn runs_lists_the_ledger_newest_first() {
    let broker = Broker::new();
    seed(&broker);
    insta::assert_snapshot!(broker.run(&["runs"]).render());
}

#[test]
fn runs_can_be_limited_and_filtered_by_cluster() {
    let broker = Broker::new();
    let ids = seed(&broker);
    let run = broker.run(&["runs", "--limit", "2", "--json"]);
    let shown: Vec<i64> = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(shown, [ids[2], ids[1]]);
    assert!(
        run.stderr.contains("showing the newest 2 runs; `--limit 0` shows all"),
        "{}",
        run.stderr
    );

    let run = broker.run(&["runs", "--cluster", "exp1", "--json"]);
    let shown: Vec<i64> = run
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(shown, [ids[1], ids[0]]);
    assert!(run.stderr.is_empty(), "{}", run.stderr);

    let run = broker.run(&["runs", "--cluster", "nope"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stderr, "no runs recorded on cluster `nope`\n");
}

#[test]
fn runs_json_has_every_field_and_no_secret() {
    let broker = Broker::new();
    let ids = seed(&broker);
    let run = broker.run(&["runs", "--json"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(!run.stdout.contains(SECRET), "a secret reached the output");
    let rows = run.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let train = rows.iter().find(|r| r["id"] == ids[0]).unwrap();
    let expected_keys = [
        "id",
        "cluster",
        "job_id",
        "kind",
        "state",
        "exit_code",
        "task_name",
        "task_file",
        "task_hash",
        "task_content",
        "overrides",
        "workdir_commit",
        "workdir_dirty",
        "image",
        "cloud",
        "region",
        "zone",
        "instance_type",
        "spot",
        "num_nodes",
        "hourly_price",
        "candidates",
        "labels",
        "started_at",
        "started",
        "ended_at",
        "duration_seconds",
        "node_hours",
        "cost",
    ];
    let keys: Vec<&str> = train.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), expected_keys.len(), "{keys:?}");
    for key in expected_keys {
        assert!(train.get(key).is_some(), "missing `{key}`");
    }
    assert_eq!(train["kind"], "launch");
    assert_eq!(train["state"], "succeeded");
    assert_eq!(train["started"], "2026-11-27 22:00:00");
    assert_eq!(train["duration_seconds"], 3 * HOUR);
    assert!(close(&train["cost"], 60.0));
    assert!(close(&train["node_hours"], 6.0));
    assert_eq!(train["task_hash"], task_hash(train_task().as_bytes()));
    assert_eq!(
        train["task_content"],
        train_task().replace(SECRET, "null"),
        "the text is kept as written, its secret nulled"
    );
    assert_eq!(train["overrides"]["gpus"], "A100:8");
    assert_eq!(train["overrides"]["envs"], serde_json::json!(["HF_TOKEN"]));
    assert_eq!(train["candidates"][0]["instance_type"], "a2-highgpu-8g");
    assert_eq!(train["labels"]["team"], "ml");
    let exec = rows.iter().find(|r| r["id"] == ids[1]).unwrap();
    assert_eq!((&exec["kind"], &exec["exit_code"]), (&"exec".into(), &1.into()));
    assert!(exec["task_content"].is_null() && exec["workdir_commit"].is_null());
}

#[test]
fn cost_report_by_day_splits_at_midnight_and_totals() {
    let broker = Broker::new();
    seed(&broker);
    let run = broker.run(&["cost-report", "--by", "day", "--json"]);
    assert_eq!(run.code, 0, "{}", run.render());
    let report = run.json();
    assert_eq!(report["by"], "day");
    let groups = report["groups"].as_array().unwrap();
    let days: Vec<&str> = groups.iter().map(|g| g["key"].as_str().unwrap()).collect();
    assert_eq!(days, ["2026-11-20", "2026-11-27", "2026-11-28"]);
    let expect = [(1, 4.0, 32.0), (1, 4.0, 40.0), (3, 5.0, 31.0)];
    for (group, (runs, node_hours, cost)) in groups.iter().zip(expect) {
        assert_eq!(group["runs"], runs, "{group}");
        assert!(close(&group["node_hours"], node_hours), "{group}");
        assert!(close(&group["cost"], cost), "{group}");
    }
    assert_eq!(report["total"]["runs"], 4, "the run across midnight counts once");
    assert!(close(&report["total"]["node_hours"], 13.0));
    assert!(close(&report["total"]["cost"], 103.0));

    insta::assert_snapshot!(broker.run(&["cost-report", "--by", "day"]).render(), @r"
    exit: 0
    ----- stdout -----
     DAY (UTC)    RUNS   NODE-HOURS      COST 
    ──────────────────────────────────────────
     2026-11-20      1         4.00   $32.000 
     2026-11-27      1         4.00   $40.000 
     2026-11-28      3         5.00   $31.000 
     total           4        13.00   $103.00 
    ----- stderr -----
    ");
}

#[test]
fn cost_report_since_counts_only_what_came_after() {
    let broker = Broker::new();
    seed(&broker);
    let report = broker
        .run(&["cost-report", "--by", "cluster", "--since", "2026-11-28", "--json"])
        .json();
    assert_eq!(report["since"], "2026-11-28");
    let groups: Vec<(&str, f64)> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_str().unwrap(), g["cost"].as_f64().unwrap()))
        .collect();
    // exp1: the last hour of the train run ($20) and the exec ($10); old ended days before.
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert_eq!(groups[0].0, "exp1");
    assert!((groups[0].1 - 30.0).abs() < 1e-6);
    assert_eq!(groups[1].0, "ci-gpu");
    assert_eq!(report["total"]["runs"], 3);
    assert!(close(&report["total"]["cost"], 31.0));

    let later = broker.run(&["cost-report", "--since", "2026-12-01"]);
    assert_eq!(later.code, 0);
    assert_eq!(
        later.stderr,
        "no runs since 2026-12-01; `broker runs` lists every recorded run\n"
    );
    insta::assert_snapshot!(broker.run(&["cost-report", "--since", "last week"]).render(), @r"
    exit: 2
    ----- stdout -----
    ----- stderr -----
    error: invalid `--since` date `last week`
    hint: give a day as `YYYY-MM-DD`, e.g. `--since 2026-11-01` (UTC)
    ");
}

#[test]
fn cost_report_by_task_and_commit() {
    let broker = Broker::new();
    seed(&broker);
    insta::assert_snapshot!(broker.run(&["cost-report", "--by", "commit"]).render(), @r"
    exit: 0
    ----- stdout -----
     COMMIT          RUNS   NODE-HOURS      COST 
    ─────────────────────────────────────────────
     4f2a9c1            1         6.00   $60.000 
     -                  2         5.00   $42.000 
     a1b2c3d+dirty      1         2.00    $1.000 
     total              4        13.00   $103.00 
    ----- stderr -----
    ");
    let report = broker.run(&["cost-report", "--by", "task", "--json"]).json();
    let keys: Vec<&str> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["train", "sweep", "python eval.py", "gpu-test.yaml"],
        "most expensive first"
    );
}

#[test]
fn a_changed_catalog_leaves_past_costs_alone() {
    let broker = Broker::new();
    seed(&broker);
    let before = broker.run(&["cost-report", "--by", "cluster", "--json"]).json();
    // Replace the catalogs with a small snapshot: p4d.24xlarge (and every A100) is gone from
    // AWS, and what is left has other prices.
    let catalogs = broker.home().join("catalogs");
    let import = broker.run(&[
        "catalog",
        "import",
        fixtures().join("skypilot-v8").to_str().unwrap(),
        catalogs.to_str().unwrap(),
        "--snapshot-date",
        "2026-11-28",
    ]);
    assert_eq!(import.code, 0, "{}", import.render());
    let gone = broker.run(&["cost", "A100:8", "--cloud", "aws", "--json"]);
    assert_ne!(
        gone.code,
        0,
        "the run's instance type is no longer offered: {}",
        gone.render()
    );
    let after = broker.run(&["cost-report", "--by", "cluster", "--json"]).json();
    assert_eq!(before, after);
    assert!(close(&after["total"]["cost"], 103.0));
}
