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
