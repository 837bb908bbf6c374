//! What the AWS provider needs to know before it makes a call: where EC2 is, which credentials,
//! which regions, and who may reach the nodes' SSH port.
//!
//! Credentials are *not* configured here in the normal case: aws-config's default chain
//! (environment, `~/.aws` profiles including SSO and `credential_process`, web identity, ECS,
//! IMDS) finds them, exactly as the AWS CLI would. [`AwsConfig::credentials`] exists for callers
//! that already hold keys (and for tests against an emulator).

use std::fmt;
use std::time::Duration;

/// Environment variables read by [`AwsConfig::from_env`]. aws-config reads its own (`AWS_PROFILE`,
/// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...) on top of these.
pub mod env {
    /// An EC2 and STS endpoint to use instead of AWS's, e.g. `http://127.0.0.1:5000` for moto.
    /// Every region's calls go to it.
    pub const ENDPOINT: &str = "BROKER_AWS_ENDPOINT";
    /// The source CIDR allowed to reach TCP 22 on the nodes. Default `0.0.0.0/0`.
    pub const SSH_CIDR: &str = "BROKER_AWS_SSH_CIDR";
    /// The `~/.aws` profile to use; without it aws-config's own `AWS_PROFILE` (or `default`) applies.
    pub const PROFILE: &str = "BROKER_AWS_PROFILE";
    /// Comma-separated regions that `nodes`, `terminate` and `sweep` search. Default: every
    /// region enabled for the account (`DescribeRegions`).
    pub const REGIONS: &str = "BROKER_AWS_REGIONS";
}

/// The security group for the default, open CIDR. Groups for other CIDRs get a suffix (see
/// [`AwsConfig::security_group_name`]).
pub const SECURITY_GROUP: &str = "broker-ssh";

/// Access keys given explicitly, bypassing the default credential chain.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`; never printed.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN` of temporary credentials; never printed.
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// How to reach EC2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// Send every call here instead of AWS (an emulator such as moto). `BROKER_AWS_ENDPOINT`.
    pub endpoint: Option<String>,
    /// The source CIDR allowed to reach TCP 22; nothing else is opened. `BROKER_AWS_SSH_CIDR`.
    pub ssh_cidr: String,
    /// A `~/.aws` profile name. `BROKER_AWS_PROFILE`.
    pub profile: Option<String>,
    /// The region for calls that are not about one region (`check`, `DescribeRegions`). Default:
    /// aws-config's region chain (`AWS_REGION`, the profile's `region`), else `us-east-1`.
    pub home_region: Option<String>,
    /// The regions searched by `nodes`, `terminate` and `sweep`; `None` means every region
    /// enabled for the account. `BROKER_AWS_REGIONS`.
    pub regions: Option<Vec<String>>,
    /// Keys to use instead of the default credential chain.
    pub credentials: Option<StaticCredentials>,
    /// How long `launch`, `stop` and `start` wait for instances to reach their state.
    pub wait_timeout: Duration,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            ssh_cidr: "0.0.0.0/0".to_owned(),
            profile: None,
            home_region: None,
            regions: None,
            credentials: None,
            wait_timeout: Duration::from_mins(10),
        }
    }
}

impl AwsConfig {
    /// The defaults, overridden by the variables of [`mod@env`]; empty values count as unset.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any source of variables, so that tests need not touch the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let defaults = Self::default();
        Self {
            endpoint: get(env::ENDPOINT),
            ssh_cidr: get(env::SSH_CIDR).unwrap_or(defaults.ssh_cidr),
            profile: get(env::PROFILE),
            regions: get(env::REGIONS).map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
            ..defaults
        }
    }

    /// The name of the security group that opens SSH to [`Self::ssh_cidr`].
    ///
    /// Each CIDR gets its own group holding exactly one rule, so changing the CIDR never edits a
    /// group that running clusters of another configuration depend on, and a group never holds
    /// more than what its name promises.
    pub fn security_group_name(&self) -> String {
        if self.ssh_cidr == "0.0.0.0/0" {
            SECURITY_GROUP.to_owned()
        } else {
            format!("{SECURITY_GROUP}-{}", crate::tags::short_hash(&self.ssh_cidr))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn env_overrides_defaults_and_ignores_empty_values() {
        let vars = HashMap::from([
            (env::ENDPOINT, "http://127.0.0.1:5000"),
            (env::SSH_CIDR, " 203.0.113.0/24 "),
            (env::PROFILE, ""),
            (env::REGIONS, "us-east-1, eu-west-1,,"),
        ]);
        let config = AwsConfig::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned()));
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(config.ssh_cidr, "203.0.113.0/24");
        assert_eq!(config.profile, None);
        assert_eq!(
            config.regions,
            Some(vec!["us-east-1".to_owned(), "eu-west-1".to_owned()])
        );
        assert_eq!(AwsConfig::from_lookup(|_| None), AwsConfig::default());
    }

    #[test]
    fn each_cidr_has_its_own_group() {
        let open = AwsConfig::default();
        assert_eq!(open.security_group_name(), "broker-ssh");
        let office = AwsConfig {
            ssh_cidr: "203.0.113.0/24".into(),
            ..AwsConfig::default()
        };
        let name = office.security_group_name();
        assert!(
            name.starts_with("broker-ssh-") && name.len() == "broker-ssh-".len() + 8,
            "{name}"
        );
        assert_ne!(name, open.security_group_name());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let config = AwsConfig {
            credentials: Some(StaticCredentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI-secret".into(),
                session_token: Some("session-secret".into()),
            }),
            ..AwsConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(!shown.contains("wJalr") && !shown.contains("session-secret"), "{shown}");
    }
}
