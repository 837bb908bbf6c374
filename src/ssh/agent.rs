//! The on-node job runner: installs `agent.sh` on a node and submits, inspects and follows jobs.
//!
//! A job is sent as data on stdin (never spliced into shell text), started detached so it
//! survives the SSH connection, and queued behind the node's other jobs with `flock`. Its output
//! goes to a log file on the node and its exit code to a file, so `follow` can re-attach at any
//! time. The file layout is described at the top of `agent.sh`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::session::SshSession;
use super::{SshError, tail_text};

/// The agent script, installed on every node.
const AGENT_SCRIPT: &str = include_str!("agent.sh");
/// Its path on the node, relative to the login directory (a `~` would reach ssh escaped).
const AGENT_PATH: &str = ".broker/agent.sh";
/// Installs stdin as the agent; `mv` so that runners executing the old copy keep reading it.
const INSTALL: &str = "mkdir -p \"$HOME/.broker/jobs\" && cat >\"$HOME/.broker/agent.sh.new\" \
                       && mv -f \"$HOME/.broker/agent.sh.new\" \"$HOME/.broker/agent.sh\"";

/// One job to run on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// The job id, unique on the node; resubmitting an id does nothing.
    pub id: u64,
    /// The job's environment, passed byte for byte (any byte but NUL).
    pub envs: BTreeMap<String, String>,
    /// Commands run first (`bash -c`); a failure skips `run`.
    pub setup: Option<String>,
    /// The job's commands (`bash -c`).
    pub run: String,
    /// The directory to run in; relative paths and `~/` are under the login user's home.
    pub workdir: String,
    /// A container image (`docker` reference) to run `setup` and `run` in, with the workdir
    /// mounted; `None` runs them on the node itself.
    pub image: Option<String>,
    /// Whether the node has GPUs, to hand to the image's container (`--gpus all`).
    pub gpus: bool,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for the node's earlier jobs to end.
    Queued,
    /// Running now.
    Running,
    /// Ended with this exit code (the first failing phase's; 128+N when killed by signal N).
    Exited(i32),
    /// Its runner ended without recording an exit code (node rebooted, runner killed).
    Lost,
}

/// Installs the agent on the node unless this session already did.
pub async fn install(session: &SshSession) -> Result<(), SshError> {
    if session.agent_installed.load(Ordering::Relaxed) {
        return Ok(());
    }
    session
        .run("sh", &["-c", INSTALL], Some(AGENT_SCRIPT.as_bytes()))
        .await?;
    session.agent_installed.store(true, Ordering::Relaxed);
    Ok(())
}

/// Starts `job` on the node (queued behind running jobs) and returns its id.
///
/// Returns once the job is recorded and its detached runner started; the job itself survives the
/// session being dropped.
pub async fn submit(session: &SshSession, job: &JobSpec) -> Result<u64, SshError> {
    let payload = encode(job)?;
    install(session).await?;
    let id = job.id.to_string();
    session
        .run("bash", &[AGENT_PATH, "submit", &id], Some(&payload))
        .await?;
    Ok(job.id)
}

/// What a node does once it has been idle (no job queued or running) long enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Autostop {
    /// Power off after this long idle; `down` removes the node instead of stopping it where the
    /// cloud makes a difference.
    After {
        /// Idle time before acting.
        idle: std::time::Duration,
        /// Tear down rather than stop.
        down: bool,
    },
    /// No autostop.
    Cancel,
}

/// Sets (or cancels) the node's autostop; the node's own watchdog acts on it, so it holds with
/// broker gone.
pub async fn set_autostop(session: &SshSession, autostop: Autostop) -> Result<(), SshError> {
    install(session).await?;
    let settings: Vec<String> = match autostop {
        Autostop::After { idle, down } => vec![
            idle.as_secs().max(1).to_string(),
            if down { "down" } else { "stop" }.to_owned(),
        ],
        Autostop::Cancel => vec!["cancel".to_owned()],
    };
    let mut argv = vec![AGENT_PATH, "autostop"];
    argv.extend(settings.iter().map(String::as_str));
    session.run("bash", &argv, None).await?;
    Ok(())
}

