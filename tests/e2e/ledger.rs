//! The run ledger from real launches: every launch and exec is recorded, secrets are not, and
//! `--from-run` launches a recorded run again.

use crate::harness::World;

fn runs(world: &World) -> Vec<serde_json::Value> {
    let run = world.broker(&["runs", "--json"]);
    assert_eq!(run.code, 0, "{}", run.show());
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.show()))
}

#[test]
fn launches_and_execs_are_recorded_and_a_run_can_be_launched_again() {
    let world = World::new("ledger");
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.yaml");
    std::fs::write(
        &task,
        "name: ledgered\nresources:\n  cloud: docker\nsecrets:\n  TOKEN: s3cr3t-value\nrun: |\n  echo \"token has ${#TOKEN} chars\"\n  exit 4\n",
    )
    .unwrap();
    let c = world.cluster.as_str();
    let first = world.broker(&["launch", task.to_str().unwrap(), "-c", c, "--yes"]);
    assert_eq!(first.code, 4, "{}", first.show());
    let exec = world.broker(&["exec", c, "--", "echo", "again"]);
    assert_eq!(exec.code, 0, "{}", exec.show());

    let recorded = runs(&world);
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let launch = recorded.iter().find(|r| r["kind"] == "launch").unwrap();
    assert_eq!(launch["exit_code"], 4, "{launch}");
    assert_eq!(launch["state"], "failed", "{launch}");
    assert_eq!(launch["cloud"], "docker", "{launch}");
    assert!(
        launch["task_content"].as_str().unwrap().contains("TOKEN: null"),
        "{launch}"
    );
    assert_eq!(launch["task_name"], "ledgered", "{launch}");
    assert_eq!(launch["task_hash"].as_str().unwrap().len(), 64, "{launch}");
    let exec_run = recorded.iter().find(|r| r["kind"] == "exec").unwrap();
    assert_eq!(exec_run["exit_code"], 0, "{exec_run}");
    let everything = std::fs::read_dir(world.home())
        .unwrap()
        .filter_map(|e| std::fs::read(e.unwrap().path()).ok())
        .any(|bytes| bytes.windows(12).any(|w| w == b"s3cr3t-value"));
    assert!(!everything, "the secret's value is in no file of broker's home");
    let down = world.broker(&["down", c]);
    assert_eq!(down.code, 0, "{}", down.show());

    // The recorded task keeps `TOKEN` as a secret to supply: from the environment now.
    let id = launch["id"].as_i64().unwrap().to_string();
    let again = world.broker_env(
        &["launch", "--from-run", &id, "-c", c, "--yes", "--down"],
        &[("TOKEN", "four")],
    );
    assert_eq!(again.code, 4, "{}", again.show());
    assert!(again.stdout.contains("token has 4 chars"), "{}", again.show());
    assert_eq!(runs(&world).len(), 3);

    let missing = world.broker(&["launch", "--from-run", "999", "--yes"]);
    assert_eq!(missing.code, 2, "{}", missing.show());
    assert!(missing.stderr.contains("no run 999"), "{}", missing.show());

    let report = world.broker(&["cost-report", "--by", "cluster", "--json"]);
    assert_eq!(report.code, 0, "{}", report.show());
}
