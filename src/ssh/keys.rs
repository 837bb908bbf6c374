//! The per-user SSH key: one ed25519 key pair under `<home>/keys`, created on first use.
//!
//! ssh refuses a private key that others can read, and so does broker, before ssh gets the chance
//! to fail with a less helpful message.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{SshError, tail_text};

/// The user's key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKey {
    /// The private key file (mode 0600).
    pub private: PathBuf,
    /// The public key, one line without the trailing newline (`ssh-ed25519 AAAA... broker`).
    pub public: String,
}

/// The user's key at `<home>/keys/id_ed25519`, generated with `ssh-keygen` when missing.
///
/// The directory is made 0700 and a new private key 0600; an existing private key readable by
/// group or others is refused with [`SshError::KeyPermissions`].
pub fn ensure_user_key(home: &Path) -> Result<UserKey, SshError> {
    let dir = home.join("keys");
    fs_err::create_dir_all(&dir)?;
    fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let private = dir.join("id_ed25519");
    let public_path = dir.join("id_ed25519.pub");

    if !private.exists() {
        // A half-written pair from an interrupted run would make ssh-keygen ask to overwrite.
        let _ = fs_err::remove_file(&public_path);
        run_keygen(
            Command::new("ssh-keygen")
                .args(["-t", "ed25519", "-N", "", "-C", "broker", "-q", "-f"])
                .arg(&private),
        )?;
        fs_err::set_permissions(&private, std::fs::Permissions::from_mode(0o600))?;
    }

    let mode = fs_err::metadata(&private)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SshError::KeyPermissions { path: private, mode });
    }

    if !public_path.exists() {
        // The private key alone is enough to derive the public half.
        let out = run_keygen(Command::new("ssh-keygen").arg("-y").arg("-f").arg(&private))?;
        fs_err::write(&public_path, &out)?;
    }
    let public = fs_err::read_to_string(&public_path)?
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if public.is_empty() {
        return Err(SshError::Invalid(format!(
            "public key {} is empty",
            public_path.display()
        )));
    }
    Ok(UserKey { private, public })
}

/// Runs one `ssh-keygen` and returns its standard output.
fn run_keygen(command: &mut Command) -> Result<Vec<u8>, SshError> {
    let out = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot run ssh-keygen: {e}")))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(SshError::CommandFailed {
            command: "ssh-keygen".into(),
            status: out.status.to_string(),
            stderr: tail_text(&out.stderr, 2000),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_generated_private_and_reused() {
        let home = tempfile::tempdir().unwrap();
        let first = ensure_user_key(home.path()).unwrap();
        assert!(first.public.starts_with("ssh-ed25519 "), "{}", first.public);
        assert!(first.public.ends_with(" broker"), "{}", first.public);
        assert!(!first.public.contains('\n'));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&first.private), 0o600);
        assert_eq!(mode(&home.path().join("keys")), 0o700);

        let second = ensure_user_key(home.path()).unwrap();
        assert_eq!(first, second, "the existing key is reused");

        std::fs::set_permissions(&first.private, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = ensure_user_key(home.path()).unwrap_err();
        assert!(matches!(err, SshError::KeyPermissions { mode: 0o644, .. }), "{err:?}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn missing_public_half_is_derived() {
        let home = tempfile::tempdir().unwrap();
        let first = ensure_user_key(home.path()).unwrap();
        std::fs::remove_file(home.path().join("keys/id_ed25519.pub")).unwrap();
        let again = ensure_user_key(home.path()).unwrap();
        // `ssh-keygen -y` keeps the comment on current OpenSSH; compare the key material.
        let material = |k: &str| k.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        assert_eq!(material(&first.public), material(&again.public));
    }
}
