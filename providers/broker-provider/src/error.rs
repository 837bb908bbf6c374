//! The one error type every provider returns, classified so the launch loop knows where to go next.

use std::error::Error as StdError;

use crate::{Cloud, Location};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What kind of failure a provider call met; the launch loop branches on this and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The cloud has no machines of that kind there right now.
    Capacity,
    /// The account's limit for that resource is used up.
    Quota,
    /// Credentials are missing, expired or lack a permission.
    Auth,
    /// The thing asked about does not exist.
    NotFound,
    /// A temporary failure that survived the provider's own retries.
    Transient,
    /// The request itself is wrong; trying elsewhere will not help.
    Invalid,
    /// Anything the provider could not classify.
    Other,
}

/// How much of the plan a failure rules out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailoverScope {
    /// Try the same instance type in another zone.
    Zone,
    /// Skip every zone of this region.
    Region,
    /// Skip this cloud altogether.
    Cloud,
}

/// A failed provider call.
///
/// Variants are classes, not transports: a capacity error looks the same whether it came from
/// EC2's `InsufficientInstanceCapacity` or GCE's `ZONE_RESOURCE_POOL_EXHAUSTED`. Each provider
/// maps its wire codes to these in one `classify.rs`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// No capacity for the instance type at that location.
    #[error("{cloud}: no capacity for `{instance_type}` in {location}: {message}")]
    Capacity {
        /// The cloud.
        cloud: Cloud,
        /// Where it was tried.
        location: Location,
        /// What was asked for.
        instance_type: String,
        /// The cloud's own words.
        message: String,
    },
    /// A quota or limit is exhausted.
    #[error("{cloud}: quota `{quota}` exceeded ({scope:?} scope): {message}")]
    Quota {
        /// The cloud.
        cloud: Cloud,
        /// The quota's name as the cloud reports it.
        quota: String,
        /// What the quota covers: a region, or the whole account.
        scope: FailoverScope,
        /// The cloud's own words.
        message: String,
    },
    /// Credentials do not work.
    #[error("{cloud}: authentication failed: {message}")]
    Auth {
        /// The cloud.
        cloud: Cloud,
        /// What went wrong, without any secret.
        message: String,
        /// One line on how to fix it.
        hint: String,
    },
    /// The resource does not exist.
    #[error("{cloud}: not found: {what}")]
    NotFound {
        /// The cloud.
        cloud: Cloud,
        /// What was looked for.
        what: String,
    },
    /// Still failing after retries.
    #[error("{cloud}: temporary failure after {attempts} attempts: {source}")]
    Transient {
        /// The cloud.
        cloud: Cloud,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: BoxError,
    },
    /// The request is malformed or unsupported.
    #[error("{cloud}: invalid request: {message}")]
    Invalid {
        /// The cloud.
        cloud: Cloud,
        /// What is wrong.
        message: String,
    },
    /// Anything else.
    #[error("{cloud}: {source}")]
    Other {
        /// The cloud.
        cloud: Cloud,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

impl ProviderError {
    /// The class of the failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Capacity { .. } => ErrorClass::Capacity,
            Self::Quota { .. } => ErrorClass::Quota,
            Self::Auth { .. } => ErrorClass::Auth,
            Self::NotFound { .. } => ErrorClass::NotFound,
            Self::Transient { .. } => ErrorClass::Transient,
            Self::Invalid { .. } => ErrorClass::Invalid,
            Self::Other { .. } => ErrorClass::Other,
        }
    }

    /// What to rule out before trying the next candidate; `None` means stop the launch.
    ///
    /// Auth failures rule out the whole cloud (other clouds may still work); an invalid request
    /// or an unknown failure stops everything, because repeating it elsewhere would only repeat
    /// the mistake and perhaps the bill.
    pub fn failover(&self) -> Option<FailoverScope> {
        match self {
            Self::Capacity { .. } => Some(FailoverScope::Zone),
            Self::Quota { scope, .. } => Some(*scope),
            Self::Auth { .. } => Some(FailoverScope::Cloud),
            Self::NotFound { .. } | Self::Transient { .. } | Self::Invalid { .. } | Self::Other { .. } => None,
        }
    }

    /// The cloud that reported it.
    pub fn cloud(&self) -> Cloud {
        match self {
            Self::Capacity { cloud, .. }
            | Self::Quota { cloud, .. }
            | Self::Auth { cloud, .. }
            | Self::NotFound { cloud, .. }
            | Self::Transient { cloud, .. }
            | Self::Invalid { cloud, .. }
            | Self::Other { cloud, .. } => *cloud,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity() -> ProviderError {
        ProviderError::Capacity {
            cloud: Cloud::Aws,
            location: Location {
                region: "us-east-1".into(),
                zone: Some("use1-az1".into()),
            },
            instance_type: "p4d.24xlarge".into(),
            message: "InsufficientInstanceCapacity".into(),
        }
    }

    #[test]
    fn classes_map_to_failover_scopes() {
        assert_eq!(capacity().class(), ErrorClass::Capacity);
        assert_eq!(capacity().failover(), Some(FailoverScope::Zone));
        let quota = ProviderError::Quota {
            cloud: Cloud::Gcp,
            quota: "GPUS_ALL_REGIONS".into(),
            scope: FailoverScope::Cloud,
            message: String::new(),
        };
        assert_eq!(quota.failover(), Some(FailoverScope::Cloud));
        let invalid = ProviderError::Invalid {
            cloud: Cloud::Gcp,
            message: "bad".into(),
        };
        assert_eq!(invalid.failover(), None);
    }

    #[test]
    fn messages_name_cloud_and_place() {
        assert_eq!(
            capacity().to_string(),
            "aws: no capacity for `p4d.24xlarge` in us-east-1/use1-az1: InsufficientInstanceCapacity"
        );
    }
}
