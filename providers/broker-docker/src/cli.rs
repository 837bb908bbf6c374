//! Runs the `docker` CLI: one process per call, arguments passed one by one (never through a
//! shell), with a deadline, and failures handed to [`crate::classify`].

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::classify::CliFailure;

/// How long one ordinary docker call may take. Generous: a loaded 2-core machine can take
/// seconds to start a container, but a hung engine must not hang broker.
const CALL_TIMEOUT: Duration = Duration::from_mins(2);

/// The docker CLI at a given path.
#[derive(Debug, Clone)]
pub(crate) struct Docker {
    pub(crate) bin: PathBuf,
}

impl Docker {
    /// Runs `docker ARGS...` and returns its stdout when it exits 0.
    pub(crate) async fn run<I, S>(&self, args: I) -> Result<String, CliFailure>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        // Messages name the subcommand only: arguments can be long (ids, a public key).
        let command = args
            .iter()
            .take_while(|a| !a.to_string_lossy().starts_with('-'))
            .take(2)
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let child = Command::new(&self.bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CliFailure::spawn(command.clone(), &self.bin, &e))?;
        let output = match tokio::time::timeout(CALL_TIMEOUT, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return Err(CliFailure::spawn(command, &self.bin, &e)),
            Err(_) => return Err(CliFailure::timed_out(command, CALL_TIMEOUT.as_secs())),
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(CliFailure::exited(
                command,
                output.status.to_string(),
                stdout,
                String::from_utf8_lossy(&output.stderr).into_owned(),
            ))
        }
    }
}
