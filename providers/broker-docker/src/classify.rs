//! Turns a failed `docker` CLI call into a classified [`ProviderError`].
//!
//! The Docker CLI reports failures only as an exit status and English text on stderr, so this is
//! the one place that reads that text: the rest of the crate branches on [`Kind`]. Needles are
//! matched lower-cased, and a row matches only when all of its needles occur.

use std::fmt;
use std::io;
use std::path::Path;

use broker_provider::{Cloud, FailoverScope, LaunchSpec, ProviderError};

/// What a failed docker call means to broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The engine is not running or its socket is missing.
    DaemonUnreachable,
    /// The engine's socket refused us.
    PermissionDenied,
    /// The `docker` program itself is not installed.
    CliMissing,
    NoSuchContainer,
    NoSuchImage,
    NoSuchNetwork,
    /// A container of that name exists already.
    NameInUse,
    /// A network of that name exists already.
    NetworkExists,
    /// Another caller is removing the same container right now.
    RemovalInProgress,
    /// A network still has containers attached.
    ActiveEndpoints,
    /// The host's disk is full.
    NoSpace,
    /// The host has fewer CPUs or less memory than the size asks for.
    HostTooSmall,
    /// The engine has no address range left for another network.
    NoAddressPool,
    /// The command line or a name in it is malformed.
    BadRequest,
    /// A timeout or a race on a host port: worth repeating.
    Transient,
    Unknown,
}

/// `(needles that must all occur, meaning)`, first match wins: specific rows before general ones.
const TABLE: &[(&[&str], Kind)] = &[
    (&["cannot connect to the docker daemon"], Kind::DaemonUnreachable),
    (&["is the docker daemon running"], Kind::DaemonUnreachable),
    (
        &["permission denied while trying to connect to the docker"],
        Kind::PermissionDenied,
    ),
    (&["got permission denied", "docker"], Kind::PermissionDenied),
    (&["no space left on device"], Kind::NoSpace),
    (
        &["removal of container", "already in progress"],
        Kind::RemovalInProgress,
    ),
    (&["is already in use by container"], Kind::NameInUse),
    (&["network with name", "already exists"], Kind::NetworkExists),
    (&["has active endpoints"], Kind::ActiveEndpoints),
    (&["no such container"], Kind::NoSuchContainer),
    (&["no such image"], Kind::NoSuchImage),
    (&["unable to find image"], Kind::NoSuchImage),
    (&["pull access denied"], Kind::NoSuchImage),
    (&["no such network"], Kind::NoSuchNetwork),
    (&["network", "not found"], Kind::NoSuchNetwork),
    // `docker inspect` of several ids names what it could not find this way.
    (&["no such object"], Kind::NoSuchContainer),
    (&["range of cpus is from"], Kind::HostTooSmall),
    (&["minimum memory limit allowed"], Kind::HostTooSmall),
    (&["cannot allocate memory"], Kind::HostTooSmall),
    (&["could not find an available, non-overlapping"], Kind::NoAddressPool),
    (&["port is already allocated"], Kind::Transient),
    (&["address already in use"], Kind::Transient),
    (&["i/o timeout"], Kind::Transient),
    (&["context deadline exceeded"], Kind::Transient),
    (&["tls handshake timeout"], Kind::Transient),
    (&["connection reset by peer"], Kind::Transient),
    (&["invalid reference format"], Kind::BadRequest),
    (&["unknown flag"], Kind::BadRequest),
    (&["invalid container name"], Kind::BadRequest),
    (&["invalid argument"], Kind::BadRequest),
    (&["invalid value"], Kind::BadRequest),
];

/// What stderr of a failed call says.
pub(crate) fn classify(stderr: &str) -> Kind {
    let text = stderr.to_lowercase();
    TABLE
        .iter()
        .find(|(needles, _)| needles.iter().all(|n| text.contains(n)))
        .map_or(Kind::Unknown, |(_, kind)| *kind)
}

/// A docker call that did not succeed, with enough context to explain it.
#[derive(Debug, Clone)]
pub(crate) struct CliFailure {
    /// The subcommand, for messages (`run`, `network rm`).
    pub(crate) command: String,
    /// The exit status, or why there is none.
    pub(crate) status: String,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) kind: Kind,
}

impl fmt::Display for CliFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`docker {}` failed ({}): {}",
            self.command,
            self.status,
            self.stderr.trim()
        )
    }
}

impl std::error::Error for CliFailure {}

