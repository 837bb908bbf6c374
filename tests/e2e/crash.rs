//! The money-safety protocol under crashes: whatever step the CLI dies at (`kill -9`, simulated
//! by failpoints that abort the process), `status --refresh` then `down` leave no node behind.
//! See: issue 3. The crash points need the `failpoints` feature (the README's test command
//! enables all features); without it a plain `cargo test` compiles only the Ctrl-C test.

use std::process::Command;

use crate::harness::{Stream, World};

#[cfg(feature = "failpoints")]
fn crash_at(point: &str) {
    let world = World::new(&format!("crash-{point}"));
    let run = world.broker_env(
        &["launch", "tasks/e2e/long.yaml", "-c", &world.cluster, "--yes", "--down"],
        &[("BROKER_FAILPOINT", point)],
    );
    assert_ne!(run.code, 0, "the process must have died at `{point}`: {}", run.show());
    assert!(
        !run.stdout.contains("torn down") && !run.stderr.contains("torn down"),
        "{}",
        run.show()
    );

    let status = world.broker(&["status", "--refresh", "--json"]);
    assert_eq!(status.code, 0, "{}", status.show());
    let clusters: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    // Every point but the first leaves a node that the records must know after a refresh.
    if point != "after-intent" {
        assert!(
            !world.containers().is_empty(),
            "`{point}` should leave the node running"
        );
        let listed = clusters
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == world.cluster.as_str());
        let listed = listed.unwrap_or_else(|| panic!("status must list the crashed cluster: {}", status.show()));
        assert_eq!(
            listed["nodes"],
            1,
            "refresh finds the node by its label: {}",
            status.show()
        );
    }

    let down = world.broker(&["down", &world.cluster]);
    assert_eq!(down.code, 0, "{}", down.show());
    assert!(
        world.containers().is_empty(),
        "after `{point}`: {:?} left",
        world.containers()
    );
    let again = world.broker(&["down", &world.cluster]);
    assert_eq!(again.code, 0, "{}", again.show());
}

#[cfg(feature = "failpoints")]
#[test]
fn crash_after_intent_is_recorded() {
    crash_at("after-intent");
}

#[cfg(feature = "failpoints")]
#[test]
fn crash_after_the_cloud_created_nodes_but_before_ids_were_recorded() {
    crash_at("after-create");
}

#[cfg(feature = "failpoints")]
#[test]
fn crash_after_node_ids_were_recorded() {
    crash_at("after-record");
}

#[cfg(feature = "failpoints")]
#[test]
fn crash_after_ssh_was_ready() {
    crash_at("after-ssh");
}

#[cfg(feature = "failpoints")]
#[test]
fn crash_while_the_job_runs() {
    crash_at("after-submit");
}

#[test]
fn ctrl_c_with_down_tears_down_what_was_created() {
    let world = World::new("sigint");
    let mut child = world.spawn_until_started(
        &["launch", "tasks/e2e/long.yaml", "-c", &world.cluster, "--yes", "--down"],
        Stream::Stdout,
    );
    assert_eq!(world.containers().len(), 1);
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted launch exits 130");
    assert!(
        world.containers().is_empty(),
        "Ctrl-C with --down must remove the node: {:?}",
        world.containers()
    );
}
