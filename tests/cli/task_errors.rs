//! Every class of bad task file gets one clear error, a location and exit code 2; never a panic.

use crate::common::{Broker, fixtures};

#[test]
fn every_bad_task_file_is_reported_with_its_location() {
    let broker = Broker::new();
    let mut files: Vec<_> = std::fs::read_dir(fixtures().join("tasks/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 12,
        "expected a fixture per error class, found {}",
        files.len()
    );
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let relative = format!("tasks/bad/{name}.yaml");
        let run = broker.run(&["launch", &relative, "--dry-run"]);
        assert_eq!(run.code, 2, "{name}: {}", run.render());
        assert!(run.stdout.is_empty(), "{name}: nothing on stdout for an error");
        assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{name}: {}", run.stderr);
        insta::assert_snapshot!(format!("bad_task_{name}"), run.render());
    }
}

#[test]
fn a_missing_file_is_a_user_error() {
    let run = Broker::new().run(&["launch", "no/such/task.yaml", "--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(run.stderr.contains("cannot read task file"), "{}", run.stderr);
}
