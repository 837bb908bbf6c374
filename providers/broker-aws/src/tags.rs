//! The tags broker puts on every instance and volume, and the names derived from them.
//!
//! Tags are how broker finds its resources again (`nodes`, `sweep`, a resent `launch`), so the
//! cloud and not a local list is the source of truth. User labels from the launch spec go on
//! as plain tags (so AWS cost allocation can use them), but may not pretend to be broker's.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use aws_sdk_ec2::types::{Filter, Instance, ResourceType, Tag, TagSpecification};
use broker_provider::{Cloud, LaunchSpec, ProviderError};
use sha2::{Digest, Sha256};

/// Marks a resource as broker's (`1`); `sweep` lists everything that has it.
pub const MANAGED: &str = "broker-managed";
/// The cluster name.
pub const CLUSTER: &str = "broker-cluster";
/// The node's rank inside the cluster; 0 is the head.
pub const RANK: &str = "broker-rank";
/// The launch token of the attempt that created the resource.
pub const TOKEN: &str = "broker-token";
/// The first rank of that attempt, so a resend numbers its nodes as the first send did.
pub const BASE_RANK: &str = "broker-base-rank";
/// The console's display name.
const NAME: &str = "Name";

/// EC2 allows 50 tags per resource; broker uses the rest of them for user labels.
const MAX_TAGS: usize = 50;
const MAX_KEY: usize = 127;
const MAX_VALUE: usize = 256;
/// EC2's limit on `ClientToken`.
const MAX_CLIENT_TOKEN: usize = 64;

/// The first 8 hex digits of SHA-256: short, stable names for things derived from longer ones.
pub(crate) fn short_hash(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes())[..4])
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The value of the token tag: the token itself when it fits in a tag, else its hash.
pub(crate) fn token_value(token: &str) -> String {
    if token.len() <= MAX_VALUE {
        token.to_owned()
    } else {
        format!("sha256-{}", hex(&Sha256::digest(token.as_bytes())))
    }
}

/// `RunInstances`' `ClientToken` for one rank of an attempt: readable when it fits EC2's 64
/// ASCII characters, a hash of token and rank otherwise.
pub(crate) fn client_token(token: &str, rank: u32) -> String {
    let plain = format!("{token}-r{rank}");
    if plain.len() <= MAX_CLIENT_TOKEN && plain.bytes().all(|b| b.is_ascii_graphic()) {
        plain
    } else {
        let digest = hex(&Sha256::digest(format!("{token}\n{rank}").as_bytes()));
        format!("broker-{}", &digest[..MAX_CLIENT_TOKEN - "broker-".len()])
    }
}

/// Rejects user labels that EC2 would refuse or that would shadow broker's own tags.
pub(crate) fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), ProviderError> {
    let invalid = |message: String| {
        Err(ProviderError::Invalid {
            cloud: Cloud::Aws,
            message,
        })
    };
    let reserved = 6;
    if labels.len() > MAX_TAGS - reserved {
        return invalid(format!(
            "{} labels given; EC2 allows {} next to broker's own tags",
            labels.len(),
            MAX_TAGS - reserved
        ));
    }
    for (key, value) in labels {
        if key.is_empty() || key.chars().count() > MAX_KEY {
            return invalid(format!("label key `{key}` must have 1 to {MAX_KEY} characters"));
        }
        if value.chars().count() > MAX_VALUE {
            return invalid(format!("label `{key}` has a value longer than {MAX_VALUE} characters"));
        }
        let lower = key.to_ascii_lowercase();
        if lower.starts_with("aws:") || lower.starts_with("broker-") || key == NAME {
            return invalid(format!(
                "label key `{key}` is reserved (`aws:`, `broker-` and `Name` belong to AWS and broker)"
            ));
        }
    }
    Ok(())
}

