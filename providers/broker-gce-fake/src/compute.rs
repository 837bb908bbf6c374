//! `instances.*`: insert, get, list, aggregatedList, delete, stop, start.
//!
//! Status timeline for an operation delay `d` (see [`crate::FakeOptions::operation_delay`]):
//! insert is `PROVISIONING`, `STAGING` at d/2, its operation `DONE` at d, `RUNNING` at 3d/2 (as
//! on the real API, a done insert may still be staging); stop is `STOPPING`, then `TERMINATED`
//! with its external address released at d; start is `PROVISIONING`, `STAGING` with a new
//! external address at d/2, `RUNNING` at 3d/2; delete is `STOPPING`, then gone at d.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, Uri};
use axum::response::Json;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::call::Call;
use crate::catalog;
use crate::envelope::ApiError;
use crate::filter::{self, Filter};
use crate::instance_resource;
use crate::instance_rules;
use crate::operations::{NewOperation, Scope};
use crate::params::{Query, invalid_field};
use crate::routes;
use crate::state::{InstanceRecord, Shared, Step};

type ZonePath = Path<(String, String)>;
type InstancePath = Path<(String, String, String)>;

/// 404 for a zone name that is not of the `region-x` shape.
pub(crate) fn check_zone(shared: &Shared, zone: &str) -> Result<(), ApiError> {
    if catalog::is_zone(zone) {
        Ok(())
    } else {
        Err(ApiError::not_found(&format!(
            "projects/{}/zones/{zone}",
            shared.options.project
        )))
    }
}

fn instance_not_found(shared: &Shared, zone: &str, instance: &str) -> ApiError {
    ApiError::not_found(&format!(
        "projects/{}/zones/{zone}/instances/{instance}",
        shared.options.project
    ))
}

/// The key of `instance` (a name, or a numeric id as the API also accepts) in `zone`.
fn find_key(shared: &Shared, zone: &str, instance: &str) -> Result<(String, String), ApiError> {
    let state = shared.state();
    let key = (zone.to_owned(), instance.to_owned());
    if state.instances.contains_key(&key) {
        return Ok(key);
    }
    state
        .instances
        .iter()
        .find(|((z, _), record)| z == zone && record.resource.get("id").and_then(Value::as_str) == Some(instance))
        .map(|(key, _)| key.clone())
        .ok_or_else(|| instance_not_found(shared, zone, instance))
}

pub(crate) async fn insert(
    State(shared): State<Arc<Shared>>,
    Path((project, zone)): ZonePath,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::INSTANCES_INSERT, &method, &uri);
    let query = call.params(&[("project", &project), ("zone", &zone)], query.as_deref())?;
    let body = call.body(&bytes)?;
    call.own_project(&project)?;
    check_zone(&shared, &zone)?;
    let request_id = query.get("requestId");
    if let Some(op) = shared.state().replay(&shared, request_id) {
        return Ok(Json(op));
    }
    let hidden: Vec<String> = shared
        .state()
        .hidden_machine_types
        .iter()
        .filter(|(z, _)| *z == zone)
        .map(|(_, t)| t.clone())
        .collect();
    let plan = instance_rules::check_insert(&shared, &zone, &body, &|t| hidden.iter().any(|h| h == t))?;
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let now = Instant::now();
    let mut state = shared.state();
    // Checked again under the lock: two retries with one requestId may race.
    if let Some(op) = state.replay(&shared, request_id) {
        return Ok(Json(op));
    }
    let key = (zone.clone(), name.clone());
    if state.instances.contains_key(&key) {
        return Err(ApiError::already_exists(&format!(
            "projects/{project}/zones/{zone}/instances/{name}"
        )));
    }
    let target_link = shared.link(&format!("zones/{zone}/instances/{name}"));
    if let Some(error) = state.take_fault(&project, &zone, false) {
        // A failed insert leaves no instance behind: `get` answers 404, as on the real API.
        let target_id = state.ids.resource_id();
        let op = state.create_operation(
            &shared,
            NewOperation {
                scope: Scope::Zone(zone),
                operation_type: "insert",
                target_link,
                target_id,
                request_id,
                error: Some(error),
                immediate: false,
            },
        );
        return Ok(Json(op));
    }
    let resource = instance_resource::build(&shared, &mut state, &zone, &body, &plan, now);
    let target_id = resource
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse().ok())
        .unwrap_or_default();
    let d = shared.options.operation_delay;
    state.instances.insert(
        key,
        InstanceRecord {
            zone: zone.clone(),
            name,
            resource,
            pending: [
                (now + d / 2, Step::Status("STAGING")),
                (now + d * 3 / 2, Step::Status("RUNNING")),
            ]
            .into(),
        },
    );
    let op = state.create_operation(
        &shared,
        NewOperation {
            scope: Scope::Zone(zone),
            operation_type: "insert",
            target_link,
            target_id,
            request_id,
            error: None,
            immediate: false,
        },
    );
    Ok(Json(op))
}

pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path((project, zone, instance)): InstancePath,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::INSTANCES_GET, &method, &uri);
    call.params(
        &[("project", &project), ("zone", &zone), ("instance", &instance)],
        query.as_deref(),
    )?;
    call.no_body(&bytes)?;
    call.own_project(&project)?;
    check_zone(&shared, &zone)?;
    let key = find_key(&shared, &zone, &instance)?;
    let state = shared.state();
    state
        .instances
        .get(&key)
        .map(|record| Json(record.resource.clone()))
        .ok_or_else(|| instance_not_found(&shared, &zone, &instance))
}

/// The filter of a list call, checked against the `Instance` schema's field names.
fn instance_filter(shared: &Shared, call: &Call<'_>, query: &Query) -> Result<Option<Filter>, ApiError> {
    let Some(text) = query.get("filter") else {
        return Ok(None);
    };
    let schema = shared.discovery.schema("Instance");
    let known = |field: &str| {
        schema
            .and_then(|s| s.get("properties"))
            .and_then(|p| p.get(field))
            .is_some()
    };
    filter::parse(text, &known).map(Some).map_err(|why| {
        call.reject(&[invalid_field(
            "filter",
            text,
            &format!("Invalid list filter expression: {why}."),
        )])
    })
}

/// `maxResults` and the offset encoded in `pageToken`.
fn page(call: &Call<'_>, query: &Query) -> Result<(usize, usize), ApiError> {
    let max = query
        .get("maxResults")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(500);
    let max = if max == 0 { 500 } else { max };
    let offset = match query.get("pageToken") {
        None | Some("") => 0,
        Some(token) => token
            .strip_prefix("fake-page-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| call.reject(&[invalid_field("pageToken", token, "Invalid page token.")]))?,
    };
    if let Some(order) = query.get("orderBy")
        && order != "name"
        && order != "creationTimestamp desc"
    {
        return Err(ApiError::invalid(format!(
            "Invalid value for field 'orderBy': '{order}'. Sorting by field '{order}' is not supported by this fake \
             (it supports `name` and `creationTimestamp desc`)."
        )));
    }
    Ok((offset, max))
}

fn sort(items: &mut [Value], query: &Query) {
    let field = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    if query.get("orderBy") == Some("creationTimestamp desc") {
        items.sort_by_key(|v| std::cmp::Reverse(field(v, "creationTimestamp")));
    } else {
        items.sort_by_key(|v| field(v, "name"));
    }
}

pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path((project, zone)): ZonePath,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::INSTANCES_LIST, &method, &uri);
    let query = call.params(&[("project", &project), ("zone", &zone)], query.as_deref())?;
    call.no_body(&bytes)?;
    let filter = instance_filter(&shared, &call, &query)?;
    let (offset, max) = page(&call, &query)?;
    call.own_project(&project)?;
    check_zone(&shared, &zone)?;
    let mut items: Vec<Value> = shared
        .state()
        .instances
        .values()
        .filter(|r| r.zone == zone && filter.as_ref().is_none_or(|f| f.matches(&r.resource)))
        .map(|r| r.resource.clone())
        .collect();
    sort(&mut items, &query);
    let total = items.len();
    let page_items: Vec<Value> = items.into_iter().skip(offset).take(max).collect();
    let mut list = json!({
        "kind": "compute#instanceList",
        "id": format!("projects/{project}/zones/{zone}/instances"),
        "selfLink": shared.link(&format!("zones/{zone}/instances")),
    });
    if !page_items.is_empty() {
        list["items"] = Value::Array(page_items);
    }
    if offset.saturating_add(max) < total {
        list["nextPageToken"] = json!(format!("fake-page-{}", offset + max));
    }
    Ok(Json(list))
}

pub(crate) async fn aggregated_list(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::INSTANCES_AGGREGATED_LIST, &method, &uri);
    let query = call.params(&[("project", &project)], query.as_deref())?;
    call.no_body(&bytes)?;
    let filter = instance_filter(&shared, &call, &query)?;
    let (offset, max) = page(&call, &query)?;
    call.own_project(&project)?;
    let (mut zones, mut matching): (Vec<String>, Vec<(String, Value)>) = {
        let state = shared.state();
        let zones = state.instances.values().map(|r| r.zone.clone()).collect();
        let matching = state
            .instances
            .values()
            .filter(|r| filter.as_ref().is_none_or(|f| f.matches(&r.resource)))
            .map(|r| (r.zone.clone(), r.resource.clone()))
            .collect();
        (zones, matching)
    };
    zones.extend(catalog::LISTED_ZONES.iter().map(|z| (*z).to_owned()));
    zones.sort();
    zones.dedup();
    matching.sort_by(|a, b| a.0.cmp(&b.0));
    let total = matching.len();
    let mut items = Map::new();
    for (zone, instance) in matching.into_iter().skip(offset).take(max) {
        let scope = items
            .entry(format!("zones/{zone}"))
            .or_insert_with(|| json!({"instances": []}));
        if let Some(instances) = scope.get_mut("instances").and_then(Value::as_array_mut) {
            instances.push(instance);
        }
    }
    for zone in zones {
        let scope = format!("zones/{zone}");
        items.entry(scope.clone()).or_insert_with(|| {
            json!({"warning": {
                "code": "NO_RESULTS_ON_PAGE",
                "message": format!("There are no results for scope '{scope}' on this page."),
                "data": [{"key": "scope", "value": scope}],
            }})
        });
    }
    let mut list = json!({
        "kind": "compute#instanceAggregatedList",
        "id": format!("projects/{project}/aggregated/instances"),
        "items": items,
        "selfLink": shared.link("aggregated/instances"),
    });
    if offset.saturating_add(max) < total {
        list["nextPageToken"] = json!(format!("fake-page-{}", offset + max));
    }
    Ok(Json(list))
}

