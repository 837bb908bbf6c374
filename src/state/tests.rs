//! Tests of the state database: schema migrations, the launch bookkeeping and jobs.

use std::borrow::Cow;

use broker_provider::{Arch, Location, Offer};

use super::*;

pub(crate) fn candidate(cloud: Cloud, region: &str, zone: Option<&str>) -> Candidate {
    Candidate {
        offer: Offer {
            cloud,
            instance_type: "g5.xlarge".into(),
            accelerator: None,
            vcpus: None,
            memory_gib: None,
            price: Some(1.0),
            spot_price: None,
            location: Location {
                region: Cow::Owned(region.to_owned()),
                zone: zone.map(|z| Cow::Owned(z.to_owned())),
            },
            arch: Arch::X86_64,
        },
        rank: 0,
        spot: false,
        nodes: 2,
        hourly_total: 2.0,
        option: 0,
    }
}

fn name(s: &str) -> ClusterName {
    s.parse().unwrap()
}

fn node(cluster: &ClusterName, rank: u32, id: &str) -> Node {
    Node {
        id: id.into(),
        cluster: cluster.clone(),
        rank,
        state: NodeState::Running,
        location: Location {
            region: "us-east-1".into(),
            zone: Some("a".into()),
        },
        ssh: Some("10.0.0.1:22".parse().unwrap()),
        private_ip: Some("192.168.0.2".parse().unwrap()),
    }
}

#[test]
fn open_creates_private_dir_and_reopen_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("state.db");
    let c = name("c1");
    {
        let db = StateDb::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), schema::MIGRATIONS.len());
        db.record_intent(
            &c,
            &candidate(Cloud::Aws, "us-east-1", Some("a")),
            &LaunchToken("t".into()),
            None,
        )
        .unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("nested"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    let db = StateDb::open(&path).unwrap();
    assert_eq!(db.schema_version().unwrap(), schema::MIGRATIONS.len());
    assert_eq!(db.clusters().unwrap().len(), 1, "reopening kept the data");
    let mode: String = db
        .lock()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn upgrading_a_version_1_database_keeps_nodes_and_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO clusters (name, state, cloud, created_at, updated_at) VALUES ('old', 'running', 'docker', 1, 1);
             INSERT INTO jobs (cluster, job_id, name, state, submitted_at) VALUES ('old', 1, 'j', 'running', 1);",
        )
        .unwrap();
    }
    let db = StateDb::open(&path).unwrap();
    assert_eq!(db.schema_version().unwrap(), schema::MIGRATIONS.len());
    let old = name("old");
    assert_eq!(db.jobs(&old).unwrap().len(), 1, "the rebuild of clusters kept its jobs");
    db.set_state(&old, ClusterState::Stopped).unwrap();
    assert_eq!(db.cluster(&old).unwrap().unwrap().state, ClusterState::Stopped);
    let fk: i64 = db
        .lock()
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1, "foreign keys are back on after migrating");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = StateDb::open(&path).unwrap_err();
    assert!(matches!(err, StateError::TooNew { found: 99, .. }), "{err:?}");
    assert!(err.to_string().contains("upgrade broker"), "{err}");
}

