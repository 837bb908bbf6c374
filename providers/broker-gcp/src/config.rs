//! [`GceConfig`]: where Compute Engine is, which credentials to use, and how nodes look.
//!
//! Every environment variable the provider reads is read here, in [`GceConfig::from_env`], and
//! nowhere else; the rest of the crate sees only the resolved fields, which is also what lets the
//! tests point every endpoint at a fake without touching the process environment.

use std::path::PathBuf;
use std::time::Duration;

/// Compute Engine v1, as Google serves it.
pub const DEFAULT_ENDPOINT: &str = "https://compute.googleapis.com/compute/v1";
/// Google's OAuth 2.0 token endpoint, for key files that do not name one.
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The metadata server every GCE VM (and GKE pod, Cloud Run service) can reach.
pub const DEFAULT_METADATA_URL: &str = "http://metadata.google.internal";

/// The environment variables [`GceConfig::from_env`] reads, in one place for the docs.
pub mod env {
    /// The project to create instances in (first of the three project variables).
    pub const BROKER_GCP_PROJECT: &str = "BROKER_GCP_PROJECT";
    /// Google's own project variable, honoured after [`BROKER_GCP_PROJECT`].
    pub const GOOGLE_CLOUD_PROJECT: &str = "GOOGLE_CLOUD_PROJECT";
    /// gcloud's project variable, honoured last.
    pub const CLOUDSDK_CORE_PROJECT: &str = "CLOUDSDK_CORE_PROJECT";
    /// An explicit service-account key file, tried before everything else.
    pub const BROKER_GCP_CREDENTIALS: &str = "BROKER_GCP_CREDENTIALS";
    /// Google's standard key-file variable (a `service_account` or `authorized_user` file).
    pub const GOOGLE_APPLICATION_CREDENTIALS: &str = "GOOGLE_APPLICATION_CREDENTIALS";
    /// Moves gcloud's configuration directory (and so the ADC file), as gcloud itself does.
    pub const CLOUDSDK_CONFIG: &str = "CLOUDSDK_CONFIG";
    /// The Compute base URL, e.g. `http://127.0.0.1:PORT/compute/v1` for a fake.
    pub const BROKER_GCP_ENDPOINT: &str = "BROKER_GCP_ENDPOINT";
    /// The OAuth token endpoint, overriding the one named in key files.
    pub const BROKER_GCP_TOKEN_URL: &str = "BROKER_GCP_TOKEN_URL";
    /// The metadata server's base URL (`http://HOST[:PORT]`).
    pub const BROKER_GCP_METADATA_URL: &str = "BROKER_GCP_METADATA_URL";
    /// The metadata host as Google's client libraries spell it (`HOST[:PORT]`), used when
    /// [`BROKER_GCP_METADATA_URL`] is not set.
    pub const GCE_METADATA_HOST: &str = "GCE_METADATA_HOST";
    /// `0` turns the metadata-server fallback off (useful off GCE, where it only adds a timeout).
    pub const BROKER_GCP_METADATA: &str = "BROKER_GCP_METADATA";
    /// The login user whose key goes into `ssh-keys` (default `broker`).
    pub const BROKER_GCP_SSH_USER: &str = "BROKER_GCP_SSH_USER";
    /// Comma-separated CIDRs allowed to reach port 22 (default `0.0.0.0/0`).
    pub const BROKER_GCP_SSH_SOURCE_RANGES: &str = "BROKER_GCP_SSH_SOURCE_RANGES";
}

