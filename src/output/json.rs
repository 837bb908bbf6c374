//! The JSON shapes of broker's `--json` output. Field names are a public interface: scripts
//! depend on them, so they change only by adding fields.

use broker_provider::{Candidate, Offer};
use serde::Serialize;

/// One offer as `broker cost --json` prints it.
#[derive(Debug, Serialize)]
pub struct OfferJson<'a> {
    /// Cloud name.
    pub cloud: &'a str,
    /// Region.
    pub region: &'a str,
    /// Zone, `null` when the cloud has none.
    pub zone: Option<&'a str>,
    /// Instance type.
    pub instance_type: &'a str,
    /// Accelerator name, `null` for CPU nodes.
    pub accelerator: Option<&'a str>,
    /// Accelerators per node, `null` for CPU nodes.
    pub accelerator_count: Option<f64>,
    /// vCPUs per node.
    pub vcpus: Option<f64>,
    /// Memory per node, GiB.
    pub memory_gib: Option<f64>,
    /// On-demand USD/hour per node, `null` if not sold on demand.
    pub price: Option<f64>,
    /// Spot USD/hour per node, `null` if not sold as spot.
    pub spot_price: Option<f64>,
}

impl<'a> From<&'a Offer> for OfferJson<'a> {
    fn from(o: &'a Offer) -> Self {
        Self {
            cloud: o.cloud.as_str(),
            region: &o.location.region,
            zone: o.location.zone.as_deref(),
            instance_type: &o.instance_type,
            accelerator: o.accelerator.as_ref().map(|a| &*a.name),
            accelerator_count: o.accelerator.as_ref().map(|a| a.count),
            vcpus: o.vcpus,
            memory_gib: o.memory_gib,
            price: o.price,
            spot_price: o.spot_price,
        }
    }
}

/// One candidate of a plan (`broker launch --dry-run --json`).
#[derive(Debug, Serialize)]
pub struct CandidateJson<'a> {
    /// The offer's fields.
    #[serde(flatten)]
    pub offer: OfferJson<'a>,
    /// Position in the failover plan, from 0.
    pub rank: usize,
    /// Whether the plan uses the spot market.
    pub spot: bool,
    /// Nodes in the cluster.
    pub nodes: u32,
    /// USD/hour for the whole cluster in the chosen market.
    pub hourly_total: f64,
    /// Whether a real launch could use this cloud now (a provider exists and its credentials work).
    pub enabled: bool,
}

impl<'a> CandidateJson<'a> {
    /// Wraps a candidate.
    pub fn new(c: &'a Candidate, enabled: bool) -> Self {
        Self {
            offer: (&c.offer).into(),
            rank: c.rank,
            spot: c.spot,
            nodes: c.nodes,
            hourly_total: c.hourly_total,
            enabled,
        }
    }
}

/// Serialises with two-space indentation and a trailing newline.
pub fn to_string<T: Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        // Only non-string map keys or failing Serialize impls can fail; ours have neither.
        Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
    }
}
