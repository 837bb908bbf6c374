//! Launch, run, stream, exit code, teardown.

use crate::harness::World;

#[test]
fn hello_world_runs_on_one_node_and_down_leaves_nothing() {
    let world = World::new("hello");
    let run = world.broker(&[
        "launch",
        "tasks/e2e/hello.yaml",
        "-c",
        &world.cluster,
        "--yes",
        "--down",
    ]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(run.stdout.contains("hello from rank 0 of 1"), "{}", run.show());
    assert!(
        world.containers().is_empty(),
        "--down must remove every node: {:?}",
        world.containers()
    );
}

#[test]
fn the_jobs_exit_code_passes_through() {
    let world = World::new("exit7");
    let run = world.broker(&[
        "launch",
        "tasks/e2e/exit7.yaml",
        "-c",
        &world.cluster,
        "--yes",
        "--down",
    ]);
    assert_eq!(run.code, 7, "{}", run.show());
    assert!(
        run.stdout.contains("setting up"),
        "setup runs before run: {}",
        run.show()
    );
    assert!(run.stdout.contains("about to fail"), "{}", run.show());
    assert!(world.containers().is_empty());
}

#[test]
fn env_values_arrive_byte_exact() {
    let world = World::new("env");
    let run = world.broker(&[
        "launch",
        "tasks/e2e/literal-env.yaml",
        "-c",
        &world.cluster,
        "--yes",
        "--down",
    ]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(
        run.stdout.contains(r#"got[it's "x" $(whoami) ; rm -rf /]"#),
        "{}",
        run.show()
    );
}

#[test]
fn three_nodes_each_see_their_rank_and_the_cluster() {
    let world = World::new("three");
    let run = world.broker(&[
        "launch",
        "tasks/e2e/three-nodes.yaml",
        "-c",
        &world.cluster,
        "--yes",
        "--down",
    ]);
    assert_eq!(run.code, 0, "{}", run.show());
    for rank in 0..3 {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("(rank {rank}) rank={rank} ")))
            .unwrap_or_else(|| panic!("no line from rank {rank}:\n{}", run.show()));
        assert!(line.contains("nodes=3"), "{line}");
        assert!(line.contains(&format!("sky={rank}")), "{line}");
        assert!(line.contains(&format!("cluster={}", world.cluster)), "{line}");
        assert!(line.contains("job=1"), "{line}");
    }
    let heads: std::collections::HashSet<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.split("head=").nth(1))
        .map(|s| s.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(heads.len(), 1, "every rank sees the same head first: {heads:?}");
    assert!(world.containers().is_empty());
}

#[test]
fn without_down_the_cluster_stays_until_down_which_is_idempotent() {
    let world = World::new("keep");
    let run = world.broker(&["launch", "tasks/e2e/hello.yaml", "-c", &world.cluster, "--yes"]);
    assert_eq!(run.code, 0, "{}", run.show());
    assert!(
        run.stderr.contains(&format!("broker down {}", world.cluster)),
        "says how to stop it: {}",
        run.show()
    );
    assert_eq!(world.containers().len(), 1);

    let status = world.broker(&["status", "--json"]);
    let clusters: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(clusters[0]["name"], world.cluster.as_str(), "{}", status.show());
    assert_eq!(clusters[0]["cloud"], "docker");

    let down = world.broker(&["down", &world.cluster]);
    assert_eq!(down.code, 0, "{}", down.show());
    assert!(world.containers().is_empty());
    let again = world.broker(&["down", &world.cluster]);
    assert_eq!(again.code, 0, "{}", again.show());
    assert!(again.stderr.contains("nothing left"), "{}", again.show());
    let status = world.broker(&["status", "--json"]);
    assert_eq!(status.stdout.trim(), "[]", "{}", status.show());
}

#[test]
fn without_yes_and_without_a_terminal_nothing_is_created() {
    let world = World::new("noyes");
    let run = world.broker(&["launch", "tasks/e2e/hello.yaml", "-c", &world.cluster]);
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(run.stderr.contains("--yes"), "{}", run.show());
    assert!(world.containers().is_empty());
}