#[test]
fn intent_attempts_nodes_and_forget() {
    let db = StateDb::open_in_memory().unwrap();
    let c = name("train");
    let cand = candidate(Cloud::Aws, "us-east-1", Some("a"));
    let id = db
        .record_intent(&c, &cand, &LaunchToken("tok-1".into()), Some("task"))
        .unwrap();
    let rec = db.cluster(&c).unwrap().unwrap();
    assert_eq!(rec.state, ClusterState::Requesting);
    assert_eq!(rec.cloud, Some(Cloud::Aws));
    assert_eq!(rec.zone.as_deref(), Some("a"));
    assert_eq!(rec.num_nodes, 2);
    assert_eq!(rec.task_name.as_deref(), Some("task"));
    let attempts = db.attempts(&c).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Pending);
    assert_eq!(attempts[0].token, LaunchToken("tok-1".into()));

    db.finish_attempt(id, AttemptOutcome::Capacity, Some("stockout"))
        .unwrap();
    let id2 = db
        .record_intent(
            &c,
            &candidate(Cloud::Aws, "us-east-1", Some("b")),
            &LaunchToken("tok-2".into()),
            None,
        )
        .unwrap();
    db.finish_attempt(id2, AttemptOutcome::Ok, None).unwrap();
    db.record_nodes(&c, &[node(&c, 0, "i-0"), node(&c, 1, "i-1")]).unwrap();
    db.set_host_key(&c, 0, "ssh-ed25519 AAAA").unwrap();
    assert!(matches!(
        db.set_host_key(&c, 7, "k"),
        Err(StateError::UnknownNode { rank: 7, .. })
    ));

    let rec = db.cluster(&c).unwrap().unwrap();
    assert_eq!(rec.state, ClusterState::Provisioned);
    assert_eq!(rec.zone.as_deref(), Some("b"));
    assert_eq!(
        rec.task_name.as_deref(),
        Some("task"),
        "kept when a later intent names none"
    );
    assert_eq!(rec.nodes.len(), 2);
    assert_eq!(rec.nodes[0].host_key.as_deref(), Some("ssh-ed25519 AAAA"));
    assert_eq!(rec.nodes[0].ssh_addr, Some("10.0.0.1:22".parse().unwrap()));
    let outcomes: Vec<_> = db.attempts(&c).unwrap().iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [AttemptOutcome::Capacity, AttemptOutcome::Ok]);

    // Same machine re-reported keeps its key; a replaced machine loses it; a vanished rank goes.
    db.update_nodes(&c, &[node(&c, 0, "i-0")]).unwrap();
    let rec = db.cluster(&c).unwrap().unwrap();
    assert_eq!(rec.nodes.len(), 1);
    assert_eq!(rec.nodes[0].host_key.as_deref(), Some("ssh-ed25519 AAAA"));
    db.update_nodes(&c, &[node(&c, 0, "i-9")]).unwrap();
    assert_eq!(db.cluster(&c).unwrap().unwrap().nodes[0].host_key, None);

    db.set_state(&c, ClusterState::Running).unwrap();
    db.forget(&c).unwrap();
    let rec = db.cluster(&c).unwrap().unwrap();
    assert_eq!(rec.state, ClusterState::TornDown);
    assert!(rec.nodes.is_empty());
    assert_eq!(db.attempts(&c).unwrap().len(), 2, "history survives teardown");
}

#[test]
fn unknown_clusters_are_reported() {
    let db = StateDb::open_in_memory().unwrap();
    let c = name("ghost");
    assert!(db.cluster(&c).unwrap().is_none());
    assert!(matches!(
        db.set_state(&c, ClusterState::Ready),
        Err(StateError::UnknownCluster(_))
    ));
    assert!(matches!(db.record_nodes(&c, &[]), Err(StateError::UnknownCluster(_))));
    assert!(matches!(db.add_job(&c, "x"), Err(StateError::UnknownCluster(_))));
    db.forget(&c).unwrap();
}

#[test]
fn jobs_count_per_cluster_and_stamp_their_end() {
    let db = StateDb::open_in_memory().unwrap();
    let (a, b) = (name("a"), name("b"));
    for c in [&a, &b] {
        db.record_intent(
            c,
            &candidate(Cloud::Gcp, "us-central1", None),
            &LaunchToken(c.to_string()),
            None,
        )
        .unwrap();
    }
    assert_eq!(db.add_job(&a, "train").unwrap(), 1);
    assert_eq!(db.add_job(&a, "eval").unwrap(), 2);
    assert_eq!(db.add_job(&b, "x").unwrap(), 1);
    db.set_job(&a, 1, JobState::Running, None).unwrap();
    assert_eq!(db.jobs(&a).unwrap()[0].ended_at, None);
    db.set_job(&a, 1, JobState::Failed, Some(3)).unwrap();
    let jobs = db.jobs(&a).unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].name, "train");
    assert_eq!(jobs[0].state, JobState::Failed);
    assert_eq!(jobs[0].exit_code, Some(3));
    assert!(jobs[0].ended_at.is_some());
    assert_eq!(jobs[1].state, JobState::Queued);
    assert!(matches!(
        db.set_job(&a, 9, JobState::Running, None),
        Err(StateError::UnknownJob { job_id: 9, .. })
    ));
}

