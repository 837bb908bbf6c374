//! One SSH connection per node: a `ControlMaster` (through the `openssh` crate) that every
//! command of broker reuses, with the node's host key pinned per cluster.
//!
//! Host keys are trusted on first use (`StrictHostKeyChecking=accept-new`) into the cluster's own
//! known-hosts file, never into `~/.ssh/known_hosts` and never with checking switched off: a node
//! that later presents another key is refused with [`SshError::HostKeyChanged`].

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use openssh::{KnownHosts, Session, SessionBuilder};
use tokio::io::AsyncWriteExt;

use super::{SshError, tail_text};

/// How often connecting is retried while a node boots.
const RETRY_EVERY: Duration = Duration::from_millis(250);
/// The longest a single attempt (TCP connect and handshake) may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Keeps NAT gateways from dropping an idle connection while a long job runs.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Where and how to log in to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Address or name of the SSH server.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The user to log in as.
    pub user: String,
    /// The cluster's known-hosts file (e.g. `<home>/clusters/<name>/known_hosts`), where the host
    /// key is pinned at first contact. Its directory also holds the generated `ssh_config`.
    pub known_hosts: PathBuf,
    /// The private key ([`super::UserKey::private`]).
    pub key: PathBuf,
    /// A `ProxyCommand` (ssh config syntax, `%h`/`%p` expand) to reach the node through.
    pub proxy_command: Option<String>,
}

impl SshTarget {
    /// The ssh config file to pass with `-F`: a generated one holding the `ProxyCommand`, or
    /// `/dev/null` so that the user's `~/.ssh/config` cannot change how broker connects.
    pub fn config_file(&self) -> Result<PathBuf, SshError> {
        let Some(proxy) = &self.proxy_command else {
            return Ok(PathBuf::from("/dev/null"));
        };
        if proxy.contains(['\n', '\r']) {
            // A newline would start a new config directive.
            return Err(SshError::Invalid("a ProxyCommand must be one line".into()));
        }
        let path = self.cluster_dir().join("ssh_config");
        fs_err::write(&path, format!("ProxyCommand {proxy}\n"))?;
        Ok(path)
    }

    /// The directory holding the known-hosts file, created if missing.
    fn cluster_dir(&self) -> PathBuf {
        self.known_hosts
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }

    /// The ssh options shared by every ssh process broker starts outside the master (probe, rsync).
    pub(crate) fn ssh_args(&self, config: &Path, strict: &str) -> Vec<String> {
        vec![
            "-F".into(),
            config.display().to_string(),
            "-i".into(),
            self.key.display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-l".into(),
            self.user.clone(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("StrictHostKeyChecking={strict}"),
            "-o".into(),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
        ]
    }
}

/// An open connection to a node. Dropping it closes the master connection.
#[derive(Debug)]
pub struct SshSession {
    session: Session,
    target: SshTarget,
    /// Whether this connection already installed the current agent script.
    pub(crate) agent_installed: std::sync::atomic::AtomicBool,
}

impl SshSession {
    /// The underlying `openssh` session, for commands this module does not wrap.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Where this session is connected to.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Closes the master connection and reports a failure to do so.
    pub async fn close(self) -> Result<(), SshError> {
        let (host, port) = (self.target.host.clone(), self.target.port);
        self.session
            .close()
            .await
            .map_err(|source| SshError::Ssh { host, port, source })
    }

    pub(crate) fn ssh_error(&self, source: openssh::Error) -> SshError {
        SshError::Ssh {
            host: self.target.host.clone(),
            port: self.target.port,
            source,
        }
    }

    /// Runs `program args...` on the node (arguments escaped by openssh), feeding it `stdin`,
    /// and returns its standard output; a non-zero exit is [`SshError::CommandFailed`].
    pub async fn run(&self, program: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, SshError> {
        let mut command = self.session.command(program);
        command
            .args(args)
            .stdin(if stdin.is_some() {
                openssh::Stdio::piped()
            } else {
                openssh::Stdio::null()
            })
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped());
        let mut child = command.spawn().await.map_err(|e| self.ssh_error(e))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin().take()) {
            // Closing stdin (the drop) is what tells the remote side the data is complete.
            pipe.write_all(data).await?;
            pipe.shutdown().await?;
        }
        let out = child.wait_with_output().await.map_err(|e| self.ssh_error(e))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(SshError::CommandFailed {
                command: std::iter::once(program)
                    .chain(args.iter().copied())
                    .collect::<Vec<_>>()
                    .join(" "),
                status: out.status.to_string(),
                stderr: tail_text(&out.stderr, 2000),
            })
        }
    }
}

