//! Command-line flags that override what a task file says (`--gpus H100:8`, `--cloud gcp`, ...).

// `TaskError`'s public shape is fixed by the CLI that renders it, and it is returned at most
// once per run, so its size costs nothing worth boxing it for.
#![allow(clippy::result_large_err)]

use std::path::Path;

use super::Task;
use super::error::TaskError;
use super::parse::{is_shell_name, parse_accelerator_spec, parse_amount, parse_task_with_env};
use crate::request::{AcceleratorRequest, Amount, Resources};
use crate::vocabulary::Vocabulary;

/// The override flags as given, unparsed, so errors can name the flag and quote the text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--gpus`: an accelerator spec such as `H100:8`.
    pub gpus: Option<String>,
    /// `--cloud`.
    pub cloud: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--zone`.
    pub zone: Option<String>,
    /// `--use-spot` / `--no-use-spot`.
    pub use_spot: Option<bool>,
    /// `--num-nodes`.
    pub num_nodes: Option<String>,
    /// `--cpus`: `8` or `8+`.
    pub cpus: Option<String>,
    /// `--memory`: `32` or `32+` (GiB).
    pub memory: Option<String>,
    /// `--instance-type`.
    pub instance_type: Option<String>,
    /// `--env`: `K=V`, or `K` to pass the local value of `K`.
    pub envs: Vec<String>,
}

/// A flag whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for `{flag}`: {message}")]
pub struct OverrideError {
    /// The flag as typed (`--gpus`).
    pub flag: &'static str,
    /// What is wrong with its value.
    pub message: String,
}

fn fail(flag: &'static str, message: impl Into<String>) -> OverrideError {
    OverrideError {
        flag,
        message: message.into(),
    }
}

impl Overrides {
    /// Whether no flag was given.
    pub fn is_empty(&self) -> bool {
        let Self {
            gpus,
            cloud,
            region,
            zone,
            use_spot,
            num_nodes,
            cpus,
            memory,
            instance_type,
            envs,
        } = self;
        gpus.is_none()
            && cloud.is_none()
            && region.is_none()
            && zone.is_none()
            && use_spot.is_none()
            && num_nodes.is_none()
            && cpus.is_none()
            && memory.is_none()
            && instance_type.is_none()
            && envs.is_empty()
    }

    /// Parses a task file, letting `--env K=V` (then the local environment) supply the
    /// `envs`/`secrets` the file leaves `null`. Use this rather than [`super::parse_task`] when
    /// overrides will be applied, or a `null` env given only with `--env` is reported missing.
    pub fn parse_task(&self, path: &Path, bytes: &[u8], vocab: &Vocabulary) -> Result<Task, TaskError> {
        parse_task_with_env(path, bytes, vocab, &|key| {
            self.env_value(key).or_else(|| std::env::var(key).ok())
        })
    }

    /// The value `--env` gives `key`, if any; the last flag for a key wins.
    fn env_value(&self, key: &str) -> Option<String> {
        self.envs.iter().rev().find_map(|entry| match entry.split_once('=') {
            Some((k, v)) if k == key => Some(v.to_owned()),
            None if entry == key => std::env::var(key).ok(),
            _ => None,
        })
    }

    /// Applies the flags to every option of `task`, then re-checks what the file alone could
    /// not get wrong: names against the new cloud and instance-type pins against new shapes.
    ///
    /// `--gpus` replaces the accelerator alternatives with one, so options that differed only
    /// in accelerator collapse. `--region` without `--zone` drops the file's zone, which
    /// belongs to the file's region.
    pub fn apply(&self, task: &mut Task, vocab: &Vocabulary) -> Result<(), OverrideError> {
        if let Some(text) = &self.num_nodes {
            task.num_nodes = parse_num_nodes(text).map_err(|m| fail("--num-nodes", m))?;
        }
        for entry in &self.envs {
            let (key, value) = env_entry(entry)?;
            // A key the file declares secret stays secret, so it is never printed.
            if let Some(secret) = task.secrets.get_mut(&key) {
                *secret = value;
            } else {
                task.envs.insert(key, value);
            }
        }
        let gpus = self.gpus.as_deref().map(|spec| accelerator(spec, vocab)).transpose()?;
        let cloud = self
            .cloud
            .as_deref()
            .map(|name| Vocabulary::cloud(name).map_err(|u| fail("--cloud", u.to_string())))
            .transpose()?;
        let cpus = amount(self.cpus.as_deref(), "--cpus")?;
        let memory = amount(self.memory.as_deref(), "--memory")?;
        // The flag to blame when an instance-type pin and the new shape disagree.
        let reshaping_flag = [
            (self.instance_type.is_some(), "--instance-type"),
            (gpus.is_some(), "--gpus"),
            (cpus.is_some(), "--cpus"),
            (memory.is_some(), "--memory"),
            (cloud.is_some(), "--cloud"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag));

        for option in &mut task.resources.options {
            if let Some(gpus) = &gpus {
                option.accelerator = Some(gpus.clone());
            }
            if let Some(cloud) = cloud {
                option.cloud = Some(cloud);
            }
            if let Some(region) = &self.region {
                option.region = Some(region.clone());
                if self.zone.is_none() {
                    option.zone = None;
                }
            }
            if let Some(zone) = &self.zone {
                option.zone = Some(zone.clone());
            }
            if let Some(use_spot) = self.use_spot {
                option.use_spot = use_spot;
            }
            if cpus.is_some() {
                option.cpus = cpus;
            }
            if memory.is_some() {
                option.memory = memory;
            }
            if let Some(instance_type) = &self.instance_type {
                option.instance_type = Some(instance_type.clone());
            }
            self.check(option, vocab)?;
            if let Some(flag) = reshaping_flag
                && let Some(why) = vocab.contradiction(option)
            {
                return Err(fail(flag, why));
            }
        }
        let mut unique: Vec<Resources> = Vec::new();
        for option in task.resources.options.drain(..) {
            if !unique.contains(&option) {
                unique.push(option);
            }
        }
        task.resources.options = unique;
        Ok(())
    }

    /// Checks the names an option ends up with, blaming the flag that changed them.
    fn check(&self, option: &Resources, vocab: &Vocabulary) -> Result<(), OverrideError> {
        let on_cloud = option.cloud.map_or_else(|| "any cloud".to_owned(), |c| c.to_string());
        if let Some(region) = &option.region {
            if self.region.is_some() {
                vocab
                    .region(option.cloud, region)
                    .map_err(|u| fail("--region", u.to_string()))?;
            } else if self.cloud.is_some() && vocab.region(option.cloud, region).is_err() {
                return Err(fail(
                    "--cloud",
                    format!("region `{region}` from the task file does not exist on {on_cloud}; also pass `--region`"),
                ));
            }
        }
        if let Some(zone) = &option.zone {
            if self.zone.is_some() {
                vocab
                    .zone(option.cloud, zone)
                    .map_err(|u| fail("--zone", u.to_string()))?;
            } else if self.cloud.is_some() && vocab.zone(option.cloud, zone).is_err() {
                return Err(fail(
                    "--cloud",
                    format!("zone `{zone}` from the task file does not exist on {on_cloud}; also pass `--zone`"),
                ));
            }
        }
        if let Some(instance_type) = &self.instance_type {
            vocab
                .instance_type_known(option.cloud, instance_type)
                .map_err(|u| fail("--instance-type", u.to_string()))?;
        }
        Ok(())
    }
}

fn accelerator(spec: &str, vocab: &Vocabulary) -> Result<AcceleratorRequest, OverrideError> {
    let mut request = parse_accelerator_spec(spec).map_err(|m| fail("--gpus", m))?;
    request.name = vocab
        .accelerator(&request.name)
        .map_err(|u| fail("--gpus", u.to_string()))?
        .to_owned();
    Ok(request)
}

fn amount(text: Option<&str>, flag: &'static str) -> Result<Option<Amount>, OverrideError> {
    text.map(|t| parse_amount(t).map_err(|m| fail(flag, m))).transpose()
}

fn parse_num_nodes(text: &str) -> Result<u32, String> {
    let text = text.trim();
    match text.parse::<u32>() {
        Ok(0) => Err("must be at least 1, found `0`".to_owned()),
        Ok(n) => Ok(n),
        Err(_) if text.parse::<i64>().is_ok_and(|n| n < 1) => Err(format!("must be at least 1, found `{text}`")),
        Err(_) if text.parse::<i64>().is_ok() => Err(format!("`{text}` is too large")),
        Err(_) if text.parse::<f64>().is_ok() => Err(format!("must be a whole number, found `{text}`")),
        Err(_) => Err(format!("`{text}` is not a whole number")),
    }
}

/// `K=V` as is (the value byte-exact, `=` allowed in it), or `K` with the local value of `K`.
fn env_entry(entry: &str) -> Result<(String, String), OverrideError> {
    let (key, value) = match entry.split_once('=') {
        Some((key, value)) => (key, Some(value.to_owned())),
        None => (entry, None),
    };
    if !is_shell_name(key) {
        return Err(fail("--env", format!("`{key}` is not a valid shell variable name")));
    }
    let value = match value {
        Some(value) => value,
        None => std::env::var(key).map_err(|_| {
            fail(
                "--env",
                format!("`{key}` is not set in the local environment; write `--env {key}=VALUE`"),
            )
        })?,
    };
    Ok((key.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Preference;
    use crate::task::parse::tests::vocab;
    use broker_provider::Cloud;

    fn task(yaml: &str) -> Task {
        Overrides::default()
            .parse_task(Path::new("t.yaml"), yaml.as_bytes(), &vocab())
            .unwrap()
    }

    fn applied(yaml: &str, overrides: &Overrides) -> Result<Task, String> {
        let mut task = task(yaml);
        overrides.apply(&mut task, &vocab()).map_err(|e| e.to_string())?;
        Ok(task)
    }

    #[allow(clippy::unnecessary_wraps)] // fills an `Option` field of `Overrides`
    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn nothing_given_is_empty_and_changes_nothing() {
        let overrides = Overrides::default();
        assert!(overrides.is_empty());
        assert!(
            !Overrides {
                use_spot: Some(false),
                ..Overrides::default()
            }
            .is_empty()
        );
        let yaml = "resources:\n  accelerators: {L4: 1, A10G: 1}\n";
        assert_eq!(applied(yaml, &overrides).unwrap(), task(yaml));
    }

    #[test]
    fn gpus_replace_the_alternatives() {
        let overrides = Overrides {
            gpus: some("h100:8"),
            ..Overrides::default()
        };
        let task = applied("resources:\n  accelerators: {L4: 1, A10G: 1}\n", &overrides).unwrap();
        assert_eq!(task.resources.options.len(), 1, "alternatives collapse");
        assert_eq!(
            task.resources.options[0].accelerator,
            Some(AcceleratorRequest {
                name: "H100".into(),
                count: 8.0
            })
        );

        let unknown = Overrides {
            gpus: some("A1000"),
            ..Overrides::default()
        };
        assert_eq!(
            applied("run: x\n", &unknown).unwrap_err(),
            "invalid value for `--gpus`: unknown accelerator `A1000`; did you mean `A100`?"
        );
        let bad = Overrides {
            gpus: some("A100:eight"),
            ..Overrides::default()
        };
        assert_eq!(
            applied("run: x\n", &bad).unwrap_err(),
            "invalid value for `--gpus`: count `eight` is not a number"
        );
    }

    #[test]
    fn cloud_region_and_zone_are_set_and_checked() {
        let yaml = "resources:\n  infra: aws/us-east-1/use1-az1\n";
        let gcp = Overrides {
            cloud: some("gcp"),
            ..Overrides::default()
        };
        assert_eq!(
            applied(yaml, &gcp).unwrap_err(),
            "invalid value for `--cloud`: region `us-east-1` from the task file does not exist on gcp; also pass `--region`"
        );
        let moved = Overrides {
            cloud: some("gcp"),
            region: some("us-central1"),
            ..Overrides::default()
        };
        let option = &applied(yaml, &moved).unwrap().resources.options[0];
        assert_eq!(
            (option.cloud, option.region.as_deref(), option.zone.as_deref()),
            (Some(Cloud::Gcp), Some("us-central1"), None)
        );

        let typo = Overrides {
            region: some("us-east-9"),
            ..Overrides::default()
        };
        assert_eq!(
            applied(yaml, &typo).unwrap_err(),
            "invalid value for `--region`: unknown region of aws `us-east-9`; did you mean `us-east-1`?"
        );
        let zone = Overrides {
            zone: some("use1-az2"),
            ..Overrides::default()
        };
        assert_eq!(
            applied(yaml, &zone).unwrap().resources.options[0].zone.as_deref(),
            Some("use1-az2")
        );
        let cloud_typo = Overrides {
            cloud: some("awz"),
            ..Overrides::default()
        };
        assert_eq!(
            applied(yaml, &cloud_typo).unwrap_err(),
            "invalid value for `--cloud`: unknown cloud `awz`; did you mean `aws`?"
        );
    }

    #[test]
    fn spot_cpus_memory_and_nodes() {
        let overrides = Overrides {
            use_spot: Some(true),
            cpus: some("8+"),
            memory: some("32"),
            num_nodes: some("3"),
            ..Overrides::default()
        };
        let task = applied("resources:\n  any_of: [{cloud: aws}, {cloud: gcp}]\n", &overrides).unwrap();
        assert_eq!(task.num_nodes, 3);
        assert_eq!(task.resources.options.len(), 2);
        assert_eq!(task.resources.preference, Preference::Cheapest);
        for option in &task.resources.options {
            assert!(option.use_spot);
            assert_eq!(option.cpus, Some(Amount::AtLeast(8.0)));
            assert_eq!(option.memory, Some(Amount::Exact(32.0)));
        }
        let nodes = |text: &str| {
            applied(
                "run: x\n",
                &Overrides {
                    num_nodes: some(text),
                    ..Overrides::default()
                },
            )
            .map(|t| t.num_nodes)
        };
        assert_eq!(
            nodes("two").unwrap_err(),
            "invalid value for `--num-nodes`: `two` is not a whole number"
        );
        assert_eq!(
            nodes("0").unwrap_err(),
            "invalid value for `--num-nodes`: must be at least 1, found `0`"
        );
        assert_eq!(
            nodes("-2").unwrap_err(),
            "invalid value for `--num-nodes`: must be at least 1, found `-2`"
        );
        assert_eq!(
            nodes("2.5").unwrap_err(),
            "invalid value for `--num-nodes`: must be a whole number, found `2.5`"
        );
        let cpus = Overrides {
            cpus: some("many"),
            ..Overrides::default()
        };
        assert_eq!(
            applied("run: x\n", &cpus).unwrap_err(),
            "invalid value for `--cpus`: `many` is not a number (write `8` or `8+`)"
        );
    }

    #[test]
    fn instance_type_is_checked_against_the_final_shape() {
        let pin = Overrides {
            instance_type: some("m6i.2xlarge"),
            cpus: some("4"),
            ..Overrides::default()
        };
        assert_eq!(
            applied("run: x\n", &pin).unwrap_err(),
            "invalid value for `--instance-type`: `m6i.2xlarge` on aws has 8 vCPUs, but cpus: 4 was asked"
        );
        let reshaped = Overrides {
            cpus: some("4"),
            ..Overrides::default()
        };
        assert_eq!(
            applied("resources:\n  instance_type: m6i.2xlarge\n", &reshaped).unwrap_err(),
            "invalid value for `--cpus`: `m6i.2xlarge` on aws has 8 vCPUs, but cpus: 4 was asked"
        );
        let typo = Overrides {
            instance_type: some("p4d.24xlarg"),
            ..Overrides::default()
        };
        assert_eq!(
            applied("run: x\n", &typo).unwrap_err(),
            "invalid value for `--instance-type`: unknown instance type `p4d.24xlarg`; did you mean `p4d.24xlarge`?"
        );
        let fine = Overrides {
            instance_type: some("p4d.24xlarge"),
            gpus: some("A100:8"),
            ..Overrides::default()
        };
        assert!(applied("run: x\n", &fine).is_ok());
    }

    #[test]
    fn env_flags() {
        let overrides = Overrides {
            envs: vec!["A=x=y ; $(id)".into(), "TOKEN=s3cret".into(), "PATH".into()],
            ..Overrides::default()
        };
        let task = applied("envs:\n  A: old\nsecrets:\n  TOKEN: placeholder\n", &overrides).unwrap();
        assert_eq!(task.envs.get("A").map(String::as_str), Some("x=y ; $(id)"));
        assert_eq!(
            task.secrets.get("TOKEN").map(String::as_str),
            Some("s3cret"),
            "a secret stays a secret"
        );
        assert!(!task.envs.contains_key("TOKEN"));
        assert_eq!(task.envs.get("PATH"), std::env::var("PATH").ok().as_ref());

        let bad = Overrides {
            envs: vec!["1BAD=x".into()],
            ..Overrides::default()
        };
        assert_eq!(
            applied("run: x\n", &bad).unwrap_err(),
            "invalid value for `--env`: `1BAD` is not a valid shell variable name"
        );
        let unset = Overrides {
            envs: vec!["BROKER_TEST_SURELY_UNSET_9F2".into()],
            ..Overrides::default()
        };
        assert_eq!(
            applied("run: x\n", &unset).unwrap_err(),
            "invalid value for `--env`: `BROKER_TEST_SURELY_UNSET_9F2` is not set in the local environment; write `--env BROKER_TEST_SURELY_UNSET_9F2=VALUE`"
        );
    }

    #[test]
    fn env_flags_supply_null_envs_at_parse_time() {
        let yaml = b"run: x\nenvs:\n  BROKER_TEST_SURELY_UNSET_9F2:\n";
        let overrides = Overrides {
            envs: vec!["BROKER_TEST_SURELY_UNSET_9F2=given".into()],
            ..Overrides::default()
        };
        let task = overrides.parse_task(Path::new("t.yaml"), yaml, &vocab()).unwrap();
        assert_eq!(
            task.envs.get("BROKER_TEST_SURELY_UNSET_9F2").map(String::as_str),
            Some("given")
        );
        assert!(crate::task::parse_task(Path::new("t.yaml"), yaml, &vocab()).is_err());
    }
}
