//! Errors of the fake itself (starting it, finding the discovery document), as opposed to the
//! Google-shaped HTTP errors it serves, which live in `envelope.rs`.

use std::path::PathBuf;

/// Why [`crate::FakeGce::start`] or [`crate::discovery_document`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeError {
    /// The discovery document is missing and `fetch-discovery.sh` could not produce it.
    #[error(
        "the compute v1 discovery document is missing at `{path}` and fetching it failed: {reason}\n\
         hint: run `{script}` (needs python3 with pip and access to PyPI), or point \
         `BROKER_GCE_DISCOVERY` at a copy of compute.v1.json"
    )]
    Fetch {
        /// Where the document was expected.
        path: PathBuf,
        /// The script that fetches it.
        script: PathBuf,
        /// What went wrong, with the script's stderr when it ran.
        reason: String,
    },
    /// The discovery document exists but is not a compute v1 discovery document.
    #[error("`{path}` is not a usable compute v1 discovery document: {reason}")]
    Discovery {
        /// The file that was read.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading a file or binding the listening socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the file or address.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl FakeError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
