//! Names that identify what broker created: clusters and launch attempts.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A validated cluster name.
///
/// It becomes part of instance names, tags and labels on every cloud, so it obeys the strictest
/// of their rules (GCE instance names and labels): lower-case letters, digits and `-`, starting
/// with a letter, not ending with `-`, at most 40 characters so a `-<rank>` suffix still fits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ClusterName(String);

/// Why a string is not a valid [`ClusterName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cluster name `{name}`: {reason}")]
pub struct InvalidClusterName {
    /// The rejected name.
    pub name: String,
    /// What rule it breaks.
    pub reason: &'static str,
}

impl ClusterName {
    /// The longest name accepted.
    pub const MAX_LEN: usize = 40;

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClusterName {
    type Err = InvalidClusterName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| {
            Err(InvalidClusterName {
                name: s.to_owned(),
                reason,
            })
        };
        if s.is_empty() {
            return fail("it is empty");
        }
        if s.len() > Self::MAX_LEN {
            return fail("it is longer than 40 characters");
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return fail("it must start with a lower-case letter");
        }
        if s.ends_with('-') {
            return fail("it must not end with `-`");
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return fail("only lower-case letters, digits and `-` are allowed");
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one launch attempt so that repeating it cannot create a second copy.
///
/// Sent as EC2's `ClientToken` or GCE's `requestId`; a new attempt (another zone, a retry after
/// a recorded failure) gets a new token, a resend of the same attempt reuses it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct LaunchToken(pub String);

impl fmt::Display for LaunchToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_cloud_safe_names() {
        for ok in ["a", "train-7", "x1-y2-z3"] {
            assert_eq!(ok.parse::<ClusterName>().map(|c| c.to_string()), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn rejects_names_some_cloud_would_refuse() {
        for (bad, why) in [
            ("", "empty"),
            ("Train", "start"),
            ("7up", "start"),
            ("a_b", "only"),
            ("a-", "end"),
            ("a b", "only"),
            (&"a".repeat(41), "longer"),
        ] {
            let err = bad.parse::<ClusterName>().unwrap_err();
            assert!(err.reason.contains(why), "{bad:?}: {}", err.reason);
        }
    }
}
