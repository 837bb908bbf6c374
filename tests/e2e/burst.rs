//! CI bursts: `--json` reports, `--max-duration` deadlines that hold without the CLI, and
//! signals to a `--down` launch.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Stream, World};

fn report(run: &crate::harness::Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is one JSON object ({e}): {}", run.show()))
}

#[test]
fn json_reports_the_run_and_the_exit_code_is_the_jobs() {
    for (file, code) in [
        ("tasks/e2e/hello.yaml", 0),
        ("tasks/e2e/exit5.yaml", 5),
        ("tasks/e2e/exit7.yaml", 7),
    ] {
        let world = World::new("json");
        let run = world.broker(&["launch", file, "-c", &world.cluster, "--yes", "--json", "--down"]);
        assert_eq!(run.code, code, "{}", run.show());
        let r = report(&run);
        assert_eq!(r["cluster"], world.cluster.as_str(), "{r}");
        assert_eq!(r["exit_code"], code, "{r}");
        assert_eq!(r["state"], if code == 0 { "succeeded" } else { "failed" }, "{r}");
        assert_eq!(r["offer"]["cloud"], "docker", "{r}");
        assert!(
            r["offer"]["instance_type"].as_str().unwrap().starts_with("docker-cpu-"),
            "{r}"
        );
        assert_eq!(r["offer"]["hourly_price"], 0.0, "{r}");
        assert_eq!(r["cost"], 0.0, "{r}");
        assert_eq!(r["torn_down"], true, "{r}");
        assert_eq!(r["job_id"], 1, "{r}");
        let attempts = r["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{r}");
        assert_eq!(attempts[0]["outcome"], "ok", "{r}");
        for field in ["started_at", "ended_at"] {
            let t = r[field].as_str().unwrap();
            assert!(
                t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
                "{field}: {t}"
            );
        }
        assert!(r["duration_seconds"].as_f64().unwrap() > 0.0, "{r}");
        assert!(world.containers().is_empty(), "{:?}", world.containers());
    }
}

#[test]
fn json_keeps_the_jobs_output_off_stdout() {
    let world = World::new("jsonout");
    let run = world.broker(&[
        "launch",
        "tasks/e2e/start-end.yaml",
        "-c",
        &world.cluster,
        "--yes",
        "--json",
        "--down",
    ]);
    assert_eq!(run.code, 0, "{}", run.show());
    report(&run);
    assert!(
        run.stderr.contains("start\n") && run.stderr.contains("end\n"),
        "{}",
        run.show()
    );
}

/// The deadline is kept by the node itself: with the CLI killed by SIGKILL just after launch,
/// nothing of broker runs any more, and the node still goes away at the deadline.
#[test]
fn max_duration_holds_after_the_cli_is_killed() {
    let world = World::new("deadline");
    let mut child = world.spawn_until_started(
        &[
            "launch",
            "tasks/e2e/long.yaml",
            "-c",
            &world.cluster,
            "--yes",
            "--max-duration",
            "20s",
        ],
        Stream::Stdout,
    );
    let launched = Instant::now();
    assert_eq!(world.containers().len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();

    // 20 s from boot, plus a 40 s margin for a loaded 2-core machine.
    let limit = launched + Duration::from_mins(1);
    wait_until(&world, limit, "the node outlived its deadline", || {
        world.containers().is_empty()
    });
    // Broker learns of it on the next refresh, and the cluster is not left "running".
    let status = world.broker(&["status", "--refresh", "--json"]);
    assert_eq!(status.code, 0, "{}", status.show());
    let down = world.broker(&["down", &world.cluster]);
    assert_eq!(down.code, 0, "{}", down.show());
}

#[test]
fn a_cli_that_outlives_the_deadline_reports_it_and_tears_down() {
    let world = World::new("deadline-cli");
    let run = world.broker(&[
        "launch",
        "tasks/e2e/long.yaml",
        "-c",
        &world.cluster,
        "--yes",
        "--down",
        "--json",
        "--max-duration",
        "8s",
    ]);
    assert_eq!(run.code, 124, "{}", run.show());
    assert!(
        run.stderr.contains("reached its --max-duration of 8s"),
        "{}",
        run.show()
    );
    let r = report(&run);
    assert_eq!(r["state"], "deadline_exceeded", "{r}");
    assert_eq!(r["exit_code"], serde_json::Value::Null, "{r}");
    assert!(world.containers().is_empty(), "{:?}", world.containers());
}

#[test]
fn sigterm_to_a_down_launch_leaves_no_node() {
    let world = World::new("sigterm");
    let child = world.spawn_until_started(
        &[
            "launch",
            "tasks/e2e/long.yaml",
            "-c",
            &world.cluster,
            "--yes",
            "--down",
            "--json",
        ],
        Stream::Stderr,
    );
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["state"], "interrupted", "{r}");
    assert_eq!(r["torn_down"], true, "{r}");
    assert!(world.containers().is_empty(), "{:?}", world.containers());
}