/// Connects to `target`, retrying every 250 ms until `deadline` has passed (a fresh node needs a
/// moment to start sshd). A host key that differs from the pinned one fails at once.
pub async fn connect(target: &SshTarget, deadline: Duration) -> Result<SshSession, SshError> {
    let started = Instant::now();
    fs_err::create_dir_all(target.cluster_dir())?;
    let config = target.config_file()?;
    let control_dir = control_dir(&target.key)?;

    let mut builder = SessionBuilder::default();
    builder
        .user(target.user.clone())
        .port(target.port)
        .keyfile(&target.key)
        // `Add` is accept-new; `KnownHosts::Accept` would be StrictHostKeyChecking=no.
        .known_hosts_check(KnownHosts::Add)
        .user_known_hosts_file(&target.known_hosts)
        .control_directory(&control_dir)
        .config_file(&config)
        .connect_timeout(ATTEMPT_TIMEOUT)
        .server_alive_interval(KEEPALIVE);

    loop {
        let cause = match builder.connect(&target.host).await {
            Ok(session) => {
                return Ok(SshSession {
                    session,
                    target: target.clone(),
                    agent_installed: false.into(),
                });
            }
            Err(e) => error_chain(&e),
        };
        if is_host_key_mismatch(&cause) {
            return Err(host_key_changed(target));
        }
        // openssh's error does not say why the connection failed (a closed port and a refused
        // key read the same), so ask ssh once more, this time keeping its stderr.
        let probed = probe(target, &config).await;
        if is_host_key_mismatch(&probed) {
            return Err(host_key_changed(target));
        }
        let cause = if probed.is_empty() { cause } else { probed };
        tracing::debug!(host = %target.host, port = target.port, %cause, "ssh not ready yet");
        if started.elapsed() + RETRY_EVERY > deadline {
            return Err(SshError::ConnectTimeout {
                host: target.host.clone(),
                port: target.port,
                user: target.user.clone(),
                waited: started.elapsed(),
                cause,
            });
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// The key pinned for `target` in a known-hosts file (`ssh-ed25519 AAAA...`), for the state
/// database. A cluster's file holds one line per node, keyed `[host]:port` (`host` for port 22).
pub fn pinned_key(known_hosts: &Path, target: &SshTarget) -> Option<String> {
    let pattern = if target.port == 22 {
        target.host.clone()
    } else {
        format!("[{}]:{}", target.host, target.port)
    };
    let text = std::fs::read_to_string(known_hosts).ok()?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            // The first field may list several names separated by commas.
            fields.next()?.split(',').any(|name| name == pattern).then_some(())?;
            Some(format!("{} {}", fields.next()?, fields.next()?))
        })
}

fn host_key_changed(target: &SshTarget) -> SshError {
    SshError::HostKeyChanged {
        host: target.host.clone(),
        port: target.port,
        known_hosts: target.known_hosts.clone(),
    }
}

fn is_host_key_mismatch(stderr: &str) -> bool {
    stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") || stderr.contains("Host key verification failed")
}

/// An error and all its sources on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One plain `ssh ... true`, returning its standard error (empty if it succeeded).
async fn probe(target: &SshTarget, config: &Path) -> String {
    let mut command = tokio::process::Command::new("ssh");
    command
        .args(target.ssh_args(config, "accept-new"))
        .args(["-o", "ConnectTimeout=5"])
        .arg(&target.host)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match tokio::time::timeout(ATTEMPT_TIMEOUT, command.output()).await {
        Ok(Ok(out)) if out.status.success() => String::new(),
        Ok(Ok(out)) => tail_text(&out.stderr, 2000),
        Ok(Err(e)) => format!("cannot run ssh: {e}"),
        Err(_) => format!("ssh did not answer within {ATTEMPT_TIMEOUT:?}"),
    }
}

/// A short directory for the control sockets: a unix socket path must stay under about 100
/// bytes, which a path under the user's home may not. It is private to the user (0700) and must
/// belong to the owner of the key, so that nobody else can plant a socket in it.
fn control_dir(key: &Path) -> Result<PathBuf, SshError> {
    let uid = fs_err::metadata(key)?.uid();
    let dir = std::env::temp_dir().join(format!("broker-ssh-{uid}"));
    fs_err::create_dir_all(&dir)?;
    let meta = fs_err::symlink_metadata(&dir)?;
    if meta.uid() != uid || !meta.is_dir() {
        return Err(SshError::Invalid(format!(
            "{} belongs to another user or is not a directory; remove it",
            dir.display()
        )));
    }
    if meta.permissions().mode() & 0o777 != 0o700 {
        fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::keys::ensure_user_key;
    use crate::ssh::testnode::with_cluster;

    fn one_line(known_hosts: &Path) -> String {
        let text = std::fs::read_to_string(known_hosts).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        text
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn connect_pins_the_host_key_and_refuses_a_changed_one() {
        with_cluster(2, |cluster| async move {
            let first = &cluster.nodes[0].target;
            let session = connect(first, Duration::from_secs(30)).await.unwrap();
            let out = session.run("echo", &["it's", "$HOME"], None).await.unwrap();
            assert_eq!(out, b"it's $HOME\n", "arguments arrive escaped");
            drop(session);

            let line = one_line(&first.known_hosts);
            let pinned = pinned_key(&first.known_hosts, first).unwrap();
            assert!(pinned.starts_with("ssh-ed25519 "), "{pinned}");
            assert!(line.starts_with(&format!("[127.0.0.1]:{} ", first.port)), "{line}");
            assert_eq!(pinned_key(&first.known_hosts, &cluster.nodes[1].target), None);

            // Reconnecting with the pinned key works and adds nothing.
            connect(first, Duration::from_secs(10)).await.unwrap();
            assert_eq!(one_line(&first.known_hosts), line);

            // The second node has its own host key: pretend it is the first one, changed.
            let second = &cluster.nodes[1].target;
            let moved = line.replacen(&format!(":{} ", first.port), &format!(":{} ", second.port), 1);
            std::fs::write(&second.known_hosts, &moved).unwrap();
            let started = Instant::now();
            let err = connect(second, Duration::from_secs(20)).await.unwrap_err();
            assert!(
                matches!(err, SshError::HostKeyChanged { port, .. } if port == second.port),
                "{err:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "refused at once, not retried"
            );
            let message = err.to_string();
            assert!(
                message.contains("CHANGED") && message.contains("remove its line"),
                "{message}"
            );
            assert_eq!(one_line(&second.known_hosts), moved, "the pinned key is kept");
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_closed_port_times_out_with_the_cause() {
        let home = tempfile::tempdir().unwrap();
        let key = ensure_user_key(home.path()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target = SshTarget {
            host: "127.0.0.1".into(),
            port,
            user: "root".into(),
            known_hosts: home.path().join("clusters/c/known_hosts"),
            key: key.private,
            proxy_command: None,
        };
        let err = connect(&target, Duration::from_secs(1)).await.unwrap_err();
        let SshError::ConnectTimeout { cause, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(cause.contains("refused"), "{cause}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_proxy_command_is_used() {
        with_cluster(1, |cluster| async move {
            let mut target = cluster.nodes[0].target.clone();
            // The proxy reaches the real port; ssh itself is told a port nothing listens on.
            let real = target.port;
            target.proxy_command = Some(format!(
                "bash -c 'exec 3<>/dev/tcp/127.0.0.1/{real}; cat <&3 & cat >&3; wait'"
            ));
            target.host = "node0.invalid".into();
            let session = connect(&target, Duration::from_secs(30)).await.unwrap();
            assert!(!session.run("hostname", &[], None).await.unwrap().is_empty());
            assert!(pinned_key(&target.known_hosts, &target).is_some());
        })
        .await;
    }
}