/// How to reach Compute Engine and what to create there.
///
/// Secrets are not held here, only where to find them: the key files are read when a token is
/// first needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GceConfig {
    /// The project; `None` asks the credentials (a key file's `project_id`) and then the
    /// metadata server.
    pub project: Option<String>,
    /// An explicit service-account key file, tried first.
    pub credentials_file: Option<PathBuf>,
    /// The file `GOOGLE_APPLICATION_CREDENTIALS` names, tried second.
    pub application_credentials: Option<PathBuf>,
    /// gcloud's Application Default Credentials file, tried third when it exists
    /// (`~/.config/gcloud/application_default_credentials.json`).
    pub adc_file: Option<PathBuf>,
    /// Whether to fall back to the metadata server when no file gave credentials.
    pub use_metadata_server: bool,
    /// Compute base URL, without a trailing `/` ([`DEFAULT_ENDPOINT`]).
    pub endpoint: String,
    /// Token endpoint for every credential type; `None` uses the key file's `token_uri`, else
    /// [`DEFAULT_TOKEN_URL`].
    pub token_url: Option<String>,
    /// Metadata server base URL ([`DEFAULT_METADATA_URL`]).
    pub metadata_url: String,
    /// The user the nodes' `ssh-keys` entry creates and broker logs in as.
    pub ssh_user: String,
    /// Sources allowed to reach port 22 of broker's nodes.
    pub ssh_source_ranges: Vec<String>,
    /// The firewall rule broker creates for SSH.
    pub firewall_rule: String,
    /// The network tag that rule targets; every node carries it.
    pub ssh_tag: String,
    /// The VPC network, as a path under the project (`global/networks/default`).
    pub network: String,
    /// Image families tried, in order, for machines with GPUs (`project/family`).
    pub gpu_image_families: Vec<String>,
    /// Image families tried, in order, for CPU-only machines (`project/family`).
    pub cpu_image_families: Vec<String>,
    /// How long a launch, stop or terminate waits for its operations and for `RUNNING`.
    pub operation_timeout: Duration,
    /// Pause between status polls (operations waits are server-side long polls already).
    pub poll_interval: Duration,
    /// Attempts of one idempotent call that meets transient failures (429, 5xx, resets).
    pub max_attempts: u32,
}

impl Default for GceConfig {
    fn default() -> Self {
        Self {
            project: None,
            credentials_file: None,
            application_credentials: None,
            adc_file: None,
            use_metadata_server: true,
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            token_url: None,
            metadata_url: DEFAULT_METADATA_URL.to_owned(),
            ssh_user: "broker".to_owned(),
            ssh_source_ranges: vec!["0.0.0.0/0".to_owned()],
            firewall_rule: "broker-allow-ssh".to_owned(),
            ssh_tag: "broker-ssh".to_owned(),
            network: "global/networks/default".to_owned(),
            // Retired families fail `images.getFromFamily` with 404; the next one is tried.
            gpu_image_families: vec![
                "deeplearning-platform-release/common-cu128-ubuntu-2204-nvidia-570".to_owned(),
                "deeplearning-platform-release/common-cu129-ubuntu-2204-nvidia-580".to_owned(),
                "deeplearning-platform-release/common-cu124-debian-11-py310".to_owned(),
            ],
            cpu_image_families: vec!["debian-cloud/debian-12".to_owned()],
            operation_timeout: Duration::from_mins(15),
            poll_interval: Duration::from_secs(2),
            max_attempts: 5,
        }
    }
}

impl GceConfig {
    /// The defaults, overridden by the environment:
    ///
    /// | variable | field |
    /// |---|---|
    /// | `BROKER_GCP_PROJECT`, else `GOOGLE_CLOUD_PROJECT`, else `CLOUDSDK_CORE_PROJECT` | `project` |
    /// | `BROKER_GCP_CREDENTIALS` | `credentials_file` |
    /// | `GOOGLE_APPLICATION_CREDENTIALS` | `application_credentials` |
    /// | `CLOUDSDK_CONFIG` (else `$HOME/.config/gcloud`) + `/application_default_credentials.json` | `adc_file` |
    /// | `BROKER_GCP_METADATA=0` | `use_metadata_server = false` |
    /// | `BROKER_GCP_ENDPOINT` | `endpoint` |
    /// | `BROKER_GCP_TOKEN_URL` | `token_url` |
    /// | `BROKER_GCP_METADATA_URL`, else `http://$GCE_METADATA_HOST` | `metadata_url` |
    /// | `BROKER_GCP_SSH_USER` | `ssh_user` |
    /// | `BROKER_GCP_SSH_SOURCE_RANGES` (comma-separated) | `ssh_source_ranges` |
    ///
    /// Empty variables count as unset.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any variable source, so it can be tested without touching the
    /// process environment.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut config = Self {
            project: var(env::BROKER_GCP_PROJECT)
                .or_else(|| var(env::GOOGLE_CLOUD_PROJECT))
                .or_else(|| var(env::CLOUDSDK_CORE_PROJECT)),
            credentials_file: var(env::BROKER_GCP_CREDENTIALS).map(PathBuf::from),
            application_credentials: var(env::GOOGLE_APPLICATION_CREDENTIALS).map(PathBuf::from),
            adc_file: var(env::CLOUDSDK_CONFIG)
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".config").join("gcloud")))
                .map(|dir| dir.join("application_default_credentials.json")),
            token_url: var(env::BROKER_GCP_TOKEN_URL),
            ..Self::default()
        };
        if let Some(endpoint) = var(env::BROKER_GCP_ENDPOINT) {
            endpoint.trim_end_matches('/').clone_into(&mut config.endpoint);
        }
        if let Some(url) = var(env::BROKER_GCP_METADATA_URL) {
            url.trim_end_matches('/').clone_into(&mut config.metadata_url);
        } else if let Some(host) = var(env::GCE_METADATA_HOST) {
            config.metadata_url = format!("http://{host}");
        }
        if let Some(flag) = var(env::BROKER_GCP_METADATA) {
            config.use_metadata_server = !matches!(flag.as_str(), "0" | "false" | "no" | "off");
        }
        if let Some(user) = var(env::BROKER_GCP_SSH_USER) {
            config.ssh_user = user;
        }
        if let Some(ranges) = var(env::BROKER_GCP_SSH_SOURCE_RANGES) {
            config.ssh_source_ranges = ranges
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect();
        }
        config
    }

    /// The compute base URL without a trailing slash.
    pub(crate) fn endpoint(&self) -> &str {
        self.endpoint.trim_end_matches('/')
    }
}

