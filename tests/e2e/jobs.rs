//! Jobs on a running cluster: `launch --detach`, `logs`, `exec`, `queue`.

use std::time::{Duration, Instant};

use crate::harness::World;

fn queue(world: &World) -> Vec<serde_json::Value> {
    let run = world.broker(&["queue", &world.cluster, "--json"]);
    assert_eq!(run.code, 0, "{}", run.show());
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.show()))
}

#[test]
fn detach_then_logs_exec_and_queue() {
    let world = World::new("jobs");
    let c = world.cluster.as_str();
    let started = Instant::now();
    let run = world.broker(&["launch", "tasks/e2e/start-end.yaml", "--detach", "-c", c, "--yes"]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(
        run.stderr.contains(&format!(
            "job 1 started on cluster {c}; follow it with: broker logs {c} 1 --follow"
        )),
        "{}",
        run.show()
    );
    assert!(
        !run.stdout.contains("end"),
        "a detached launch does not follow: {}",
        run.show()
    );
    // The node is created within this time too, so only a generous bound is stable.
    assert!(started.elapsed() < Duration::from_secs(30));

    let logs = world.broker(&["logs", c, "--follow"]);
    assert_eq!(logs.code, 0, "{}", logs.show());
    assert_eq!(logs.stdout, "start\nend\n", "{}", logs.show());

    let exec = world.broker(&["exec", c, "--", "echo", "hi", "from", "exec"]);
    assert_eq!(exec.code, 0, "{}", exec.show());
    assert!(exec.stdout.contains("hi from exec"), "{}", exec.show());

    let failing = world.broker(&["exec", c, "tasks/e2e/exit5.yaml"]);
    assert_eq!(failing.code, 5, "{}", failing.show());
    assert!(failing.stderr.contains("`resources` are ignored"), "{}", failing.show());

    let jobs = queue(&world);
    let summary: Vec<(u64, &str, i64)> = jobs
        .iter()
        .map(|j| {
            (
                j["id"].as_u64().unwrap(),
                j["state"].as_str().unwrap(),
                j["exit_code"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [(1, "succeeded", 0), (2, "succeeded", 0), (3, "failed", 5)],
        "{jobs:?}"
    );
    assert_eq!(jobs[0]["name"], "start-end");
    let table = world.broker(&["queue", c]);
    assert_eq!(table.code, 0, "{}", table.show());
    assert!(table.stdout.contains("SUBMITTED"), "{}", table.show());

    let old = world.broker(&["logs", c, "1"]);
    assert_eq!(old.code, 0, "{}", old.show());
    assert!(old.stdout.contains("start"), "{}", old.show());

    let unknown = world.broker(&["logs", c, "9"]);
    assert_eq!(unknown.code, 2, "{}", unknown.show());
    assert!(
        unknown.stderr.contains("1, 2, 3"),
        "names the known jobs: {}",
        unknown.show()
    );

    let down = world.broker(&["down", c]);
    assert_eq!(down.code, 0, "{}", down.show());
    assert!(world.containers().is_empty());
    let gone = world.broker(&["logs", c]);
    assert_eq!(gone.code, 2, "{}", gone.show());
    assert!(
        gone.stderr.contains(&format!("unknown cluster `{c}`")),
        "{}",
        gone.show()
    );
}

#[test]
fn exec_queues_behind_a_running_job() {
    let world = World::new("queue");
    let c = world.cluster.as_str();
    let run = world.broker(&["launch", "tasks/e2e/first.yaml", "--detach", "-c", c, "--yes"]);
    assert_eq!(run.code, 0, "{}", run.show());

    let second = world.broker(&["exec", c, "--detach", "echo", "second"]);
    assert_eq!(second.code, 0, "{}", second.show());
    assert!(
        second.stderr.contains(&format!("broker logs {c} 2 --follow")),
        "{}",
        second.show()
    );

    let jobs = queue(&world);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0]["state"], "running", "{jobs:?}");
    assert_eq!(jobs[1]["state"], "queued", "waits for job 1: {jobs:?}");

    let follow = world.broker(&["logs", c, "2", "--follow"]);
    assert_eq!(follow.code, 0, "{}", follow.show());
    assert_eq!(follow.stdout, "second\n", "{}", follow.show());
    // Job 2 could only end after job 1 released the node's queue.
    let jobs = queue(&world);
    assert_eq!(jobs[0]["state"], "succeeded", "{jobs:?}");
    assert_eq!(jobs[1]["state"], "succeeded", "{jobs:?}");
    let first = world.broker(&["logs", c, "1"]);
    assert_eq!(first.stdout, "first-done\n", "{}", first.show());

    let down = world.broker(&["down", c]);
    assert_eq!(down.code, 0, "{}", down.show());
    assert!(world.containers().is_empty());
}
