//! Waiting for Compute operations (../shared/reference/cloud-apis.md §A.5).
//!
//! Every mutation answers with an `Operation`. `wait` is a server-side long poll of up to two
//! minutes that "might return after zero seconds", so it is called in a loop until the
//! operation is `DONE` or broker's own deadline passes; a `DONE` operation with `error.errors[]`
//! is the failure, classified like an HTTP error.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;

use crate::classify::{ApiError, ErrorEntry};
use crate::client::{CallError, Compute};

/// Longer than `wait`'s own two minutes, so the server, not the client, ends a long poll.
const WAIT_TIMEOUT: Duration = Duration::from_secs(150);

/// The fields of an `Operation` broker reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Operation {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) status: Option<String>,
    /// URL of the zone, for zonal operations.
    #[serde(default)]
    pub(crate) zone: Option<String>,
    /// URL of the region, for regional operations.
    #[serde(default)]
    pub(crate) region: Option<String>,
    #[serde(default)]
    pub(crate) target_link: Option<String>,
    #[serde(default)]
    pub(crate) error: Option<OperationErrors>,
    #[serde(default)]
    pub(crate) http_error_status_code: Option<u16>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct OperationErrors {
    #[serde(default)]
    pub(crate) errors: Vec<ErrorEntry>,
}

/// The last segment of a resource URL or path (`zones/us-central1-a` → `us-central1-a`).
pub(crate) fn last_segment(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

impl Operation {
    fn is_done(&self) -> bool {
        self.status.as_deref() == Some("DONE")
    }

    /// The operation's failure, if it finished with one.
    pub(crate) fn failure(&self) -> Option<ApiError> {
        let errors = self.error.as_ref().filter(|e| !e.errors.is_empty())?;
        Some(ApiError::from_operation(&errors.errors, self.http_error_status_code))
    }

    /// `projects/{p}/zones/{z}/operations/{name}` or its regional or global twin.
    fn path(&self, project: &str) -> String {
        let scope = match (&self.zone, &self.region) {
            (Some(zone), _) => format!("zones/{}", last_segment(zone)),
            (None, Some(region)) => format!("regions/{}", last_segment(region)),
            (None, None) => "global".to_owned(),
        };
        format!("projects/{project}/{scope}/operations/{}", self.name)
    }
}

impl Compute {
    /// Waits until `operation` is `DONE` and returns its failure as [`CallError::Api`]; gives up
    /// at `deadline` with [`CallError::Unreachable`] (classified transient: it may yet finish).
    pub(crate) async fn wait(
        &self,
        project: &str,
        mut operation: Operation,
        deadline: Instant,
        poll: Duration,
    ) -> Result<Operation, CallError> {
        let path = operation.path(project);
        loop {
            if operation.is_done() {
                return match operation.failure() {
                    Some(error) => Err(CallError::Api {
                        what: format!(
                            "operation {} on {}",
                            operation.name,
                            operation.target_link.as_deref().map_or("?", last_segment)
                        ),
                        error,
                        attempts: 1,
                    }),
                    None => Ok(operation),
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(CallError::Unreachable {
                    what: format!("operation {}", operation.name),
                    message: format!(
                        "still {} at the deadline",
                        operation.status.as_deref().unwrap_or("PENDING")
                    ),
                    attempts: 1,
                });
            }
            let timeout = WAIT_TIMEOUT.min(deadline - now + Duration::from_secs(1));
            let started = Instant::now();
            operation = self
                .call(Method::POST, &format!("{path}/wait"), &[], None, timeout)
                .await?;
            // `wait` may return at once without progress; do not spin on it.
            if !operation.is_done() && started.elapsed() < poll {
                tokio::time::sleep(poll).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Operation {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn paths_follow_the_operation_scope() {
        let zonal = parse(
            r#"{"name":"operation-1","status":"RUNNING",
            "zone":"https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a"}"#,
        );
        assert_eq!(zonal.path("p"), "projects/p/zones/us-central1-a/operations/operation-1");
        let global = parse(r#"{"name":"operation-2","status":"PENDING"}"#);
        assert_eq!(global.path("p"), "projects/p/global/operations/operation-2");
        let regional = parse(r#"{"name":"op-3","region":"projects/p/regions/us-east1"}"#);
        assert_eq!(regional.path("p"), "projects/p/regions/us-east1/operations/op-3");
    }

    #[test]
    fn a_done_operation_with_errors_is_a_failure() {
        let failed = parse(
            r#"{"kind":"compute#operation","name":"operation-1","operationType":"insert","status":"DONE",
            "targetLink":"https://www.googleapis.com/compute/v1/projects/P/zones/us-central1-a/instances/w-1",
            "error":{"errors":[{"code":"ZONE_RESOURCE_POOL_EXHAUSTED","message":"no room",
              "errorDetails":[{"help":{"links":[]}}]}]},
            "httpErrorStatusCode":503,"httpErrorMessage":"SERVICE UNAVAILABLE"}"#,
        );
        let error = failed.failure().unwrap();
        assert_eq!(error.status, Some(503));
        assert_eq!(error.codes, ["ZONE_RESOURCE_POOL_EXHAUSTED"]);
        assert!(parse(r#"{"name":"o","status":"DONE"}"#).failure().is_none());
        assert!(
            parse(r#"{"name":"o","status":"DONE","error":{"errors":[]}}"#)
                .failure()
                .is_none()
        );
    }
}