/// What a lifecycle call does to an instance.
#[derive(Debug, Clone, Copy)]
enum Action {
    Delete,
    Stop,
    Start,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Stop => "stop",
            Self::Start => "start",
        }
    }
}

fn lifecycle(
    shared: &Shared,
    action: Action,
    (project, zone, instance): (String, String, String),
    call: &Call<'_>,
    raw_query: Option<&str>,
    bytes: &[u8],
) -> Result<Json<Value>, ApiError> {
    let query = call.params(
        &[("project", &project), ("zone", &zone), ("instance", &instance)],
        raw_query,
    )?;
    call.no_body(bytes)?;
    call.own_project(&project)?;
    check_zone(shared, &zone)?;
    let request_id = query.get("requestId");
    if let Some(op) = shared.state().replay(shared, request_id) {
        return Ok(Json(op));
    }
    let key = find_key(shared, &zone, &instance)?;
    let now = Instant::now();
    let d: Duration = shared.options.operation_delay;
    let mut state = shared.state();
    if let Some(op) = state.replay(shared, request_id) {
        return Ok(Json(op));
    }
    // Settling under this lock may have removed it since `find_key`.
    let status = state
        .instances
        .get(&key)
        .map(|r| r.status().to_owned())
        .ok_or_else(|| instance_not_found(shared, &zone, &instance))?;
    let (target_link, target_id, protected) = {
        let resource = &state.instances[&key].resource;
        (
            resource
                .get("selfLink")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            resource
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| id.parse().ok())
                .unwrap_or_default(),
            resource.get("deletionProtection").and_then(Value::as_bool) == Some(true),
        )
    };
    let mut error = None;
    let mut immediate = false;
    match action {
        Action::Delete if protected => {
            return Err(ApiError::invalid(
                "Invalid resource usage: 'Resource cannot be deleted if it's protected against deletion.'.",
            ));
        }
        Action::Delete => reschedule(&mut state.instances, &key, "STOPPING", [(now + d, Step::Remove)]),
        Action::Stop if status == "TERMINATED" => immediate = true,
        Action::Stop => reschedule(
            &mut state.instances,
            &key,
            "STOPPING",
            [
                (now + d, Step::Status("TERMINATED")),
                (now + d, Step::ReleaseExternalIps),
            ],
        ),
        Action::Start if status != "TERMINATED" => immediate = true,
        Action::Start => {
            error = state.take_fault(&project, &zone, true);
            if error.is_none() {
                reschedule(
                    &mut state.instances,
                    &key,
                    "PROVISIONING",
                    [
                        (now + d / 2, Step::Status("STAGING")),
                        (now + d / 2, Step::AssignExternalIps),
                        (now + d * 3 / 2, Step::Status("RUNNING")),
                    ],
                );
            }
        }
    }
    let op = state.create_operation(
        shared,
        NewOperation {
            scope: Scope::Zone(zone),
            operation_type: action.name(),
            target_link,
            target_id,
            request_id,
            error,
            immediate,
        },
    );
    Ok(Json(op))
}

fn reschedule<const N: usize>(
    instances: &mut std::collections::BTreeMap<(String, String), InstanceRecord>,
    key: &(String, String),
    status_now: &'static str,
    steps: [(Instant, Step); N],
) {
    if let Some(record) = instances.get_mut(key) {
        record.resource["status"] = json!(status_now);
        record.reschedule(steps);
    }
}

pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path(path): InstancePath,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::INSTANCES_DELETE, &method, &uri);
    lifecycle(&shared, Action::Delete, path, &call, query.as_deref(), &bytes)
}

pub(crate) async fn stop(
    State(shared): State<Arc<Shared>>,
    Path(path): InstancePath,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::INSTANCES_STOP, &method, &uri);
    lifecycle(&shared, Action::Stop, path, &call, query.as_deref(), &bytes)
}

pub(crate) async fn start(
    State(shared): State<Arc<Shared>>,
    Path(path): InstancePath,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::INSTANCES_START, &method, &uri);
    lifecycle(&shared, Action::Start, path, &call, query.as_deref(), &bytes)
}
