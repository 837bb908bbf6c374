//! Running the binary in an isolated home with a fixed date.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// A fresh `$BROKER_HOME` per test, so a user catalog never leaks between tests.
pub(crate) struct Broker {
    home: tempfile::TempDir,
}

/// What a run produced, rendered for snapshots.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// `exit: N`, then stdout and stderr in framed blocks.
    pub(crate) fn render(&self) -> String {
        format!(
            "exit: {}\n----- stdout -----\n{}----- stderr -----\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl Broker {
    pub(crate) fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn home(&self) -> &Path {
        self.home.path()
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let output: Output = Command::cargo_bin("broker")
            .unwrap()
            .args(args)
            .current_dir(fixtures())
            .env("BROKER_HOME", self.home.path())
            .env("BROKER_TODAY", "2026-11-29")
            .env("BROKER_NO_PROGRESS", "1")
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// `tests/fixtures`, where task files are looked up relative to.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