#[test]
fn enums_round_trip() {
    for s in [
        ClusterState::Planned,
        ClusterState::Requesting,
        ClusterState::Provisioned,
        ClusterState::Ready,
        ClusterState::Running,
        ClusterState::Done,
        ClusterState::Terminating,
        ClusterState::TornDown,
        ClusterState::Failed,
    ] {
        assert_eq!(s.as_str().parse::<ClusterState>().unwrap(), s);
    }
    assert!("bogus".parse::<ClusterState>().is_err());
    assert_eq!("cancelled".parse::<JobState>().unwrap(), JobState::Cancelled);
    assert_eq!(AttemptOutcome::from_class(ErrorClass::NotFound), AttemptOutcome::Other);
}

// ---- The run ledger ----

fn run_start(cluster: &str, started_at: i64, price: f64) -> RunStart {
    RunStart {
        cluster: name(cluster),
        job_id: None,
        kind: RunKind::Launch,
        task_name: Some("train".into()),
        task_file: Some("tasks/train.yaml".into()),
        task_hash: Some(crate::ledger::task_hash(b"run: python train.py\n")),
        task_content: Some("run: python train.py\n".into()),
        overrides: Some(RunOverrides {
            gpus: Some("A100:8".into()),
            ..RunOverrides::default()
        }),
        workdir_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
        workdir_dirty: Some(false),
        image: None,
        offer: RunOffer::from(&candidate(Cloud::Aws, "us-east-1", Some("us-east-1a"))),
        num_nodes: 2,
        candidates: vec![RunOffer::from(&candidate(Cloud::Gcp, "us-central1", None))],
        labels: [("team".to_owned(), "ml".to_owned())].into_iter().collect(),
        started_at,
    }
    .priced(price)
}

impl RunStart {
    fn priced(mut self, hourly_total: f64) -> Self {
        self.offer.hourly_total = hourly_total;
        self
    }
}

#[test]
fn upgrading_a_version_2_database_keeps_its_data_and_adds_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.execute_batch(schema::MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO clusters (name, state, cloud, region, instance_type, num_nodes, hourly_total,
                                   created_at, updated_at)
                 VALUES ('old', 'stopped', 'aws', 'us-east-1', 'g5.xlarge', 1, 1.006, 1, 1);
             INSERT INTO nodes (cluster, rank, provider_id, state) VALUES ('old', 0, 'i-0', 'stopped');
             INSERT INTO attempts (cluster, token, cloud, region, instance_type, spot, started_at, outcome)
                 VALUES ('old', 't', 'aws', 'us-east-1', 'g5.xlarge', 0, 1, 'ok');
             INSERT INTO jobs (cluster, job_id, name, state, submitted_at) VALUES ('old', 1, 'j', 'succeeded', 1);",
        )
        .unwrap();
    }
    let db = StateDb::open(&path).unwrap();
    assert_eq!(db.schema_version().unwrap(), 3);
    let old = name("old");
    let rec = db.cluster(&old).unwrap().unwrap();
    assert_eq!(rec.state, ClusterState::Stopped);
    assert_eq!(rec.nodes.len(), 1);
    assert_eq!(db.attempts(&old).unwrap().len(), 1);
    assert_eq!(db.jobs(&old).unwrap().len(), 1);
    assert!(db.runs(&RunFilter::default()).unwrap().is_empty());
    // An exec on the old cluster is recorded at the cluster's price.
    let mut start = run_start("old", 10, 0.0);
    start.kind = RunKind::Exec;
    start.offer = RunOffer::of_cluster(&rec).unwrap();
    let id = db.start_run(&start).unwrap();
    let run = db.run(id).unwrap().unwrap();
    assert_eq!(run.kind, RunKind::Exec);
    assert!((run.offer.hourly_total - 1.006).abs() < 1e-12);
}

