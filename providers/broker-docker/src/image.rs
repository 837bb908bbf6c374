//! Making sure the node image exists: find it, or build it with `docker/node/build.sh`.
//!
//! The build files are compiled into the crate, so an installed `broker` binary can build the
//! image on a machine that has no checkout of the repository: they are written to a temporary
//! directory and the script runs from there. A configured script path (a checkout) wins.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use broker_provider::{Cloud, ProviderError};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::DockerProvider;
use crate::classify::Kind;

/// The node image's build files, as they are in `docker/node/`.
const BUILD_FILES: &[(&str, &str)] = &[
    ("build.sh", include_str!("../../../docker/node/build.sh")),
    ("entrypoint.sh", include_str!("../../../docker/node/entrypoint.sh")),
    ("sshd_config", include_str!("../../../docker/node/sshd_config")),
    ("Dockerfile", include_str!("../../../docker/node/Dockerfile")),
    (
        "Dockerfile.local",
        include_str!("../../../docker/node/Dockerfile.local"),
    ),
];

/// A cold build (debootstrap) takes about a minute; this only stops a build that hangs.
const BUILD_TIMEOUT: Duration = Duration::from_mins(20);

/// How many lines of build output an error message repeats.
const TAIL_LINES: usize = 25;

/// build.sh's exit status when debootstrap is not installed.
const EXIT_NO_DEBOOTSTRAP: i32 = 3;

/// What [`DockerProvider::ensure_image`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageStatus {
    /// The image was there already.
    Found,
    /// The image was missing and has been built.
    Built,
}

impl DockerProvider {
    /// Makes sure the node image exists, building it when it is missing (about a minute the
    /// first time, seconds when the root file system is cached).
    pub async fn ensure_image(&self) -> Result<ImageStatus, ProviderError> {
        self.ensure_image_with_progress(|_| {}).await
    }

    /// Like [`Self::ensure_image`], handing every line the build prints to `progress` (for a
    /// spinner or a log: a cold build is silent for tens of seconds otherwise).
    pub async fn ensure_image_with_progress<F>(&self, mut progress: F) -> Result<ImageStatus, ProviderError>
    where
        F: FnMut(&str) + Send,
    {
        if self.image_exists().await? {
            return Ok(ImageStatus::Found);
        }
        // Keep the temporary copy alive until the script has finished.
        let extracted;
        let script = if let Some(path) = &self.config.build_script {
            path.clone()
        } else {
            extracted = extract_build_files().map_err(other)?;
            extracted.path().join("build.sh")
        };
        self.run_build_script(&script, &mut progress).await?;
        if self.image_exists().await? {
            Ok(ImageStatus::Built)
        } else {
            Err(ProviderError::NotFound {
                cloud: Cloud::Docker,
                what: format!(
                    "image {} after {} reported success",
                    self.config.image,
                    script.display()
                ),
            })
        }
    }

    async fn image_exists(&self) -> Result<bool, ProviderError> {
        match self
            .docker
            .run(["image", "inspect", "--format", "{{.Id}}", self.config.image.as_str()])
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind == Kind::NoSuchImage => Ok(false),
            Err(e) => Err(e.into_error(None)),
        }
    }

    async fn run_build_script(
        &self,
        script: &Path,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), ProviderError> {
        let mut child = Command::new("sh")
            .arg(script)
            .env("BROKER_NODE_IMAGE", &self.config.image)
            .env("DOCKER", &self.config.docker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| other(format!("cannot run {}: {e}", script.display())))?;
        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        let mut keep = |line: String, progress: &mut (dyn FnMut(&str) + Send)| {
            progress(&line);
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        };
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(other("the build script's output pipes are missing"));
        };
        let mut stdout = BufReader::new(stdout).lines();
        let mut stderr = BufReader::new(stderr).lines();
        let read_all = async {
            let (mut out_open, mut err_open) = (true, true);
            while out_open || err_open {
                tokio::select! {
                    line = stdout.next_line(), if out_open => match line {
                        Ok(Some(line)) => keep(line, progress),
                        _ => out_open = false,
                    },
                    line = stderr.next_line(), if err_open => match line {
                        Ok(Some(line)) => keep(line, progress),
                        _ => err_open = false,
                    },
                }
            }
            child.wait().await
        };
        let status = match tokio::time::timeout(BUILD_TIMEOUT, read_all).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return Err(other(format!("waiting for {}: {e}", script.display()))),
            Err(_) => {
                return Err(ProviderError::Transient {
                    cloud: Cloud::Docker,
                    attempts: 1,
                    source: format!(
                        "{} did not finish within {} s",
                        script.display(),
                        BUILD_TIMEOUT.as_secs()
                    )
                    .into(),
                });
            }
        };
        if status.success() {
            return Ok(());
        }
        let output = Vec::from(tail).join("\n");
        if status.code() == Some(EXIT_NO_DEBOOTSTRAP) {
            // Not a credential problem, but the same outcome: this cloud cannot work here until
            // someone installs something, and the hint says what.
            return Err(ProviderError::Auth {
                cloud: Cloud::Docker,
                message: format!(
                    "cannot build the node image {}: debootstrap is missing",
                    self.config.image
                ),
                hint: "install debootstrap (`apt-get install -y debootstrap`), or set \
                       BROKER_NODE_FROM_REGISTRY=1 where Docker Hub is reachable"
                    .into(),
            });
        }
        Err(other(format!(
            "building the node image {} with {} failed ({status}):\n{output}",
            self.config.image,
            script.display()
        )))
    }
}

fn other(message: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ProviderError {
    ProviderError::Other {
        cloud: Cloud::Docker,
        source: message.into(),
    }
}

/// Writes the compiled-in build files to a fresh temporary directory.
fn extract_build_files() -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("broker-node-build.").tempdir()?;
    for (name, text) in BUILD_FILES {
        std::fs::write(dir.path().join(name), text)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_files_are_embedded_and_extracted() {
        let dir = extract_build_files().unwrap();
        for (name, _) in BUILD_FILES {
            assert!(dir.path().join(name).is_file(), "{name}");
        }
        let script = std::fs::read_to_string(dir.path().join("build.sh")).unwrap();
        assert!(script.contains("debootstrap --variant=minbase"));
    }
}
