//! The user's settings file, `$BROKER_HOME/config.yaml`: how to reach each cloud's nodes.
//!
//! Keys follow SkyPilot's `~/.sky/config.yaml` where the two overlap, so a user's knowledge
//! carries over:
//!
//! ```yaml
//! allowed_clouds: [aws, docker]        # launch considers only these (default: all enabled)
//! aws:
//!   ssh_user: ubuntu                   # login user on the nodes
//!   ssh_proxy_command: ssh -W %h:%p bastion.example.com
//! ```
//!
//! A missing file means defaults. A file that cannot be read is an error with its line and
//! column: settings silently ignored would send a job somewhere the user did not mean.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use broker_provider::Cloud;
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::vocabulary::closest;

/// Per-cloud keys broker reads.
const CLOUD_KEYS: &[&str] = &["ssh_user", "ssh_proxy_command"];

/// How to log in to one cloud's nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudSettings {
    /// The login user; the cloud's default ([`default_ssh_user`]) when `None`.
    pub ssh_user: Option<String>,
    /// A `ProxyCommand` (ssh syntax: `%h`, `%p`, `%r` expand) to reach the nodes through.
    pub ssh_proxy_command: Option<String>,
}

/// The whole settings file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Clouds launch may use; `None` allows every cloud with working credentials.
    pub allowed_clouds: Option<Vec<Cloud>>,
    /// Settings per cloud.
    pub clouds: BTreeMap<Cloud, CloudSettings>,
}

/// The user the images broker boots by default log in with.
pub fn default_ssh_user(cloud: Cloud) -> &'static str {
    match cloud {
        // The Deep Learning AMIs are Ubuntu.
        Cloud::Aws => "ubuntu",
        // GCE creates whatever user the `ssh-keys` metadata names; broker names this one.
        Cloud::Gcp => "broker",
        _ => "root",
    }
}

impl Config {
    /// The settings for `cloud` (defaults when the file says nothing about it).
    pub fn cloud(&self, cloud: Cloud) -> CloudSettings {
        self.clouds.get(&cloud).cloned().unwrap_or_default()
    }

    /// The login user for `cloud`'s nodes.
    pub fn ssh_user(&self, cloud: Cloud) -> String {
        self.cloud(cloud)
            .ssh_user
            .unwrap_or_else(|| default_ssh_user(cloud).to_owned())
    }

    /// Whether launch may use `cloud`.
    pub fn allows(&self, cloud: Cloud) -> bool {
        self.allowed_clouds.as_ref().is_none_or(|list| list.contains(&cloud))
    }

    /// Reads `path`; defaults when it does not exist.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(ConfigError {
                path: path.to_path_buf(),
                line: 0,
                col: 0,
                message: format!("cannot read it: {e}"),
            }),
        }
    }

    /// Parses the text of the settings file found at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let fail = |node: Option<&MarkedYaml<'_>>, message: String| {
            let (line, col) = node.map_or((1, 1), |n| (n.span.start.line(), n.span.start.col() + 1));
            ConfigError {
                path: path.to_path_buf(),
                line,
                col,
                message,
            }
        };
        let docs = MarkedYaml::load_from_str(text).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: e.marker().line(),
            col: e.marker().col() + 1,
            message: e.info().to_owned(),
        })?;
        let mut config = Self::default();
        let Some(doc) = docs.first() else {
            return Ok(config);
        };
        let map = match &doc.data {
            YamlData::Mapping(map) => map,
            YamlData::Value(Scalar::Null) => return Ok(config),
            _ => return Err(fail(Some(doc), "the settings file must be a mapping of keys".into())),
        };
        for (key, value) in map {
            let Some(name) = key.data.as_str() else {
                return Err(fail(Some(key), "keys must be strings".into()));
            };
            if name == "allowed_clouds" {
                let YamlData::Sequence(items) = &value.data else {
                    return Err(fail(
                        Some(value),
                        "`allowed_clouds` must be a list such as [aws, gcp]".into(),
                    ));
                };
                let mut clouds = Vec::new();
                for item in items {
                    clouds.push(parse_cloud(item).map_err(|m| fail(Some(item), m))?);
                }
                config.allowed_clouds = Some(clouds);
                continue;
            }
            let cloud = parse_cloud(key).map_err(|m| {
                fail(
                    Some(key),
                    format!("{m} (top-level keys are `allowed_clouds` and cloud names)"),
                )
            })?;
            config
                .clouds
                .insert(cloud, parse_cloud_settings(value).map_err(|(n, m)| fail(n, m))?);
        }
        Ok(config)
    }
}

