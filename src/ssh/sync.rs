//! Copying a local directory to a node with `rsync` over SSH (the task's workdir and mounts).
//!
//! It uses a separate ssh process with `StrictHostKeyChecking=yes`: by the time files are synced
//! [`super::connect`] has pinned the host key, so an unknown or changed key here is an error.

use std::path::Path;
use std::process::Stdio;

use super::session::SshTarget;
use super::{SshError, tail_text};

/// Mirrors `local` (a directory) into `remote` on the node: `rsync -a --delete`, skipping `.git/`
/// and whatever `.gitignore` and `.brokerignore` files in the tree exclude. A relative `remote`
/// is under the login user's home; missing parent directories are created.
pub async fn rsync_dir(target: &SshTarget, local: &Path, remote: &str) -> Result<(), SshError> {
    rsync(target, local, remote, true).await
}

/// Copies `local` to `remote` on the node: a directory as [`rsync_dir`] does, a file as that
/// file. `~/` at the start of `remote` is the login user's home; an absolute `remote` outside it
/// is written with `sudo` when the login user is not root (cloud images log in as a user).
pub async fn rsync_path(target: &SshTarget, local: &Path, remote: &str) -> Result<(), SshError> {
    let dir = tokio::fs::metadata(local)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", local.display())))?
        .is_dir();
    rsync(target, local, remote, dir).await
}

async fn rsync(target: &SshTarget, local: &Path, remote: &str, dir: bool) -> Result<(), SshError> {
    let remote = remote.strip_prefix("~/").unwrap_or(remote);
    let config = target.config_file()?;
    let ssh = std::iter::once("ssh".to_owned())
        .chain(target.ssh_args(&config, "yes"))
        .map(|arg| rsync_quote(&arg))
        .collect::<Vec<_>>()
        .join(" ");
    // The trailing slash copies the directory's contents, not the directory itself.
    let mut source = local.as_os_str().to_owned();
    if dir {
        source.push("/");
    }
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    let destination = format!("{}@{host}:{remote}", target.user);

    let mut command = tokio::process::Command::new("rsync");
    command.args(["-a", "--mkpath"]);
    if dir {
        command
            .args(["--delete", "--exclude=/.git/", "--exclude=.git/"])
            .args(["--filter=:- .gitignore", "--filter=:- .brokerignore"]);
    }
    if remote.starts_with('/') && target.user != "root" {
        command.arg("--rsync-path=sudo rsync");
    }
    let out = command
        .arg("-e")
        .arg(&ssh)
        .arg(&source)
        .arg(&destination)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot run rsync (is it installed?): {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = tail_text(&out.stderr, 2000);
    if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        return Err(SshError::HostKeyChanged {
            host: target.host.clone(),
            port: target.port,
            known_hosts: target.known_hosts.clone(),
        });
    }
    Err(SshError::CommandFailed {
        command: format!("rsync {} -> {destination}", local.display()),
        status: out.status.to_string(),
        stderr,
    })
}

/// Quotes one word of rsync's `-e` command: rsync splits it on spaces and, inside quotes, reads
/// a doubled quote as a literal one (it has no backslash escapes).
fn rsync_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsync_words_are_quoted_its_way() {
        assert_eq!(rsync_quote("-p"), "-p");
        assert_eq!(rsync_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(rsync_quote("it's"), "'it''s'");
        assert_eq!(rsync_quote(""), "''");
    }
}

#[cfg(test)]
mod docker_tests {
    use std::time::Duration;

    use crate::ssh::session::connect;
    use crate::ssh::testnode::with_cluster;

    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn rsync_honours_ignore_files_and_deletes() {
        with_cluster(1, |cluster| async move {
            let target = cluster.nodes[0].target.clone();
            let session = connect(&target, Duration::from_secs(30)).await.unwrap();
            let local = tempfile::tempdir().unwrap();
            let write = |rel: &str, text: &str| {
                let path = local.path().join(rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            };
            write("train.py", "print(1)\n");
            write("sub dir/it's.txt", "quoted name\n");
            write(".gitignore", "*.log\n");
            write(".brokerignore", "data/\n");
            write("run.log", "ignored by git\n");
            write("data/big.bin", "ignored by broker\n");
            write(".git/config", "[core]\n");

            rsync_dir(&target, local.path(), "work/dir").await.unwrap();
            let files = |session| async move {
                let out =
                    crate::ssh::SshSession::run(session, "sh", &["-c", "cd work/dir && find . -type f | sort"], None)
                        .await
                        .unwrap();
                String::from_utf8(out).unwrap()
            };
            assert_eq!(
                files(&session).await,
                "./.brokerignore\n./.gitignore\n./sub dir/it's.txt\n./train.py\n"
            );

            std::fs::remove_file(local.path().join("train.py")).unwrap();
            rsync_dir(&target, local.path(), "work/dir").await.unwrap();
            assert_eq!(
                files(&session).await,
                "./.brokerignore\n./.gitignore\n./sub dir/it's.txt\n"
            );

            // A single file lands at the named path, parents created, `~/` meaning home.
            let file = local.path().join("sub dir/it's.txt");
            rsync_path(&target, &file, "~/mounts/a/copy.txt").await.unwrap();
            rsync_path(&target, &file, "/opt/abs/copy.txt").await.unwrap();
            let out =
                crate::ssh::SshSession::run(&session, "sh", &["-c", "cat mounts/a/copy.txt /opt/abs/copy.txt"], None)
                    .await
                    .unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), "quoted name\nquoted name\n");
        })
        .await;
    }
}
