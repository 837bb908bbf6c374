//! Launch overhead on the local Docker cloud: from `broker launch` to the job's first line of
//! output, and to exit with `--down`, for 1, 4 and 8 nodes.
//!
//! Run with `cargo bench --bench launch` (needs the Docker engine and the node image, which the
//! first launch builds). Prints a table; asserts nothing. Goal: under 3 s to first output for one
//! node once the image exists, and nearly flat as nodes grow.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn launch(home: &std::path::Path, task: &std::path::Path, cluster: &str) -> (Duration, Duration) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(["launch", task.to_str().unwrap(), "-c", cluster, "--yes", "--down"])
        .env("BROKER_HOME", home)
        .env("BROKER_NO_PROGRESS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _first = lines.next().expect("the job printed nothing").unwrap();
    let first = start.elapsed();
    for _ in lines {}
    assert!(child.wait().unwrap().success());
    (first, start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let home = tempfile::tempdir().unwrap();
    let runs = 3;
    println!("{:<8} {:>22} {:>22}", "nodes", "to first output", "to exit with --down");
    for nodes in [1, 4, 8] {
        let task = home.path().join(format!("bench-{nodes}.yaml"));
        std::fs::write(
            &task,
            format!("num_nodes: {nodes}\nresources:\n  cloud: docker\nrun: echo first\n"),
        )
        .unwrap();
        // A warm-up run creates the user key and the node image if they are missing.
        launch(
            home.path(),
            &task,
            &format!("bench-warm-{nodes}-{}", std::process::id()),
        );
        let mut firsts = Vec::new();
        let mut exits = Vec::new();
        for run in 0..runs {
            let (first, exit) = launch(
                home.path(),
                &task,
                &format!("bench-{nodes}-{run}-{}", std::process::id()),
            );
            firsts.push(first);
            exits.push(exit);
        }
        println!(
            "{:<8} {:>20.2} s {:>20.2} s",
            nodes,
            median(firsts).as_secs_f64(),
            median(exits).as_secs_f64()
        );
    }
}