impl CliFailure {
    /// A call that ran and exited non-zero.
    pub(crate) fn exited(command: String, status: String, stdout: String, stderr: String) -> Self {
        let kind = classify(&stderr);
        Self {
            command,
            status,
            stdout,
            stderr,
            kind,
        }
    }

    /// A call that could not be started at all.
    pub(crate) fn spawn(command: String, docker: &Path, err: &io::Error) -> Self {
        let kind = if err.kind() == io::ErrorKind::NotFound {
            Kind::CliMissing
        } else {
            Kind::Unknown
        };
        Self {
            command,
            status: "not started".into(),
            stdout: String::new(),
            stderr: format!("cannot run {}: {err}", docker.display()),
            kind,
        }
    }

    /// A call that did not finish in time (it is killed).
    pub(crate) fn timed_out(command: String, secs: u64) -> Self {
        Self {
            command,
            status: "killed".into(),
            stdout: String::new(),
            stderr: format!("no answer within {secs} s"),
            kind: Kind::Transient,
        }
    }

    /// The classified error; `launch` gives the place and size for capacity errors.
    pub(crate) fn into_error(self, launch: Option<&LaunchSpec>) -> ProviderError {
        let cloud = Cloud::Docker;
        let message = self.stderr.trim().to_owned();
        let auth = |hint: &str| ProviderError::Auth {
            cloud,
            message: message.clone(),
            hint: hint.to_owned(),
        };
        match self.kind {
            Kind::DaemonUnreachable => {
                auth("start the Docker engine (`systemctl start docker`, or run `dockerd` as root)")
            }
            Kind::PermissionDenied => {
                auth("add your user to the docker group (`sudo usermod -aG docker $USER`, then log in again)")
            }
            Kind::CliMissing => auth("install Docker (`apt-get install docker.io`) or set the docker CLI path"),
            Kind::NoSuchImage => ProviderError::NotFound {
                cloud,
                what: format!(
                    "{message} (build the node image: docker/node/build.sh, or DockerProvider::ensure_image)"
                ),
            },
            Kind::NoSuchContainer | Kind::NoSuchNetwork => ProviderError::NotFound { cloud, what: message },
            Kind::NoSpace | Kind::HostTooSmall => match launch {
                Some(spec) => ProviderError::Capacity {
                    cloud,
                    location: spec.location.clone(),
                    instance_type: spec.instance_type.clone(),
                    message,
                },
                None => ProviderError::Other {
                    cloud,
                    source: Box::new(self),
                },
            },
            Kind::NoAddressPool => ProviderError::Quota {
                cloud,
                quota: "docker network address pools".into(),
                scope: FailoverScope::Cloud,
                message,
            },
            Kind::BadRequest => ProviderError::Invalid { cloud, message },
            Kind::Transient => ProviderError::Transient {
                cloud,
                attempts: 1,
                source: Box::new(self),
            },
            Kind::NameInUse | Kind::NetworkExists | Kind::RemovalInProgress | Kind::ActiveEndpoints | Kind::Unknown => {
                ProviderError::Other {
                    cloud,
                    source: Box::new(self),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_provider::ErrorClass;

    /// Real stderr texts of docker 20.10-28, and what they must mean.
    const CASES: &[(&str, Kind, ErrorClass)] = &[
        (
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
            Kind::DaemonUnreachable,
            ErrorClass::Auth,
        ),
        (
            "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: \
             Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.24/version\": dial unix /var/run/docker.sock: connect: \
             permission denied",
            Kind::PermissionDenied,
            ErrorClass::Auth,
        ),
        (
            "Got permission denied while trying to connect to the Docker daemon socket",
            Kind::PermissionDenied,
            ErrorClass::Auth,
        ),
        (
            "Error: No such container: 3f2a",
            Kind::NoSuchContainer,
            ErrorClass::NotFound,
        ),
        (
            "Error response from daemon: No such container: broker-a-0",
            Kind::NoSuchContainer,
            ErrorClass::NotFound,
        ),
        (
            "Error: No such object: 3f2a",
            Kind::NoSuchContainer,
            ErrorClass::NotFound,
        ),
        (
            "docker: Error response from daemon: No such image: broker-node:1.",
            Kind::NoSuchImage,
            ErrorClass::NotFound,
        ),
        (
            "Unable to find image 'broker-node:9' locally\ndocker: Error response from daemon: pull access denied",
            Kind::NoSuchImage,
            ErrorClass::NotFound,
        ),
        (
            "Error: No such image: broker-node:1",
            Kind::NoSuchImage,
            ErrorClass::NotFound,
        ),
        (
            "Error: No such network: broker-x",
            Kind::NoSuchNetwork,
            ErrorClass::NotFound,
        ),
        (
            "Error response from daemon: network broker-x not found",
            Kind::NoSuchNetwork,
            ErrorClass::NotFound,
        ),
        (
            "docker: Error response from daemon: Conflict. The container name \"/broker-a-0-1234abcd\" is already \
             in use by container \"9c1e\". You have to remove (or rename) that container to be able to reuse that \
             name.",
            Kind::NameInUse,
            ErrorClass::Other,
        ),
        (
            "Error response from daemon: network with name broker-a already exists",
            Kind::NetworkExists,
            ErrorClass::Other,
        ),
        (
            "Error response from daemon: removal of container 9c1e is already in progress",
            Kind::RemovalInProgress,
            ErrorClass::Other,
        ),
        (
            "Error response from daemon: error while removing network: network broker-a id 77 has active endpoints",
            Kind::ActiveEndpoints,
            ErrorClass::Other,
        ),
        (
            "docker: Error response from daemon: write /var/lib/docker/tmp/x: no space left on device.",
            Kind::NoSpace,
            ErrorClass::Capacity,
        ),
        (
            "docker: Error response from daemon: Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs \
             available.",
            Kind::HostTooSmall,
            ErrorClass::Capacity,
        ),
        (
            "docker: Error response from daemon: Minimum memory limit allowed is 6MB.",
            Kind::HostTooSmall,
            ErrorClass::Capacity,
        ),
        (
            "Error response from daemon: could not find an available, non-overlapping IPv4 address pool among the \
             defaults to assign to the network",
            Kind::NoAddressPool,
            ErrorClass::Quota,
        ),
        (
            "docker: Error response from daemon: driver failed programming external connectivity on endpoint x: \
             Bind for 127.0.0.1:32768 failed: port is already allocated.",
            Kind::Transient,
            ErrorClass::Transient,
        ),
        (
            "docker: invalid reference format: repository name must be lowercase.",
            Kind::BadRequest,
            ErrorClass::Invalid,
        ),
        ("unknown flag: --bogus", Kind::BadRequest, ErrorClass::Invalid),
        ("something nobody has seen before", Kind::Unknown, ErrorClass::Other),
    ];

    fn spec() -> LaunchSpec {
        let offer = broker_provider::Offer {
            cloud: Cloud::Docker,
            instance_type: "docker-cpu-1".into(),
            accelerator: None,
            vcpus: Some(1.0),
            memory_gib: Some(4.0),
            price: Some(0.0),
            spot_price: None,
            location: broker_provider::Location {
                region: "local".into(),
                zone: None,
            },
            arch: broker_provider::Arch::X86_64,
        };
        LaunchSpec::new(
            "c".parse().unwrap(),
            broker_provider::LaunchToken("t".into()),
            &offer,
            1,
            false,
        )
    }

    #[test]
    fn stderr_texts_map_to_kinds_and_classes() {
        let spec = spec();
        for (stderr, kind, class) in CASES {
            assert_eq!(classify(stderr), *kind, "{stderr}");
            let failure = CliFailure::exited("run".into(), "exit status: 125".into(), String::new(), (*stderr).into());
            assert_eq!(failure.into_error(Some(&spec)).class(), *class, "{stderr}");
        }
    }

    #[test]
    fn auth_errors_carry_a_hint() {
        let failure = CliFailure::exited(
            "version".into(),
            "exit status: 1".into(),
            String::new(),
            CASES[0].0.into(),
        );
        match failure.into_error(None) {
            ProviderError::Auth { hint, .. } => assert!(hint.contains("start the Docker engine"), "{hint}"),
            other => panic!("{other:?}"),
        }
        let missing = CliFailure::spawn(
            "version".into(),
            Path::new("/nonexistent/docker"),
            &io::Error::from(io::ErrorKind::NotFound),
        );
        assert_eq!(missing.kind, Kind::CliMissing);
        assert_eq!(missing.into_error(None).class(), ErrorClass::Auth);
    }

    #[test]
    fn timeouts_are_transient() {
        let failure = CliFailure::timed_out("run".into(), 5);
        assert_eq!(failure.into_error(None).class(), ErrorClass::Transient);
    }
}
