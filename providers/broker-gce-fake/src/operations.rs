//! Compute's long-running `Operation`s: every mutating call returns one, `RUNNING` until the
//! fake's operation delay has passed and `DONE` after, with failures reported inside it
//! (`error.errors[]`, `httpErrorStatusCode`) as the real API reports capacity and quota errors.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, Uri};
use axum::response::Json;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::call::Call;
use crate::envelope::ApiError;
use crate::routes;
use crate::state::{Shared, State as FakeState};

/// Where an operation lives: a zone (instances) or the project (firewalls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    Zone(String),
    Global,
}

/// A failure reported in a `DONE` operation.
#[derive(Debug, Clone)]
pub(crate) struct OperationError {
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) details: Vec<Value>,
    pub(crate) http_status: u16,
    pub(crate) http_message: &'static str,
}

impl OperationError {
    /// A stockout, as cloud-apis.md §A.6 quotes it.
    pub(crate) fn capacity(project: &str, zone: &str, with_details: bool) -> Self {
        let (code, message) = if with_details {
            (
                "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                format!(
                    "The zone 'projects/{project}/zones/{zone}' does not have enough resources available to fulfill \
                     the request. '(resource type:compute)'."
                ),
            )
        } else {
            (
                "ZONE_RESOURCE_POOL_EXHAUSTED",
                format!(
                    "The zone 'projects/{project}/zones/{zone}' does not have enough resources available to fulfill \
                     the request.  Try a different zone, or try again later."
                ),
            )
        };
        Self {
            code: code.to_owned(),
            details: vec![
                json!({"help": {"links": [{
                    "description": "Troubleshooting documentation",
                    "url": "https://cloud.google.com/compute/docs/resource-error",
                }]}}),
                json!({"localizedMessage": {"locale": "en-US", "message": message}}),
            ],
            message,
            http_status: 503,
            http_message: "SERVICE UNAVAILABLE",
        }
    }

    /// A quota refusal naming `metric`; project-wide metrics (`GPUS_ALL_REGIONS`) say "globally".
    pub(crate) fn quota(metric: &str, region: &str) -> Self {
        let global = metric.ends_with("ALL_REGIONS");
        let message = if global {
            format!("Quota '{metric}' exceeded.  Limit: 0.0 globally.")
        } else {
            format!("Quota '{metric}' exceeded.  Limit: 0.0 in region {region}.")
        };
        let mut quota_info = json!({
            "metricName": format!("compute.googleapis.com/{}", metric.to_ascii_lowercase()),
            "limitName": format!("{}-per-project{}", metric.replace('_', "-"), if global { "" } else { "-region" }),
            "limit": 0.0,
        });
        if !global {
            quota_info["dimensions"] = json!({ "region": region });
        }
        Self {
            code: "QUOTA_EXCEEDED".to_owned(),
            details: vec![json!({"quotaInfo": quota_info})],
            message,
            http_status: 403,
            http_message: "FORBIDDEN",
        }
    }
}

/// An operation as stored.
#[derive(Debug, Clone)]
pub(crate) struct OperationRecord {
    pub(crate) name: String,
    pub(crate) id: u64,
    pub(crate) scope: Scope,
    pub(crate) operation_type: String,
    pub(crate) target_link: String,
    pub(crate) target_id: u64,
    pub(crate) user: String,
    pub(crate) client_operation_id: Option<String>,
    pub(crate) inserted: Instant,
    pub(crate) done_at: Instant,
    pub(crate) error: Option<OperationError>,
}

/// What a new operation is about.
#[derive(Debug)]
pub(crate) struct NewOperation<'a> {
    pub(crate) scope: Scope,
    pub(crate) operation_type: &'a str,
    pub(crate) target_link: String,
    pub(crate) target_id: u64,
    pub(crate) request_id: Option<&'a str>,
    pub(crate) error: Option<OperationError>,
    /// Done at once (a no-op such as stopping a stopped VM) rather than after the delay.
    pub(crate) immediate: bool,
}

impl OperationRecord {
    pub(crate) fn is_done(&self, now: Instant) -> bool {
        now >= self.done_at
    }

    pub(crate) fn relative_link(&self) -> String {
        match &self.scope {
            Scope::Zone(zone) => format!("zones/{zone}/operations/{}", self.name),
            Scope::Global => format!("global/operations/{}", self.name),
        }
    }

