//! `broker stop` and `broker start` on the Docker cloud.

use crate::harness::World;

#[test]
fn stop_then_start_then_exec_on_the_same_node() {
    let world = World::new("power");
    let c = world.cluster.as_str();
    let run = world.broker(&["launch", "tasks/e2e/start-end.yaml", "-c", c, "--yes"]);
    assert_eq!(run.code, 0, "{}", run.show());
    let marker = world.broker(&["exec", c, "--", "touch", "/root/kept-on-disk"]);
    assert_eq!(marker.code, 0, "{}", marker.show());

    let stop = world.broker(&["stop", c]);
    assert_eq!(stop.code, 0, "{}", stop.show());
    assert!(stop.stderr.contains("disks are kept"), "{}", stop.show());
    let status = world.broker(&["status", "--json"]);
    let clusters: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let state = clusters
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == world.cluster.as_str())
        .map(|c| c["state"].clone());
    assert_eq!(state, Some("stopped".into()), "{}", status.show());

    let start = world.broker(&["start", c]);
    assert_eq!(start.code, 0, "{}", start.show());
    // The node has a new SSH port after the restart; exec must follow it, and the disk is the same.
    let exec = world.broker(&["exec", c, "--", "ls", "/root/kept-on-disk"]);
    assert_eq!(exec.code, 0, "{}", exec.show());

    let down = world.broker(&["down", c]);
    assert_eq!(down.code, 0, "{}", down.show());
    assert!(world.containers().is_empty(), "{:?}", world.containers());
}

#[test]
fn stopping_an_unknown_cluster_names_the_way_to_list_them() {
    let world = World::new("power-unknown");
    let stop = world.broker(&["stop", "no-such-cluster"]);
    assert_eq!(stop.code, 2, "{}", stop.show());
    assert!(
        stop.stderr.contains("unknown cluster `no-such-cluster`"),
        "{}",
        stop.show()
    );
}
