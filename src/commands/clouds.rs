//! The clouds this build of broker can drive, their providers, and which of them have working
//! credentials right now.
//!
//! Checking credentials costs a network round trip (or, for AWS without credentials, probing the
//! instance metadata service), so commands ask only about the clouds they need: a launch about
//! the clouds of its plan, `down` about the clouds its clusters may have billed on.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use broker_docker::{DockerConfig, DockerProvider};
use broker_provider::{Cloud, Provider, ProviderError, Readiness};

use crate::provision::Providers;

/// How long one cloud's credential check may take before it counts as not working.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

/// The clouds this build has a provider for (the others have catalogs only).
pub(super) fn driven() -> Vec<Cloud> {
    let mut clouds = vec![Cloud::Docker];
    if cfg!(feature = "aws") {
        clouds.push(Cloud::Aws);
    }
    if cfg!(feature = "gcp") {
        clouds.push(Cloud::Gcp);
    }
    clouds
}

/// A provider for `cloud`, configured from the environment; `None` when this build has none.
// Async because cloud SDKs load their credential chain asynchronously.
#[allow(clippy::unused_async)]
pub(super) async fn provider(cloud: Cloud) -> Option<Result<Arc<dyn Provider>, ProviderError>> {
    match cloud {
        Cloud::Docker => Some(Ok(Arc::new(DockerProvider::new(DockerConfig::from_env())))),
        #[cfg(feature = "aws")]
        Cloud::Aws => Some(
            broker_aws::AwsProvider::new(broker_aws::AwsConfig::from_env()).map(|p| Arc::new(p) as Arc<dyn Provider>),
        ),
        #[cfg(feature = "gcp")]
        Cloud::Gcp => Some(
            broker_gcp::GceProvider::new(broker_gcp::GceConfig::from_env()).map(|p| Arc::new(p) as Arc<dyn Provider>),
        ),
        _ => None,
    }
}

/// One cloud's credential check.
pub(super) struct Checked {
    /// The cloud.
    pub(super) cloud: Cloud,
    /// Its provider, when this build has one.
    pub(super) provider: Option<Arc<dyn Provider>>,
    /// What the check found; `None` for a cloud without a provider.
    pub(super) outcome: Option<Result<Readiness, ProviderError>>,
}

/// Checks `clouds` concurrently.
pub(super) async fn check(clouds: &BTreeSet<Cloud>) -> Vec<Checked> {
    let checks = clouds.iter().map(|&cloud| async move {
        let provider = match provider(cloud).await {
            None => {
                return Checked {
                    cloud,
                    provider: None,
                    outcome: None,
                };
            }
            Some(Err(e)) => {
                return Checked {
                    cloud,
                    provider: None,
                    outcome: Some(Err(e)),
                };
            }
            Some(Ok(provider)) => provider,
        };
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, provider.check()).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::Transient {
                cloud,
                attempts: 1,
                source: format!("no answer within {} s", CHECK_TIMEOUT.as_secs()).into(),
            }),
        };
        Checked {
            cloud,
            provider: Some(provider),
            outcome: Some(outcome),
        }
    });
    futures_util::future::join_all(checks).await
}

/// The providers among `clouds` whose credentials work.
pub(super) async fn enabled(clouds: &BTreeSet<Cloud>) -> Providers {
    check(clouds)
        .await
        .into_iter()
        .filter_map(|c| match (c.provider, c.outcome) {
            (Some(p), Some(Ok(_))) => Some((c.cloud, p)),
            _ => None,
        })
        .collect()
}

/// Every cloud this build drives.
pub(super) fn all() -> BTreeSet<Cloud> {
    driven().into_iter().collect()
}
