//! broker-aws against moto (an EC2 emulator) on 127.0.0.1: the shared provider contract, what
//! each launch must set on EC2, and failures injected at the wire.
//!
//! Needs python3 with venv and access to `PyPI` the first time (`tests/setup-moto.sh` installs a
//! pinned moto into `<workspace>/.cache/moto-venv`). These tests never skip: without moto they
//! fail with a hint. Nothing is sent anywhere but the test's own moto: the provider's endpoint
//! is moto's, credentials are static, and the addresses moto invents for instances are only
//! compared, never dialled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod conformance;
mod contract;
mod faults;
mod moto;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_ec2::config::{BehaviorVersion, Region};
use aws_sdk_ec2::types::{Filter, Instance};
use broker_aws::{AwsConfig, AwsProvider, StaticCredentials};
use broker_provider::{Arch, Cloud, ClusterName, LaunchSpec, LaunchToken, Location, Offer};

use crate::moto::Moto;

/// The region the tests launch in, and a zone ID of it as catalogs write zones (moto maps it
/// to the zone name `us-east-1b`).
pub(crate) const REGION: &str = "us-east-1";
pub(crate) const ZONE_ID: &str = "use1-az1";
pub(crate) const ZONE_NAME: &str = "us-east-1b";
/// Another zone of the region: `us-east-1c`.
pub(crate) const OTHER_ZONE_ID: &str = "use1-az2";
pub(crate) const OTHER_ZONE_NAME: &str = "us-east-1c";

/// A real ed25519 public key (its private half was thrown away).
pub(crate) const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIDWOiw9+Eli4Sj67XroMlmIeClbXGoYez8l0d9FlUAZ broker-test";

const ACCESS_KEY: &str = "AKIDBROKERTEST";
const SECRET_KEY: &str = "broker-test-secret";

/// The provider's configuration for `moto`: its endpoint, two regions to search, static keys.
pub(crate) fn config(moto: &Moto) -> AwsConfig {
    AwsConfig {
        endpoint: Some(moto.endpoint()),
        home_region: Some(REGION.to_owned()),
        regions: Some(vec![REGION.to_owned(), "us-west-2".to_owned()]),
        credentials: Some(StaticCredentials {
            access_key_id: ACCESS_KEY.to_owned(),
            secret_access_key: SECRET_KEY.to_owned(),
            session_token: None,
        }),
        wait_timeout: Duration::from_mins(1),
        ..AwsConfig::default()
    }
}

pub(crate) fn provider(moto: &Moto) -> AwsProvider {
    AwsProvider::new(config(moto)).unwrap()
}

/// A plain EC2 client on `moto`, to check what the provider did.
pub(crate) fn ec2(moto: &Moto) -> aws_sdk_ec2::Client {
    let conf = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(moto.endpoint())
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

pub(crate) fn offer(instance_type: &'static str, zone: &'static str) -> Offer {
    Offer {
        cloud: Cloud::Aws,
        instance_type: Cow::Borrowed(instance_type),
        accelerator: None,
        vcpus: None,
        memory_gib: None,
        price: Some(1.0),
        spot_price: Some(0.4),
        location: Location {
            region: Cow::Borrowed(REGION),
            zone: Some(Cow::Borrowed(zone)),
        },
        arch: Arch::X86_64,
    }
}

/// A cluster name no other test (of this or a parallel run) uses.
pub(crate) fn cluster(what: &str) -> ClusterName {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("ba{}-{n}-{what}", std::process::id()).parse().unwrap()
}

/// A launch of `count` g5.xlarge in [`ZONE_ID`] under `token`.
pub(crate) fn spec(cluster: &ClusterName, token: &str, count: u32) -> LaunchSpec {
    LaunchSpec::new(
        cluster.clone(),
        LaunchToken(token.to_owned()),
        &offer("g5.xlarge", ZONE_ID),
        count,
        false,
    )
    .with_ssh_public_key(PUBLIC_KEY)
    .with_disk_gib(40)
}

/// Every instance (in any state) tagged with `cluster`, as EC2 describes it.
pub(crate) async fn instances_of(moto: &Moto, cluster: &ClusterName) -> Vec<Instance> {
    ec2(moto)
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag:broker-cluster")
                .values(cluster.as_str())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .reservations()
        .iter()
        .flat_map(|r| r.instances().iter().cloned())
        .collect()
}

/// The value of an instance's tag.
pub(crate) fn tag<'a>(instance: &'a Instance, key: &str) -> Option<&'a str> {
    instance
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}
