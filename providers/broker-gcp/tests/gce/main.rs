//! `GceProvider` on the wire: against `broker-gce-fake` (a Compute server on 127.0.0.1 that
//! checks every request body against Google's discovery document) and against a scripted
//! server for failures the fake cannot be told to produce. Nothing here reaches Google.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fake;
mod live;
mod mock;
mod wire;

use std::sync::atomic::{AtomicU32, Ordering};

use broker_provider::{Accelerator, Arch, Cloud, ClusterName, LaunchSpec, LaunchToken, Location, Offer};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A cluster name no other test of this run uses.
pub(crate) fn unique_cluster(what: &str) -> ClusterName {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("g{}-{n}-{what}", std::process::id()).parse().unwrap()
}

/// An offer in `us-central1-a`.
pub(crate) fn offer(instance_type: &str, accelerator: Option<(&'static str, f64)>) -> Offer {
    Offer {
        cloud: Cloud::Gcp,
        instance_type: instance_type.to_owned().into(),
        accelerator: accelerator.map(|(name, count)| Accelerator {
            name: name.into(),
            count,
        }),
        vcpus: None,
        memory_gib: None,
        price: Some(0.1),
        spot_price: Some(0.03),
        location: Location {
            region: "us-central1".into(),
            zone: Some("us-central1-a".into()),
        },
        arch: Arch::X86_64,
    }
}

pub(crate) const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrokerGceTestKeyOnlyxxxxxxxxxxxxxxxxxxxxxx test";

pub(crate) fn spec_for(cluster: &ClusterName, offer: &Offer, token: &str, count: u32) -> LaunchSpec {
    LaunchSpec::new(cluster.clone(), LaunchToken(token.into()), offer, count, false)
        .with_ssh_public_key(PUBLIC_KEY)
        .with_disk_gib(20)
}