    pub(crate) fn to_json(&self, shared: &Shared, now: Instant) -> Value {
        let done = self.is_done(now);
        let mut op = json!({
            "kind": "compute#operation",
            "id": self.id.to_string(),
            "name": self.name,
            "operationType": self.operation_type,
            "targetLink": self.target_link,
            "targetId": self.target_id.to_string(),
            "status": if done { "DONE" } else { "RUNNING" },
            "user": self.user,
            "progress": if done { 100 } else { 0 },
            "insertTime": shared.clock.rfc3339(self.inserted),
            "startTime": shared.clock.rfc3339(self.inserted),
            "selfLink": shared.link(&self.relative_link()),
        });
        if let Scope::Zone(zone) = &self.scope {
            op["zone"] = json!(shared.link(&format!("zones/{zone}")));
        }
        if let Some(request_id) = &self.client_operation_id {
            op["clientOperationId"] = json!(request_id);
        }
        if done {
            op["endTime"] = json!(shared.clock.rfc3339(self.done_at));
            if let Some(error) = &self.error {
                op["error"] = json!({"errors": [{
                    "code": error.code,
                    "message": error.message,
                    "errorDetails": error.details,
                }]});
                op["httpErrorStatusCode"] = json!(error.http_status);
                op["httpErrorMessage"] = json!(error.http_message);
            }
        }
        op
    }
}

impl FakeState {
    /// Records a new operation (and its `requestId`) and returns its JSON.
    pub(crate) fn create_operation(&mut self, shared: &Shared, new: NewOperation<'_>) -> Value {
        let now = Instant::now();
        let record = OperationRecord {
            name: self.ids.operation_name(shared.clock.unix(now)),
            id: self.ids.resource_id(),
            scope: new.scope,
            operation_type: new.operation_type.to_owned(),
            target_link: new.target_link,
            target_id: new.target_id,
            user: shared.options.service_account_email.clone(),
            client_operation_id: new.request_id.map(str::to_owned),
            inserted: now,
            done_at: if new.immediate {
                now
            } else {
                now + shared.options.operation_delay
            },
            error: new.error,
        };
        let json = record.to_json(shared, now);
        if let Some(request_id) = new.request_id {
            self.request_ids.insert(request_id.to_owned(), record.name.clone());
        }
        self.operations.insert(record.name.clone(), record);
        json
    }

    /// The operation an earlier request with this `requestId` created, as it is now.
    pub(crate) fn replay(&self, shared: &Shared, request_id: Option<&str>) -> Option<Value> {
        let name = self.request_ids.get(request_id?)?;
        let record = self.operations.get(name)?;
        Some(record.to_json(shared, Instant::now()))
    }
}

type OperationPath = Path<(String, String, String)>;

fn find(shared: &Shared, scope: &Scope, name: &str) -> Result<OperationRecord, ApiError> {
    let state = shared.state();
    state
        .operations
        .get(name)
        .filter(|op| op.scope == *scope)
        .cloned()
        .ok_or_else(|| {
            let relative = match scope {
                Scope::Zone(zone) => format!("zones/{zone}/operations/{name}"),
                Scope::Global => format!("global/operations/{name}"),
            };
            ApiError::not_found(&format!("projects/{}/{relative}", shared.options.project))
        })
}

/// Blocks until the operation is done or the wait limit has passed, like `zoneOperations.wait`.
async fn wait_for(shared: &Shared, scope: &Scope, name: &str) -> Result<Value, ApiError> {
    let op = find(shared, scope, name)?;
    let deadline = Instant::now() + shared.options.wait_timeout;
    tokio::time::sleep_until(op.done_at.min(deadline)).await;
    let op = find(shared, scope, name)?;
    Ok(op.to_json(shared, Instant::now()))
}

pub(crate) async fn zone_get(
    State(shared): State<Arc<Shared>>,
    Path((project, zone, operation)): OperationPath,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::ZONE_OPERATIONS_GET, &method, &uri);
    call.params(
        &[("project", &project), ("zone", &zone), ("operation", &operation)],
        query.as_deref(),
    )?;
    call.no_body(&body)?;
    call.own_project(&project)?;
    let op = find(&shared, &Scope::Zone(zone), &operation)?;
    Ok(Json(op.to_json(&shared, Instant::now())))
}

pub(crate) async fn zone_wait(
    State(shared): State<Arc<Shared>>,
    Path((project, zone, operation)): OperationPath,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::ZONE_OPERATIONS_WAIT, &method, &uri);
    call.params(
        &[("project", &project), ("zone", &zone), ("operation", &operation)],
        query.as_deref(),
    )?;
    call.no_body(&body)?;
    call.own_project(&project)?;
    wait_for(&shared, &Scope::Zone(zone), &operation).await.map(Json)
}

pub(crate) async fn global_get(
    State(shared): State<Arc<Shared>>,
    Path((project, operation)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::GLOBAL_OPERATIONS_GET, &method, &uri);
    call.params(&[("project", &project), ("operation", &operation)], query.as_deref())?;
    call.no_body(&body)?;
    call.own_project(&project)?;
    let op = find(&shared, &Scope::Global, &operation)?;
    Ok(Json(op.to_json(&shared, Instant::now())))
}

pub(crate) async fn global_wait(
    State(shared): State<Arc<Shared>>,
    Path((project, operation)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::GLOBAL_OPERATIONS_WAIT, &method, &uri);
    call.params(&[("project", &project), ("operation", &operation)], query.as_deref())?;
    call.no_body(&body)?;
    call.own_project(&project)?;
    wait_for(&shared, &Scope::Global, &operation).await.map(Json)
}
