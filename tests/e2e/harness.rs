//! A temporary broker home, a unique cluster name and a leak guard per test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn show(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// One test's world: a broker home and a cluster name no other test uses.
pub(crate) struct World {
    home: tempfile::TempDir,
    pub(crate) cluster: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl World {
    pub(crate) fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let cluster = format!("e2e-{tag}-{}-{n}", std::process::id());
        Self {
            home: tempfile::tempdir().unwrap(),
            cluster,
        }
    }

    pub(crate) fn home(&self) -> &Path {
        self.home.path()
    }

    pub(crate) fn broker(&self, args: &[&str]) -> Run {
        self.broker_env(args, &[])
    }

    pub(crate) fn broker_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_broker"))
            .args(args)
            .envs(env.iter().copied())
            .current_dir(fixtures())
            .env("BROKER_HOME", self.home.path())
            .env("BROKER_NO_PROGRESS", "1")
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .expect("run broker");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Containers of this test's cluster that still exist, by label.
    pub(crate) fn containers(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=broker.cluster={}", self.cluster),
            ])
            .output()
            .expect("docker ps: is the Docker engine running?");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Whatever the test did, leave no container or network behind.
        let ids = self.containers();
        if !ids.is_empty() {
            let _ = Command::new("docker").arg("rm").arg("-f").args(&ids).output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &format!("broker-{}", self.cluster)])
            .output();
    }
}

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Which of broker's streams to watch for the job's first line.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl World {
    /// Starts broker with `args` in the background and returns once a line of `stream` contains
    /// `started` (the long-running fixture job prints it): by then the node exists and the job
    /// runs on it. The other stream is discarded.
    pub(crate) fn spawn_until_started(&self, args: &[&str], stream: Stream) -> std::process::Child {
        use std::io::{BufRead as _, BufReader};
        use std::process::Stdio;
        let (out, err) = match stream {
            Stream::Stdout => (Stdio::piped(), Stdio::null()),
            Stream::Stderr => (Stdio::piped(), Stdio::piped()),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_broker"))
            .args(args)
            .current_dir(fixtures())
            .env("BROKER_HOME", self.home.path())
            .env("BROKER_NO_PROGRESS", "1")
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("run broker");
        let watched: Box<dyn std::io::Read + Send> = match stream {
            Stream::Stdout => Box::new(child.stdout.take().unwrap()),
            Stream::Stderr => Box::new(child.stderr.take().unwrap()),
        };
        let mut lines = BufReader::new(watched).lines();
        let deadline = std::time::Instant::now() + std::time::Duration::from_mins(2);
        loop {
            let line = lines.next().expect("broker ended before the job started").unwrap();
            if line.contains("started") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the job never started");
        }
        // Keep draining, so broker never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        child
    }
}