#[test]
fn runs_start_finish_and_list_newest_first() {
    let db = StateDb::open_in_memory().unwrap();
    let a = db.start_run(&run_start("a", 1_000, 2.0)).unwrap();
    let b = db.start_run(&run_start("b", 2_000, 4.0)).unwrap();
    let c = db.start_run(&run_start("a", 3_000, 8.0)).unwrap();
    assert!(a < b && b < c);

    let run = db.run(a).unwrap().unwrap();
    assert_eq!(run.state, RunState::Running);
    assert_eq!((run.ended_at, run.exit_code, run.job_id), (None, None, None));
    assert_eq!(run.cluster, "a");
    assert_eq!(run.offer.cloud, Cloud::Aws);
    assert_eq!(run.offer.zone.as_deref(), Some("us-east-1a"));
    assert_eq!(run.num_nodes, 2);
    assert_eq!(run.candidates.len(), 1);
    assert_eq!(run.candidates[0].cloud, Cloud::Gcp);
    assert_eq!(run.labels["team"], "ml");
    assert_eq!(run.overrides.as_ref().unwrap().gpus.as_deref(), Some("A100:8"));
    assert_eq!(run.task_content.as_deref(), Some("run: python train.py\n"));
    assert_eq!(run.task_hash.as_ref().map(String::len), Some(64));

    db.set_run_job(a, 1).unwrap();
    db.finish_run(a, 1_000 + 1_800, Some(0), RunState::Succeeded).unwrap();
    db.finish_run(b, 2_500, Some(3), RunState::Failed).unwrap();
    let run = db.run(a).unwrap().unwrap();
    assert_eq!(
        (run.job_id, run.ended_at, run.exit_code),
        (Some(1), Some(2_800), Some(0))
    );
    assert_eq!(run.state, RunState::Succeeded);

    let ids = |f: RunFilter| -> Vec<i64> { db.runs(&f).unwrap().iter().map(|r| r.id).collect() };
    assert_eq!(ids(RunFilter::default()), [c, b, a]);
    assert_eq!(
        ids(RunFilter {
            cluster: Some("a".into()),
            ..RunFilter::default()
        }),
        [c, a]
    );
    assert_eq!(
        ids(RunFilter {
            limit: Some(2),
            ..RunFilter::default()
        }),
        [c, b]
    );
    // Going at or after t=2600: b ended at 2500, a straddles it, c started later.
    assert_eq!(
        ids(RunFilter {
            active_since: Some(2_600),
            ..RunFilter::default()
        }),
        [c, a]
    );

    assert!(db.run(99).unwrap().is_none());
    assert!(matches!(
        db.finish_run(99, 1, None, RunState::Failed),
        Err(StateError::UnknownRun(99))
    ));
    assert!(matches!(db.set_run_job(99, 1), Err(StateError::UnknownRun(99))));
    assert!(db.finish_run(c, 1, None, RunState::Running).is_err());
}

#[test]
fn run_cost_is_the_recorded_price_times_the_time_it_ran() {
    let db = StateDb::open_in_memory().unwrap();
    let id = db.start_run(&run_start("a", 10_000, 3.6)).unwrap();
    let running = db.run(id).unwrap().unwrap();
    // Still running: the cost so far, up to the instant asked about.
    assert!((running.cost_at(10_000 + 600) - 0.6).abs() < 1e-9);
    assert!((running.node_hours_at(10_000 + 1_800) - 1.0).abs() < 1e-9);
    assert!(running.cost() > 0.0, "now is long after t=10000");
    db.finish_run(id, 10_000 + 5_400, Some(0), RunState::Succeeded).unwrap();
    let done = db.run(id).unwrap().unwrap();
    assert!((done.cost() - 5.4).abs() < 1e-9, "an ended run's cost no longer moves");
    assert!((done.cost_at(i64::MAX / 2) - 5.4).abs() < 1e-9);
    assert_eq!(done.seconds_at(0), 5_400);
    // A clock that went backwards costs nothing rather than a negative amount.
    let id = db.start_run(&run_start("a", 50_000, 3.6)).unwrap();
    db.finish_run(id, 49_000, None, RunState::Lost).unwrap();
    assert!(db.run(id).unwrap().unwrap().cost().abs() < f64::EPSILON);
}

