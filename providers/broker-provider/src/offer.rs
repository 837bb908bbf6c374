//! What a cloud sells (an [`Offer`]) and what the optimizer picked from it (a [`Candidate`]).

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::Cloud;

/// A region and, where the cloud has them, an availability zone inside it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    /// The cloud's region name (`us-east-1`, `europe-west4`).
    pub region: Cow<'static, str>,
    /// The zone; `None` for clouds that place by region only.
    pub zone: Option<Cow<'static, str>>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.zone {
            Some(zone) => write!(f, "{}/{zone}", self.region),
            None => f.write_str(&self.region),
        }
    }
}

/// Accelerators attached to one instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accelerator {
    /// The name as catalogs spell it (`A100`, `A100-80GB`, `L4`); matched case-insensitively.
    pub name: Cow<'static, str>,
    /// How many; fractional for shared GPUs (AWS g6f carries an eighth of an L4).
    pub count: f64,
}

/// CPU architecture of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// 64-bit x86.
    #[default]
    X86_64,
    /// 64-bit ARM (Graviton, Ampere, Grace).
    Arm64,
}

impl Arch {
    /// The name used in catalogs and task files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }
}

/// One instance type in one place at list prices: a row of a price catalog.
///
/// Strings are `Cow` so the embedded catalogs can be read without copying a byte, while
/// providers that fetch prices at run time hand over owned strings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offer {
    /// The cloud selling it.
    pub cloud: Cloud,
    /// The cloud's own instance type name (`p4d.24xlarge`, `a2-highgpu-8g`).
    pub instance_type: Cow<'static, str>,
    /// Accelerators on one instance, if any.
    pub accelerator: Option<Accelerator>,
    /// Virtual CPUs, when the catalog knows them.
    pub vcpus: Option<f64>,
    /// Memory in GiB, when the catalog knows it.
    pub memory_gib: Option<f64>,
    /// On-demand USD per hour; `None` when the type is sold as spot only.
    pub price: Option<f64>,
    /// Spot USD per hour; `None` when there is no spot market for it.
    pub spot_price: Option<f64>,
    /// Where it is sold.
    pub location: Location,
    /// CPU architecture.
    pub arch: Arch,
}

impl Offer {
    /// The hourly price for one instance in the given market, if sold there.
    pub fn price_for(&self, spot: bool) -> Option<f64> {
        if spot { self.spot_price } else { self.price }
    }
}

/// An offer the optimizer found to satisfy a request, with its place in the failover plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The offer.
    pub offer: Offer,
    /// Position in the plan, from 0 (the first to try).
    pub rank: usize,
    /// Whether the plan uses the spot market for it.
    pub spot: bool,
    /// Instances needed (the task's node count).
    pub nodes: u32,
    /// USD per hour for all nodes together, in the chosen market.
    pub hourly_total: f64,
    /// Which alternative of the request it satisfies (index into the request's options).
    pub option: usize,
}

impl Candidate {
    /// USD per hour for one node.
    pub fn hourly_per_node(&self) -> f64 {
        self.hourly_total / f64::from(self.nodes.max(1))
    }
}
