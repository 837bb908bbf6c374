//! `broker check`: which clouds work, and how to fix the ones that do not.

use crate::harness::World;

fn rows(run: &crate::harness::Run) -> Vec<serde_json::Value> {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.show()))
}

#[test]
fn check_reports_the_docker_cloud_and_how_to_fix_it() {
    let world = World::new("check");
    let ok = world.broker(&["check", "docker", "--json"]);
    assert_eq!(ok.code, 0, "{}", ok.show());
    let r = rows(&ok);
    assert_eq!(r[0]["status"], "enabled", "{r:?}");
    assert!(r[0]["identity"].as_str().unwrap().starts_with("docker "), "{r:?}");

    let broken = world.broker_env(
        &["check", "docker", "--json"],
        &[("BROKER_DOCKER_CLI", "/nonexistent/docker")],
    );
    assert_eq!(broken.code, 4, "no cloud enabled is a failure: {}", broken.show());
    let r = rows(&broken);
    assert_eq!(r[0]["status"], "disabled", "{r:?}");
    assert!(!r[0]["hint"].as_str().unwrap().is_empty(), "{r:?}");

    std::fs::write(world.home().join("config.yaml"), "allowed_clouds: [aws]\n").unwrap();
    let r = rows(&world.broker(&["check", "docker", "--json"]));
    assert_eq!(r[0]["status"], "not_allowed", "{r:?}");

    let typo = world.broker(&["check", "dokcer"]);
    assert_eq!(typo.code, 2, "{}", typo.show());
    assert!(typo.stderr.contains("did you mean"), "{}", typo.show());
}

#[test]
fn a_launch_only_considers_allowed_clouds() {
    let world = World::new("allowed");
    std::fs::write(world.home().join("config.yaml"), "allowed_clouds: [aws]\n").unwrap();
    let run = world.broker(&["launch", "tasks/e2e/hello.yaml", "-c", &world.cluster, "--yes"]);
    assert_ne!(run.code, 0, "{}", run.show());
    assert!(
        run.stderr.contains("no enabled cloud can serve this task"),
        "{}",
        run.show()
    );
    assert!(world.containers().is_empty());
}