/// Why a URL may not carry credentials: plain HTTP is for loopback and the metadata server only.
pub(crate) fn insecure_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    !matches!(host, "127.0.0.1" | "localhost" | "[::1]") && !host.starts_with("127.")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> GceConfig {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        GceConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn project_variables_apply_in_order() {
        assert_eq!(from(&[]).project, None);
        assert_eq!(from(&[("CLOUDSDK_CORE_PROJECT", "c")]).project.as_deref(), Some("c"));
        assert_eq!(
            from(&[("CLOUDSDK_CORE_PROJECT", "c"), ("GOOGLE_CLOUD_PROJECT", "g")])
                .project
                .as_deref(),
            Some("g")
        );
        assert_eq!(
            from(&[("GOOGLE_CLOUD_PROJECT", "g"), ("BROKER_GCP_PROJECT", "b")])
                .project
                .as_deref(),
            Some("b")
        );
        assert_eq!(from(&[("BROKER_GCP_PROJECT", " ")]).project, None, "blank is unset");
    }

    #[test]
    fn endpoints_and_files_come_from_the_environment() {
        let config = from(&[
            ("BROKER_GCP_ENDPOINT", "http://127.0.0.1:9/compute/v1/"),
            ("BROKER_GCP_TOKEN_URL", "http://127.0.0.1:9/token"),
            ("GCE_METADATA_HOST", "127.0.0.1:9"),
            ("GOOGLE_APPLICATION_CREDENTIALS", "/k.json"),
            ("HOME", "/home/u"),
            ("BROKER_GCP_METADATA", "0"),
            ("BROKER_GCP_SSH_SOURCE_RANGES", "10.0.0.0/8, 192.168.0.0/16"),
        ]);
        assert_eq!(config.endpoint(), "http://127.0.0.1:9/compute/v1");
        assert_eq!(config.token_url.as_deref(), Some("http://127.0.0.1:9/token"));
        assert_eq!(config.metadata_url, "http://127.0.0.1:9");
        assert_eq!(config.application_credentials, Some(PathBuf::from("/k.json")));
        assert_eq!(
            config.adc_file,
            Some(PathBuf::from(
                "/home/u/.config/gcloud/application_default_credentials.json"
            ))
        );
        assert!(!config.use_metadata_server);
        assert_eq!(config.ssh_source_ranges, ["10.0.0.0/8", "192.168.0.0/16"]);
        let moved = from(&[("HOME", "/home/u"), ("CLOUDSDK_CONFIG", "/etc/gc")]);
        assert_eq!(
            moved.adc_file,
            Some(PathBuf::from("/etc/gc/application_default_credentials.json"))
        );
        assert_eq!(
            from(&[("BROKER_GCP_METADATA_URL", "http://127.0.0.1:7/")]).metadata_url,
            "http://127.0.0.1:7"
        );
    }

    #[test]
    fn plain_http_is_for_loopback_only() {
        assert!(!insecure_url("https://oauth2.googleapis.com/token"));
        assert!(!insecure_url("http://127.0.0.1:8080/token"));
        assert!(!insecure_url("http://localhost/compute/v1"));
        assert!(!insecure_url("http://[::1]:80/x"));
        assert!(insecure_url("http://example.com/token"));
        assert!(insecure_url("http://10.0.0.1:80/token"));
    }
}
