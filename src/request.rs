//! What a task asks for, in the terms the optimizer filters by.
//!
//! Built from a task file plus command-line overrides (`task`), or straight from
//! `broker cost A100:8`. Nothing here knows about YAML or about catalogs.

use std::fmt;

use broker_provider::{Arch, Cloud};
use serde::Serialize;

/// A number that must match exactly (`8`) or be at least (`8+`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Amount {
    /// Exactly this much.
    Exact(f64),
    /// This much or more.
    AtLeast(f64),
}

impl Amount {
    /// Whether `value` satisfies the bound.
    pub fn admits(self, value: f64) -> bool {
        match self {
            // Catalog figures come from decimal text; compare with a tolerance so `0.5` GiB rows match.
            Self::Exact(want) => (value - want).abs() < 1e-6,
            Self::AtLeast(min) => value + 1e-6 >= min,
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(n) => write!(f, "{}", crate::format::number(*n)),
            Self::AtLeast(n) => write!(f, "{}+", crate::format::number(*n)),
        }
    }
}

/// An accelerator name and how many of them one node needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcceleratorRequest {
    /// As the user wrote it; matched against catalogs case-insensitively and exactly
    /// (`A100` is not `A100-80GB`).
    pub name: String,
    /// Per node; fractional counts select shared GPUs.
    pub count: f64,
}

impl fmt::Display for AcceleratorRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, crate::format::number(self.count))
    }
}

/// One acceptable shape of node: every constraint must hold for an offer to qualify.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Resources {
    /// Accelerators per node; `None` means a CPU node is fine (and GPU nodes are not wanted).
    pub accelerator: Option<AcceleratorRequest>,
    /// vCPUs per node.
    pub cpus: Option<Amount>,
    /// Memory per node, GiB.
    pub memory: Option<Amount>,
    /// Only this cloud.
    pub cloud: Option<Cloud>,
    /// Only this region.
    pub region: Option<String>,
    /// Only this zone.
    pub zone: Option<String>,
    /// Only this instance type.
    pub instance_type: Option<String>,
    /// Spot market instead of on-demand.
    pub use_spot: bool,
    /// Only this CPU architecture.
    pub arch: Option<Arch>,
}

impl fmt::Display for Resources {
    /// A short human summary such as `A100:8, cpus 32+, aws/us-east-1, spot`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        match &self.accelerator {
            Some(acc) => parts.push(acc.to_string()),
            None => parts.push("no accelerator".to_owned()),
        }
        if let Some(cpus) = self.cpus {
            parts.push(format!("cpus {cpus}"));
        }
        if let Some(memory) = self.memory {
            parts.push(format!("memory {memory} GiB"));
        }
        if let Some(instance_type) = &self.instance_type {
            parts.push(format!("instance type {instance_type}"));
        }
        let place: Vec<&str> = [
            self.cloud.map(Cloud::as_str),
            self.region.as_deref(),
            self.zone.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !place.is_empty() {
            parts.push(place.join("/"));
        }
        if self.use_spot {
            parts.push("spot".to_owned());
        }
        f.write_str(&parts.join(", "))
    }
}

/// How to choose among several acceptable shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Preference {
    /// Any of them; the cheapest offer wins (`{L4: 1, A10G: 1}`, `any_of`).
    #[default]
    Cheapest,
    /// In the order given; a later one is tried only when no earlier one can be had
    /// (a YAML list of accelerators, `ordered`).
    Ordered,
}

/// Everything the optimizer needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    /// Acceptable node shapes; never empty.
    pub options: Vec<Resources>,
    /// How to choose among them.
    pub preference: Preference,
    /// Nodes in the cluster; the price of a candidate is per node times this.
    pub num_nodes: u32,
    /// Refuse candidates whose hourly price for the whole cluster exceeds this (USD).
    pub max_price: Option<f64>,
}

impl Request {
    /// A request for one shape of node.
    pub fn single(resources: Resources) -> Self {
        Self {
            options: vec![resources],
            preference: Preference::Cheapest,
            num_nodes: 1,
            max_price: None,
        }
    }
}
