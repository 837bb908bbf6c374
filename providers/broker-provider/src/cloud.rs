//! The clouds broker knows about, whether or not a provider for them is compiled in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A cloud that broker has a price catalog for, a provider for, or both.
///
/// The order of the variants is the order of every listing and the last tie-breaker of the
/// optimizer, so adding a cloud never reshuffles how existing ones rank against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Cloud {
    /// Amazon Web Services (EC2).
    Aws,
    /// Google Cloud Platform (Compute Engine).
    Gcp,
    /// Microsoft Azure.
    Azure,
    /// Lambda Cloud.
    Lambda,
    /// Nebius AI Cloud.
    Nebius,
    /// Vast.ai marketplace.
    Vast,
    /// Hyperbolic.
    Hyperbolic,
    /// Mithril (formerly Foundry).
    Mithril,
    /// Yotta.
    Yotta,
    /// Verda (formerly `DataCrunch`).
    Verda,
    /// Seeweb.
    Seeweb,
    /// Shadeform marketplace.
    Shadeform,
    /// Prime Intellect marketplace.
    #[serde(rename = "primeintellect")]
    PrimeIntellect,
    /// The local Docker engine: free CPU nodes for trying broker out and for tests.
    Docker,
}

impl Cloud {
    /// Every cloud, in listing order.
    pub const ALL: &'static [Self] = &[
        Self::Aws,
        Self::Gcp,
        Self::Azure,
        Self::Lambda,
        Self::Nebius,
        Self::Vast,
        Self::Hyperbolic,
        Self::Mithril,
        Self::Yotta,
        Self::Verda,
        Self::Seeweb,
        Self::Shadeform,
        Self::PrimeIntellect,
        Self::Docker,
    ];

    /// The lower-case name used on the command line, in task files and in catalog paths.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::Gcp => "gcp",
            Self::Azure => "azure",
            Self::Lambda => "lambda",
            Self::Nebius => "nebius",
            Self::Vast => "vast",
            Self::Hyperbolic => "hyperbolic",
            Self::Mithril => "mithril",
            Self::Yotta => "yotta",
            Self::Verda => "verda",
            Self::Seeweb => "seeweb",
            Self::Shadeform => "shadeform",
            Self::PrimeIntellect => "primeintellect",
            Self::Docker => "docker",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cloud name that broker does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cloud `{0}`")]
pub struct UnknownCloud(pub String);

impl FromStr for Cloud {
    type Err = UnknownCloud;

    /// Case-insensitive, so `AWS` in a SkyPilot file written by hand still works.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownCloud(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_ignore_case() {
        for cloud in Cloud::ALL {
            assert_eq!(cloud.as_str().parse::<Cloud>(), Ok(*cloud));
            assert_eq!(cloud.as_str().to_uppercase().parse::<Cloud>(), Ok(*cloud));
        }
        assert_eq!("azur".parse::<Cloud>(), Err(UnknownCloud("azur".into())));
    }
}
