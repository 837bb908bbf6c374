//! `file_mounts` and the settings file's per-cloud `ssh_proxy_command`.

use crate::harness::World;

#[test]
fn file_mounts_reach_every_node_through_the_configured_proxy() {
    let world = World::new("mounts");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data/nested")).unwrap();
    std::fs::write(dir.path().join("data/nested/a.txt"), "from-dir\n").unwrap();
    std::fs::write(dir.path().join("token.txt"), "from-file\n").unwrap();
    let task = dir.path().join("task.yaml");
    std::fs::write(
        &task,
        "resources:\n  cloud: docker\nnum_nodes: 2\nfile_mounts:\n  /mnt/data: data\n  ~/conf/token.txt: ./token.txt\n\
         run: cat /mnt/data/nested/a.txt ~/conf/token.txt\n",
    )
    .unwrap();
    // The proxy logs each hop, then relays to the address ssh was given: the same path a jump
    // host or an emulator's address map takes.
    let log = dir.path().join("proxy.log");
    std::fs::write(
        world.home().join("config.yaml"),
        format!(
            "docker:\n  ssh_proxy_command: bash -c 'echo %h:%p >> {}; exec 3<>/dev/tcp/%h/%p; cat <&3 & cat >&3; wait'\n",
            log.display()
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
    assert_eq!(run.code, 0, "{}", run.show());
    for rank in 0..2 {
        for line in ["from-dir", "from-file"] {
            assert!(
                run.stdout.contains(&format!("(rank {rank}) {line}")),
                "rank {rank} sees {line}: {}",
                run.show()
            );
        }
    }
    let hops = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        hops.lines().filter(|l| l.starts_with("127.0.0.1:")).count() >= 2,
        "both nodes were reached through the proxy: {hops:?}"
    );
    assert!(world.containers().is_empty(), "{:?}", world.containers());
}

#[test]
fn a_missing_mount_is_refused_before_anything_is_created() {
    let world = World::new("nomount");
    let dir = tempfile::tempdir().unwrap();
    let task = dir.path().join("task.yaml");
    std::fs::write(
        &task,
        "resources:\n  cloud: docker\nfile_mounts:\n  /data: ./nowhere\nrun: echo never\n",
    )
    .unwrap();
    let run = world.broker(&["launch", task.to_str().unwrap(), "-c", &world.cluster, "--yes"]);
    assert_eq!(run.code, 2, "{}", run.show());
    assert!(
        run.stderr.contains("`./nowhere` (for `/data`) does not exist"),
        "{}",
        run.show()
    );
    assert!(world.containers().is_empty(), "{:?}", world.containers());
}

#[test]
fn a_broken_settings_file_is_located() {
    let world = World::new("badconf");
    std::fs::write(world.home().join("config.yaml"), "docker:\n  ssh_usr: root\n").unwrap();
    let run = world.broker(&["launch", "tasks/e2e/start-end.yaml", "-c", &world.cluster, "--yes"]);
    assert_ne!(run.code, 0, "{}", run.show());
    assert!(
        run.stderr
            .contains("config.yaml:2:3: unknown setting `ssh_usr`; did you mean `ssh_user`?"),
        "{}",
        run.show()
    );
}