#[test]
fn a_jobs_end_ends_its_run_and_teardown_ends_the_rest_as_lost() {
    let db = StateDb::open_in_memory().unwrap();
    let c = name("c");
    db.record_intent(
        &c,
        &candidate(Cloud::Aws, "us-east-1", None),
        &LaunchToken("t".into()),
        None,
    )
    .unwrap();
    let job = db.add_job(&c, "train").unwrap();
    let mut start = run_start("c", 100, 1.0);
    start.job_id = Some(job);
    let finished_by_job = db.start_run(&start).unwrap();
    let unfinished = db.start_run(&run_start("c", 200, 1.0)).unwrap();
    let elsewhere = db.start_run(&run_start("other", 300, 1.0)).unwrap();

    db.set_job(&c, job, JobState::Running, None).unwrap();
    assert_eq!(db.run(finished_by_job).unwrap().unwrap().state, RunState::Running);
    db.set_job(&c, job, JobState::Failed, Some(7)).unwrap();
    let run = db.run(finished_by_job).unwrap().unwrap();
    assert_eq!((run.state, run.exit_code), (RunState::Failed, Some(7)));
    assert!(run.ended_at.is_some());

    db.forget(&c).unwrap();
    assert_eq!(db.run(unfinished).unwrap().unwrap().state, RunState::Lost);
    assert!(db.run(unfinished).unwrap().unwrap().ended_at.is_some());
    assert_eq!(
        db.run(finished_by_job).unwrap().unwrap().state,
        RunState::Failed,
        "kept"
    );
    assert_eq!(db.run(elsewhere).unwrap().unwrap().state, RunState::Running);

    // The caller that started a run knows best when billing stopped, and overrides.
    db.finish_run(unfinished, 900, Some(130), RunState::Interrupted)
        .unwrap();
    let run = db.run(unfinished).unwrap().unwrap();
    assert_eq!(
        (run.state, run.ended_at, run.exit_code),
        (RunState::Interrupted, Some(900), Some(130))
    );
    assert_eq!(
        db.runs(&RunFilter::default()).unwrap().len(),
        3,
        "runs outlive their cluster"
    );
}

#[test]
fn reports_use_recorded_prices_and_never_the_catalog() {
    let catalog = crate::catalog::Catalog::load(None, &[Cloud::Aws]).unwrap();
    let listed = |t: &str| catalog.offers.iter().filter(|o| &*o.instance_type == t).count();
    assert_eq!(listed("p9.retired"), 0, "a type no catalog has (any more)");
    let p4d_now = catalog
        .offers
        .iter()
        .find(|o| &*o.instance_type == "p4d.24xlarge")
        .and_then(|o| o.price)
        .unwrap();
    // The price when the run started differs from today's.
    let then = 12.34;
    assert!((p4d_now - then).abs() > 1.0);

    let db = StateDb::open_in_memory().unwrap();
    let mut retired = run_start("a", 0, 5.0);
    retired.offer.instance_type = "p9.retired".into();
    let mut repriced = run_start("b", 0, then);
    repriced.offer.instance_type = "p4d.24xlarge".into();
    for start in [retired, repriced] {
        let id = db.start_run(&start).unwrap();
        db.finish_run(id, 7_200, Some(0), RunState::Succeeded).unwrap();
    }
    let runs = db.runs(&RunFilter::default()).unwrap();
    let report = crate::ledger::report::cost_report(&runs, crate::ledger::report::GroupBy::Cluster, None, 7_200);
    let cost = |key: &str| report.groups.iter().find(|g| g.key == key).unwrap().totals.cost;
    assert!((cost("a") - 10.0).abs() < 1e-9, "the retired type is still reported");
    assert!((cost("b") - 2.0 * then).abs() < 1e-9, "at the recorded price");
    assert_eq!(report.total.runs, 2);
    assert!((report.total.node_hours - 8.0).abs() < 1e-9);
}