fn parse_cloud(node: &MarkedYaml<'_>) -> Result<Cloud, String> {
    let name = node.data.as_str().unwrap_or_default();
    name.parse::<Cloud>().map_err(|_| {
        let known: Vec<&str> = Cloud::ALL.iter().map(|c| c.as_str()).collect();
        match closest(name, known.iter().copied()).first() {
            Some(guess) => format!("unknown cloud `{name}`; did you mean `{guess}`?"),
            None => format!("unknown cloud `{name}`; known: {}", known.join(", ")),
        }
    })
}

type Located<'n, 'i> = (Option<&'n MarkedYaml<'i>>, String);

fn parse_cloud_settings<'n, 'i>(node: &'n MarkedYaml<'i>) -> Result<CloudSettings, Located<'n, 'i>> {
    let mut settings = CloudSettings::default();
    let map = match &node.data {
        YamlData::Mapping(map) => map,
        YamlData::Value(Scalar::Null) => return Ok(settings),
        _ => {
            return Err((
                Some(node),
                "a cloud's settings must be a mapping such as `ssh_user: ubuntu`".into(),
            ));
        }
    };
    for (key, value) in map {
        let name = key.data.as_str().unwrap_or_default();
        let text = || match &value.data {
            YamlData::Value(Scalar::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            _ => Err((Some(value), format!("`{name}` must be a non-empty string"))),
        };
        match name {
            "ssh_user" => settings.ssh_user = Some(text()?),
            "ssh_proxy_command" => {
                let command = text()?;
                if command.contains(['\n', '\r']) {
                    return Err((Some(value), "`ssh_proxy_command` must be one line".into()));
                }
                settings.ssh_proxy_command = Some(command);
            }
            _ => {
                let message = match closest(name, CLOUD_KEYS.iter().copied()).first() {
                    Some(guess) => format!("unknown setting `{name}`; did you mean `{guess}`?"),
                    None => format!("unknown setting `{name}`; known: {}", CLOUD_KEYS.join(", ")),
                };
                return Err((Some(key), message));
            }
        }
    }
    Ok(settings)
}

/// A settings file that cannot be used, located like a compiler error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{col}: {message}", path.display())]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0 when the file could not be read at all).
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

/// Where the settings file of broker home `home` is.
pub fn path(home: &Path) -> PathBuf {
    home.join("config.yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("config.yaml"), text)
    }

    #[test]
    fn reads_per_cloud_ssh_settings_and_allowed_clouds() {
        let config =
            parse("allowed_clouds: [aws, docker]\naws:\n  ssh_user: root\n  ssh_proxy_command: nc 127.0.0.1 %p\n")
                .unwrap();
        assert_eq!(config.ssh_user(Cloud::Aws), "root");
        assert_eq!(config.ssh_user(Cloud::Gcp), "broker");
        assert_eq!(
            config.cloud(Cloud::Aws).ssh_proxy_command.as_deref(),
            Some("nc 127.0.0.1 %p")
        );
        assert!(config.allows(Cloud::Docker) && !config.allows(Cloud::Gcp));
    }

    #[test]
    fn empty_or_missing_file_means_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(parse("# nothing\n").unwrap(), Config::default());
        let missing = Config::load(Path::new("/nonexistent/broker/config.yaml")).unwrap();
        assert!(missing.allows(Cloud::Aws));
    }

    #[test]
    fn typos_are_located_and_get_a_suggestion() {
        let err = parse("aws:\n  ssh_usr: root\n").unwrap_err();
        assert_eq!((err.line, err.col), (2, 3));
        assert!(err.message.contains("did you mean `ssh_user`"), "{err}");
        let err = parse("awz:\n  ssh_user: root\n").unwrap_err();
        assert!(err.message.contains("did you mean `aws`"), "{err}");
        let err = parse("allowed_clouds: [gpc]\n").unwrap_err();
        assert!(err.message.contains("did you mean `gcp`"), "{err}");
        assert!(err.to_string().starts_with("config.yaml:1:"), "{err}");
    }

    #[test]
    fn wrong_types_are_refused() {
        assert!(parse("aws:\n  ssh_user: [a]\n").is_err());
        assert!(parse("allowed_clouds: aws\n").is_err());
        assert!(parse("- aws\n").is_err());
        assert!(parse("aws: [1\n").is_err());
    }
}
