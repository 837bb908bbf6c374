//! Reaching a node over SSH and running jobs on it (DESIGN.md §7).
//!
//! - [`keys`]: the per-user ed25519 key broker logs in with;
//! - [`session`]: one `ControlMaster` connection per node, with the host key pinned per cluster;
//! - [`agent`]: the small on-node job runner (detached jobs, a queue, logs, exit codes);
//! - [`sync`]: `rsync` of a local directory to the node over the pinned host key.
//!
//! Everything here drives the system `ssh`, `ssh-keygen` and `rsync`, so their behaviour (config
//! syntax, known-hosts format) is the one users already know.

pub mod agent;
pub mod keys;
pub mod session;
pub mod sync;

#[cfg(test)]
mod testnode;

use std::path::PathBuf;
use std::time::Duration;

pub use agent::{Autostop, JobSpec, JobState, follow, list, set_autostop, status, submit};
pub use keys::{UserKey, ensure_user_key};
pub use session::{SshSession, SshTarget, connect, pinned_key};
pub use sync::{rsync_dir, rsync_path};

/// Everything that can go wrong talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The node did not accept a connection before the deadline.
    #[error("could not connect to {user}@{host} port {port} within {waited:?}: {cause}")]
    ConnectTimeout {
        /// Host dialled.
        host: String,
        /// Port dialled.
        port: u16,
        /// User logged in as.
        user: String,
        /// How long connecting was retried.
        waited: Duration,
        /// What the last attempt reported (ssh's own message when there was one).
        cause: String,
    },
    /// The node presented a host key other than the one pinned at first contact.
    #[error(
        "the host key of {host} port {port} has CHANGED since it was pinned in {}: this can be a \
         man-in-the-middle attack, so broker refuses to connect. If the node was replaced on \
         purpose, remove its line from that file (`ssh-keygen -R '[{host}]:{port}' -f {}`) and retry",
        known_hosts.display(),
        known_hosts.display()
    )]
    HostKeyChanged {
        /// Host dialled.
        host: String,
        /// Port dialled.
        port: u16,
        /// The cluster's known-hosts file holding the pinned key.
        known_hosts: PathBuf,
    },
    /// A command (local or remote) ended unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// What was run, for the message.
        command: String,
        /// `exit status N`, or how it ended otherwise.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// A local file or process operation failed (the message names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The private key may be read by other users, so ssh (and broker) will not use it.
    #[error(
        "private key {} has mode {mode:03o} and is readable by other users: run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyPermissions {
        /// The private key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The SSH layer (the `openssh` crate) failed on an established connection.
    #[error("ssh to {host} port {port}: {source}")]
    Ssh {
        /// Host of the session.
        host: String,
        /// Port of the session.
        port: u16,
        /// What openssh reported.
        #[source]
        source: openssh::Error,
    },
    /// A request that cannot be sent as given (for example a NUL byte in an environment value).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The node has no job with this id.
    #[error("the node has no job {0}")]
    UnknownJob(u64),
    /// The job's runner died without recording an exit code (node rebooted, process killed).
    #[error("job {0} was lost: its runner ended without recording an exit code")]
    JobLost(u64),
}

/// At most the last `max` bytes of `bytes` as text, so error messages stay readable.
pub(crate) fn tail_text(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(&bytes[start..]).trim().to_owned()
}