/// The tags of node `rank` of an attempt whose first rank is `base_rank`.
pub(crate) fn node_tags(spec: &LaunchSpec, rank: u32, base_rank: u32) -> Vec<Tag> {
    let cluster = spec.cluster.as_str();
    let mut pairs: Vec<(String, String)> = vec![
        (MANAGED.into(), "1".into()),
        (CLUSTER.into(), cluster.into()),
        (RANK.into(), rank.to_string()),
        (TOKEN.into(), token_value(&spec.token.0)),
        (BASE_RANK.into(), base_rank.to_string()),
        (NAME.into(), format!("broker-{cluster}-{rank}")),
    ];
    pairs.extend(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    pairs
        .into_iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect()
}

/// The same tags on the instance and on its volumes, so a volume that outlives its instance
/// (a failed launch, `DeleteOnTermination` turned off by hand) still says whose it is.
pub(crate) fn tag_specifications(tags: &[Tag]) -> Vec<TagSpecification> {
    [ResourceType::Instance, ResourceType::Volume]
        .into_iter()
        .map(|kind| {
            TagSpecification::builder()
                .resource_type(kind)
                .set_tags(Some(tags.to_vec()))
                .build()
        })
        .collect()
}

/// A `DescribeInstances` filter on a tag's value.
pub(crate) fn filter(key: &str, value: &str) -> Filter {
    Filter::builder().name(format!("tag:{key}")).values(value).build()
}

/// The value of an instance's tag.
pub(crate) fn get<'a>(instance: &'a Instance, key: &str) -> Option<&'a str> {
    instance
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(Tag::value)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use broker_provider::{LaunchToken, Location, Offer};

    use super::*;

    fn spec(labels: &[(&str, &str)]) -> LaunchSpec {
        let offer = Offer {
            cloud: Cloud::Aws,
            instance_type: Cow::Borrowed("g5.xlarge"),
            accelerator: None,
            vcpus: None,
            memory_gib: None,
            price: Some(1.0),
            spot_price: None,
            location: Location {
                region: "us-east-1".into(),
                zone: Some("use1-az1".into()),
            },
            arch: broker_provider::Arch::X86_64,
        };
        LaunchSpec::new(
            "train".parse().unwrap(),
            LaunchToken("train-1-abc".into()),
            &offer,
            2,
            false,
        )
        .with_labels(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn nodes_carry_broker_tags_and_user_labels() {
        let tags = node_tags(&spec(&[("team", "ml")]), 3, 2);
        let pairs: Vec<(&str, &str)> = tags.iter().map(|t| (t.key().unwrap(), t.value().unwrap())).collect();
        assert_eq!(
            pairs,
            [
                ("broker-managed", "1"),
                ("broker-cluster", "train"),
                ("broker-rank", "3"),
                ("broker-token", "train-1-abc"),
                ("broker-base-rank", "2"),
                ("Name", "broker-train-3"),
                ("team", "ml"),
            ]
        );
        let specs = tag_specifications(&tags);
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[1].resource_type(), Some(&ResourceType::Volume));
        assert_eq!(specs[1].tags().len(), 7);
    }

    #[test]
    fn client_tokens_fit_ec2_and_differ_per_rank() {
        assert_eq!(client_token("train-1-abc", 0), "train-1-abc-r0");
        let long = "x".repeat(70);
        let (a, b) = (client_token(&long, 0), client_token(&long, 1));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(a, client_token(&long, 0));
        assert!(client_token("with space", 0).starts_with("broker-"));
        assert_eq!(token_value(&"t".repeat(300)).len(), "sha256-".len() + 64);
    }

    #[test]
    fn reserved_or_oversized_labels_are_invalid() {
        assert!(validate_labels(&spec(&[("team", "ml")]).labels).is_ok());
        for (key, value) in [("aws:foo", "x"), ("broker-cluster", "x"), ("Name", "x"), ("", "x")] {
            assert!(validate_labels(&spec(&[(key, value)]).labels).is_err(), "{key}");
        }
        let long = "v".repeat(257);
        assert!(validate_labels(&spec(&[("k", &long)]).labels).is_err());
    }
}