/// The state of job `id`.
pub async fn status(session: &SshSession, id: u64) -> Result<JobState, SshError> {
    install(session).await?;
    let out = session
        .run("bash", &[AGENT_PATH, "status", &id.to_string()], None)
        .await?;
    match parse_state(String::from_utf8_lossy(&out).trim())? {
        Some(state) => Ok(state),
        None => Err(SshError::UnknownJob(id)),
    }
}

/// Every job on the node, by id.
pub async fn list(session: &SshSession) -> Result<Vec<(u64, JobState)>, SshError> {
    install(session).await?;
    let out = session.run("bash", &[AGENT_PATH, "list"], None).await?;
    let mut jobs = Vec::new();
    for line in String::from_utf8_lossy(&out).lines() {
        let (id, state) = line.split_once(' ').ok_or_else(|| unexpected(line))?;
        let id: u64 = id.parse().map_err(|_| unexpected(line))?;
        // A job removed between listing and reading its state is skipped.
        if let Some(state) = parse_state(state)? {
            jobs.push((id, state));
        }
    }
    jobs.sort_by_key(|(id, _)| *id);
    Ok(jobs)
}

/// Streams job `id`'s log from its start, one line at a time (without the line end; invalid UTF-8
/// replaced), until the job ends, and returns its exit code. Works for a queued, running or
/// finished job; the log is read from the node, so it can be called again at any time.
pub async fn follow(session: &SshSession, id: u64, mut on_line: impl FnMut(&str)) -> Result<i32, SshError> {
    install(session).await?;
    let id_text = id.to_string();
    let mut command = session.session().command("bash");
    command
        .args([AGENT_PATH, "follow", &id_text])
        .stdin(openssh::Stdio::null())
        .stdout(openssh::Stdio::piped())
        .stderr(openssh::Stdio::piped());
    let mut child = command.spawn().await.map_err(|e| session.ssh_error(e))?;
    let stdout = child.stdout().take();
    let stderr = child.stderr().take();

    let read_log = async {
        let Some(stdout) = stdout else {
            return Ok::<_, std::io::Error>(());
        };
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        // Bytes, not `lines()`: a job may print anything, and one bad byte must not end the stream.
        while reader.read_until(b'\n', &mut line).await? > 0 {
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            on_line(&String::from_utf8_lossy(&line));
            line.clear();
        }
        Ok(())
    };
    // Drained alongside stdout so that a chatty stderr cannot block the remote side.
    let read_errors = async {
        let mut text = Vec::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_end(&mut text).await;
        }
        text
    };
    let (logged, errors) = tokio::join!(read_log, read_errors);
    logged?;
    let exit = child.wait().await.map_err(|e| session.ssh_error(e))?;
    if !exit.success() {
        return Err(SshError::CommandFailed {
            command: format!("agent follow {id}"),
            status: exit.to_string(),
            stderr: tail_text(&errors, 2000),
        });
    }
    match status(session, id).await? {
        JobState::Exited(code) => Ok(code),
        // The log ended because the runner died, or never started.
        JobState::Lost | JobState::Queued | JobState::Running => Err(SshError::JobLost(id)),
    }
}