#[test]
fn secrets_never_reach_the_database_file() {
    const SECRET: &str = "hf_sEcReTvAlUe_never_stored";
    const FLAG_SECRET: &str = "wandb_FLAG_secret_value";
    let task = format!(
        "name: finetune\nenvs:\n  MODEL: llama  # a plain env\nsecrets:\n  HF_TOKEN: {SECRET}\n  WANDB_KEY: null\nrun: echo hi\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let db = StateDb::open(&path).unwrap();
        let mut start = run_start("a", 1, 1.0);
        start.task_hash = Some(crate::ledger::task_hash(task.as_bytes()));
        start.task_content = Some(task.clone());
        let given = crate::task::Overrides {
            envs: vec![format!("WANDB_KEY={FLAG_SECRET}"), "MODEL=mistral".into()],
            ..crate::task::Overrides::default()
        };
        start.overrides = Some(crate::ledger::run_overrides(&given, Some(&task), None));
        assert!(!format!("{start:?}").contains(SECRET), "Debug would put it in logs");
        let id = db.start_run(&start).unwrap();
        let run = db.run(id).unwrap().unwrap();
        let stored = run.task_content.unwrap();
        assert_eq!(stored, task.replace(SECRET, "null"), "only the value changed");
        assert_eq!(run.overrides.unwrap().envs, ["WANDB_KEY", "MODEL=mistral"]);
    }
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let haystack = String::from_utf8_lossy(&bytes);
    assert!(
        haystack.contains("a plain env"),
        "the task text was stored (so the search is meaningful)"
    );
    for secret in [SECRET, FLAG_SECRET] {
        assert!(!haystack.contains(secret), "`{secret}` reached the database files");
    }
}

#[test]
fn task_text_whose_secrets_cannot_be_located_is_not_stored() {
    let db = StateDb::open_in_memory().unwrap();
    let mut start = run_start("a", 1, 1.0);
    start.task_content = Some("envs:\n  A: &t hunter2\nsecrets:\n  A: *t\n".into());
    let id = db.start_run(&start).unwrap();
    let run = db.run(id).unwrap().unwrap();
    assert_eq!(run.task_content, None);
    assert!(run.task_hash.is_some(), "the rest of the record is kept");
    assert_eq!(
        crate::ledger::relaunch_inputs(&run),
        Err(crate::ledger::RelaunchError::NoTaskContent(id))
    );
}

#[test]
fn a_recorded_run_gives_back_its_relaunch_inputs() {
    let db = StateDb::open_in_memory().unwrap();
    let mut start = run_start("a", 1, 1.0);
    start.task_content = Some("secrets:\n  T: abc\nrun: x\n".into());
    start.overrides = Some(RunOverrides {
        region: Some("us-west-2".into()),
        use_spot: Some(true),
        envs: vec!["T".into()],
        max_price: Some(3.0),
        ..RunOverrides::default()
    });
    let id = db.start_run(&start).unwrap();
    let inputs = crate::ledger::relaunch_inputs(&db.run(id).unwrap().unwrap()).unwrap();
    assert_eq!(inputs.task_content, "secrets:\n  T: null\nrun: x\n");
    assert_eq!(inputs.task_file, std::path::PathBuf::from("tasks/train.yaml"));
    assert_eq!(inputs.overrides.region.as_deref(), Some("us-west-2"));
    assert_eq!(inputs.overrides.use_spot, Some(true));
    assert_eq!(inputs.overrides.envs, ["T"]);
    assert_eq!(inputs.max_price, Some(3.0));
    assert_eq!(inputs.workdir_dirty, Some(false));

    let mut command = run_start("a", 1, 1.0);
    command.task_file = None;
    command.task_content = None;
    let id = db.start_run(&command).unwrap();
    assert_eq!(
        crate::ledger::relaunch_inputs(&db.run(id).unwrap().unwrap()),
        Err(crate::ledger::RelaunchError::NoTaskFile(id))
    );
}

#[test]
fn run_enums_round_trip() {
    for s in [
        RunState::Running,
        RunState::Succeeded,
        RunState::Failed,
        RunState::Cancelled,
        RunState::Interrupted,
        RunState::Lost,
    ] {
        assert_eq!(s.as_str().parse::<RunState>().unwrap(), s);
    }
    assert_eq!(RunState::from_exit_code(0), RunState::Succeeded);
    assert_eq!(RunState::from_exit_code(2), RunState::Failed);
    assert_eq!("exec".parse::<RunKind>().unwrap(), RunKind::Exec);
    assert!("bogus".parse::<RunKind>().is_err());
}