/// Polls `done` until it holds; past `limit` the test fails with `what` and the containers'
/// states.
fn wait_until(world: &World, limit: Instant, what: &str, done: impl Fn() -> bool) {
    while !done() {
        assert!(Instant::now() < limit, "{what}: {:?}", container_states(world));
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn container_states(world: &World) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.State}}", "--filter"])
        .arg(format!("label=broker.cluster={}", world.cluster))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn cluster_state(world: &World) -> Option<String> {
    let status = world.broker(&["status", "--refresh", "--json"]);
    assert_eq!(status.code, 0, "{}", status.show());
    let all: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == world.cluster.as_str())
        .and_then(|c| c["state"].as_str().map(str::to_owned))
}

#[test]
fn an_idle_cluster_stops_by_itself_and_starts_again() {
    let world = World::new("idle");
    let run = world.broker(&[
        "launch",
        "tasks/e2e/hello.yaml",
        "-c",
        &world.cluster,
        "--yes",
        "-i",
        "4s",
        "--detach",
    ]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(run.stderr.contains("stops after 4s without a job"), "{}", run.show());
    let limit = Instant::now() + Duration::from_mins(1);
    wait_until(&world, limit, "never stopped", || {
        container_states(&world) == ["exited"]
    });
    assert_eq!(cluster_state(&world).as_deref(), Some("stopped"));
    // Stopped, not gone: it starts again and runs jobs.
    let start = world.broker(&["start", &world.cluster]);
    assert_eq!(start.code, 0, "{}", start.show());
    let exec = world.broker(&["exec", &world.cluster, "--", "echo", "back"]);
    assert_eq!(exec.code, 0, "{}", exec.show());
    let down = world.broker(&["down", &world.cluster]);
    assert_eq!(down.code, 0, "{}", down.show());
}

#[test]
fn autostop_down_removes_the_cluster_and_cancel_keeps_it() {
    let world = World::new("autodown");
    let run = world.broker(&[
        "launch",
        "tasks/e2e/hello.yaml",
        "-c",
        &world.cluster,
        "--yes",
        "--detach",
    ]);
    assert_eq!(run.code, 0, "{}", run.show());

    // Cancelled before it fires: the cluster stays.
    let set = world.broker(&["autostop", &world.cluster, "-i", "3s", "--down"]);
    assert_eq!(set.code, 0, "{}", set.show());
    let cancel = world.broker(&["autostop", &world.cluster, "--cancel"]);
    assert_eq!(cancel.code, 0, "{}", cancel.show());
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        container_states(&world),
        ["running"],
        "cancelled autostop must not fire"
    );

    let set = world.broker(&["autostop", &world.cluster, "-i", "3s", "--down"]);
    assert_eq!(set.code, 0, "{}", set.show());
    assert!(set.stderr.contains("tears itself down after 3s"), "{}", set.show());
    let limit = Instant::now() + Duration::from_mins(1);
    wait_until(&world, limit, "never torn down", || world.containers().is_empty());
    // The record follows on refresh, and `down` has nothing left to do.
    let down = world.broker(&["down", &world.cluster]);
    assert_eq!(down.code, 0, "{}", down.show());
}

#[test]
fn detach_with_down_needs_an_idle_limit() {
    let world = World::new("detachdown");
    let run = world.broker(&[
        "launch",
        "tasks/e2e/hello.yaml",
        "-c",
        &world.cluster,
        "--yes",
        "--detach",
        "--down",
    ]);
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(run.stderr.contains("needs `-i`"), "{}", run.show());
    assert!(world.containers().is_empty());
}

/// `--down` holds without broker: killed mid-job, the CLI cannot tear down, so the node removes
/// itself once the job has ended (after a short grace).
#[test]
fn down_holds_after_the_cli_is_killed_mid_job() {
    let world = World::new("down-backstop");
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.yaml");
    std::fs::write(
        &task,
        "resources:\n  cloud: docker\nrun: |\n  echo started\n  sleep 3\n",
    )
    .unwrap();
    let mut child = world.spawn_until_started(
        &[
            "launch",
            task.to_str().unwrap(),
            "-c",
            &world.cluster,
            "--yes",
            "--down",
        ],
        Stream::Stdout,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(world.containers().len(), 1, "the node outlives the killed CLI for now");
    // 3 s of job, 20 s of grace, a 40 s margin for a loaded machine.
    let limit = Instant::now() + Duration::from_secs(63);
    wait_until(&world, limit, "the node never removed itself", || {
        world.containers().is_empty()
    });
}
