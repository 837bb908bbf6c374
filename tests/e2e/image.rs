//! `image_id: docker:IMAGE`: setup and run in a container of IMAGE on the node, with the workdir.

use std::process::{Command, Stdio};

use crate::harness::World;

/// The job image: the node's base plus a marker file. Built locally (no registry here), which is
/// idempotent: an unchanged build is all cache.
const JOB_IMAGE: &str = "broker-test-job:1";

fn build_job_image() {
    let have_base = Command::new("docker")
        .args(["image", "inspect", "broker-node-base:1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("docker: is the Docker engine running?")
        .success();
    if !have_base {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docker/node/build.sh");
        let status = Command::new("bash").args([script, "--force"]).status().unwrap();
        assert!(status.success(), "building the node image (and its base) failed");
    }
    let mut build = Command::new("docker")
        .args(["build", "-q", "-t", JOB_IMAGE, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        build.stdin.as_mut().unwrap(),
        b"FROM broker-node-base:1\nRUN echo inside-job-image > /etc/job-marker\n",
    )
    .unwrap();
    drop(build.stdin.take());
    let out = build.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker build of {JOB_IMAGE} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_docker_image_job_runs_in_its_container_with_workdir_and_exact_env() {
    build_job_image();
    let world = World::new("image");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("work")).unwrap();
    std::fs::write(dir.path().join("work/data.txt"), "data-from-workdir\n").unwrap();
    let task = dir.path().join("task.yaml");
    std::fs::write(
        &task,
        format!(
            r#"resources:
  cloud: docker
  image_id: docker:{JOB_IMAGE}
workdir: work
envs:
  NASTY: it's "x" $(whoami) ; rm -rf /
setup: |
  echo setup in $(pwd)
run: |
  cat /etc/job-marker
  cat data.txt
  printf 'got[%s]\n' "$NASTY"
  exit 3
"#
        ),
    )
    .unwrap();

    let run = world.broker(&[
        "launch",
        task.to_str().unwrap(),
        "-c",
        &world.cluster,
        "--yes",
        "--down",
    ]);
    assert_eq!(run.code, 3, "{}", run.show());
    assert!(
        run.stdout.contains("inside-job-image"),
        "runs in the image: {}",
        run.show()
    );
    assert!(
        run.stdout.contains("data-from-workdir"),
        "sees the workdir: {}",
        run.show()
    );
    assert!(
        run.stdout.contains(r#"got[it's "x" $(whoami) ; rm -rf /]"#),
        "env byte-exact: {}",
        run.show()
    );
    assert!(run.stdout.contains("setup in /"), "setup runs too: {}", run.show());
    assert!(
        world.containers().is_empty(),
        "--down removes the nodes and the job containers: {:?}",
        world.containers()
    );
}

#[test]
fn a_missing_image_fails_the_job_with_a_clear_line() {
    let world = World::new("noimage");
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.yaml");
    std::fs::write(
        &task,
        "resources:\n  cloud: docker\n  image_id: docker:broker-test-missing:404\nrun: echo never\n",
    )
    .unwrap();
    let run = world.broker(&[
        "launch",
        task.to_str().unwrap(),
        "-c",
        &world.cluster,
        "--yes",
        "--down",
    ]);
    assert_ne!(run.code, 0, "{}", run.show());
    assert!(
        run.stdout.contains("image broker-test-missing:404 is not on the node"),
        "{}",
        run.show()
    );
    assert!(!run.stdout.contains("never"), "{}", run.show());
    assert!(world.containers().is_empty(), "{:?}", world.containers());
}

#[test]
fn down_removes_a_running_job_container_and_the_nodes_shared_directories() {
    build_job_image();
    let world = World::new("imagedown");
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.yaml");
    std::fs::write(
        &task,
        format!("resources:\n  cloud: docker\n  image_id: docker:{JOB_IMAGE}\nrun: sleep 300\n"),
    )
    .unwrap();
    let run = world.broker(&[
        "launch",
        task.to_str().unwrap(),
        "-c",
        &world.cluster,
        "--yes",
        "--detach",
    ]);
    assert_eq!(run.code, 0, "{}", run.show());
    let job_containers = || {
        let out = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=broker.cluster={}", world.cluster),
            ])
            .args(["--filter", "label=broker.job"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).split_whitespace().count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while job_containers() == 0 {
        assert!(std::time::Instant::now() < deadline, "the job container never started");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let shared = std::env::temp_dir().join("broker-docker/nodes").join(&world.cluster);
    assert!(shared.is_dir(), "{} exists while the cluster does", shared.display());

    let down = world.broker(&["down", &world.cluster]);
    assert_eq!(down.code, 0, "{}", down.show());
    assert!(world.containers().is_empty(), "{:?}", world.containers());
    assert!(!shared.exists(), "{} is removed with the cluster", shared.display());
}