/// The request `agent.sh submit` reads: workdir, setup, run, image, gpus (`1` or empty), then
/// `KEY=VALUE` records, each ended by NUL. NUL is the one byte no environment value or shell command can hold.
fn encode(job: &JobSpec) -> Result<Vec<u8>, SshError> {
    let mut out = Vec::new();
    let fields = [
        ("workdir", job.workdir.as_str()),
        ("setup", job.setup.as_deref().unwrap_or("")),
        ("run", job.run.as_str()),
        ("image", job.image.as_deref().unwrap_or("")),
        ("gpus", if job.gpus { "1" } else { "" }),
    ];
    for (what, value) in fields {
        if value.contains('\0') {
            return Err(SshError::Invalid(format!("the job's {what} contains a NUL byte")));
        }
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    for (key, value) in &job.envs {
        if !valid_env_name(key) {
            return Err(SshError::Invalid(format!(
                "`{key}` is not a valid environment variable name (letters, digits, `_`, not starting with a digit)"
            )));
        }
        if value.contains('\0') {
            return Err(SshError::Invalid(format!("the value of {key} contains a NUL byte")));
        }
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    Ok(out)
}

/// A name `export` accepts: anything else would be an error on the node, or worse, an option.
fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `queued`, `running`, `exited N`, `lost`; `unknown` is `None`.
fn parse_state(text: &str) -> Result<Option<JobState>, SshError> {
    Ok(Some(match text {
        "queued" => JobState::Queued,
        "running" => JobState::Running,
        "lost" => JobState::Lost,
        "unknown" => return Ok(None),
        other => match other.strip_prefix("exited ").and_then(|c| c.trim().parse().ok()) {
            Some(code) => JobState::Exited(code),
            None => return Err(unexpected(other)),
        },
    }))
}

fn unexpected(line: &str) -> SshError {
    SshError::Invalid(format!("unexpected answer from the node's agent: `{line}`"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ssh::session::connect;
    use crate::ssh::testnode::with_cluster;

    const DEADLINE: Duration = Duration::from_secs(30);

    fn job(id: u64, run: &str) -> JobSpec {
        JobSpec {
            id,
            envs: BTreeMap::new(),
            setup: None,
            run: run.into(),
            workdir: "wd".into(),
            image: None,
            gpus: false,
        }
    }

    async fn follow_lines(session: &SshSession, id: u64) -> (i32, Vec<String>) {
        let mut lines = Vec::new();
        let code = follow(session, id, |l| lines.push(l.to_owned())).await.unwrap();
        (code, lines)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn env_values_arrive_byte_exact_and_exit_codes_pass_through() {
        with_cluster(1, |cluster| async move {
            let session = connect(&cluster.nodes[0].target, DEADLINE).await.unwrap();
            let nasty = "it's \"x\" $(whoami) ; rm -rf /\nsecond line \\ `id` end".to_owned();
            let mut printing = job(1, "printf '%s' \"$NASTY\"");
            printing.envs.insert("NASTY".into(), nasty.clone());
            printing.envs.insert("EMPTY".into(), String::new());
            assert_eq!(submit(&session, &printing).await.unwrap(), 1);
            let (code, lines) = follow_lines(&session, 1).await;
            assert_eq!(code, 0);
            assert_eq!(lines.join("\n"), nasty);
            let raw = session.run("cat", &[".broker/jobs/1/log"], None).await.unwrap();
            assert_eq!(raw, nasty.as_bytes(), "the log holds the exact bytes");

            submit(&session, &job(2, "echo before; exit 7; echo after"))
                .await
                .unwrap();
            assert_eq!(follow_lines(&session, 2).await, (7, vec!["before".to_owned()]));
            assert_eq!(status(&session, 2).await.unwrap(), JobState::Exited(7));

            // setup runs first, in the workdir, with the env; its failure skips run.
            let mut phased = job(3, "echo run in $(pwd) with $GREETING");
            phased.setup = Some("echo setup; mkdir -p made".into());
            phased.envs.insert("GREETING".into(), "hi there".into());
            phased.workdir = "~/deep/wd".into();
            submit(&session, &phased).await.unwrap();
            let (code, lines) = follow_lines(&session, 3).await;
            assert_eq!(
                (code, lines),
                (
                    0,
                    vec!["setup".to_owned(), "run in /root/deep/wd with hi there".to_owned()]
                )
            );
            let mut failing = job(4, "echo never");
            failing.setup = Some("exit 3".into());
            submit(&session, &failing).await.unwrap();
            assert_eq!(follow_lines(&session, 4).await, (3, vec![]));

            assert!(matches!(status(&session, 99).await, Err(SshError::UnknownJob(99))));
            let ids: Vec<u64> = list(&session).await.unwrap().into_iter().map(|(id, _)| id).collect();
            assert_eq!(ids, [1, 2, 3, 4]);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn jobs_of_a_node_run_one_after_another() {
        with_cluster(1, |cluster| async move {
            let session = connect(&cluster.nodes[0].target, DEADLINE).await.unwrap();
            submit(&session, &job(1, "sleep 2; touch /tmp/first-done; echo one"))
                .await
                .unwrap();
            submit(&session, &job(2, "test -e /tmp/first-done && echo two"))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(status(&session, 1).await.unwrap(), JobState::Running);
            assert_eq!(status(&session, 2).await.unwrap(), JobState::Queued);
            assert_eq!(follow_lines(&session, 2).await, (0, vec!["two".to_owned()]));
            assert_eq!(
                list(&session).await.unwrap(),
                [(1, JobState::Exited(0)), (2, JobState::Exited(0))]
            );
            assert_eq!(follow_lines(&session, 1).await, (0, vec!["one".to_owned()]));
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_job_outlives_its_session_and_resubmitting_is_a_no_op() {
        with_cluster(1, |cluster| async move {
            let target = cluster.nodes[0].target.clone();
            let session = connect(&target, DEADLINE).await.unwrap();
            let sleeper = job(5, "sleep 2; echo done");
            submit(&session, &sleeper).await.unwrap();
            session.close().await.unwrap();

            let session = connect(&target, DEADLINE).await.unwrap();
            assert_eq!(status(&session, 5).await.unwrap(), JobState::Running);
            // A resend (say after a dropped connection) must not start it twice.
            submit(&session, &sleeper).await.unwrap();
            assert_eq!(follow_lines(&session, 5).await, (0, vec!["done".to_owned()]));
            assert_eq!(list(&session).await.unwrap(), [(5, JobState::Exited(0))]);

            // A runner killed before it could record an exit code is reported, not waited for.
            submit(&session, &job(6, "sleep 30")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            session
                .run("sh", &["-c", "kill -9 $(cat .broker/jobs/6/pid)"], None)
                .await
                .unwrap();
            assert!(matches!(follow(&session, 6, |_| {}).await, Err(SshError::JobLost(6))));
            assert_eq!(status(&session, 6).await.unwrap(), JobState::Lost);
        })
        .await;
    }

    #[test]
    fn requests_are_nul_separated_and_reject_what_cannot_be_sent() {
        let job = JobSpec {
            id: 1,
            envs: BTreeMap::from([("A".to_owned(), "x\ny".to_owned())]),
            setup: None,
            run: "echo hi".into(),
            workdir: "w".into(),
            image: None,
            gpus: false,
        };
        assert_eq!(encode(&job).unwrap(), b"w\0\0echo hi\0\0\0A=x\ny\0");
        let mut imaged = job.clone();
        imaged.image = Some("img:1".into());
        imaged.gpus = true;
        assert_eq!(encode(&imaged).unwrap(), b"w\0\0echo hi\0img:1\x001\0A=x\ny\0");
        let mut bad = job.clone();
        bad.envs.insert("1X".into(), String::new());
        assert!(matches!(encode(&bad), Err(SshError::Invalid(_))));
        let mut bad = job;
        bad.envs.insert("B".into(), "a\0b".into());
        assert!(matches!(encode(&bad), Err(SshError::Invalid(_))));
    }

    #[test]
    fn states_parse() {
        assert_eq!(parse_state("exited 7").unwrap(), Some(JobState::Exited(7)));
        assert_eq!(parse_state("queued").unwrap(), Some(JobState::Queued));
        assert_eq!(parse_state("unknown").unwrap(), None);
        assert!(parse_state("exited x").is_err());
    }
}
