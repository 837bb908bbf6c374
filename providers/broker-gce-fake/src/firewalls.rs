//! `firewalls.*` (global): insert, get, list, delete. Mutations return global operations.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, Uri};
use axum::response::Json;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::call::Call;
use crate::envelope::ApiError;
use crate::instance_rules::parse_reference;
use crate::operations::{NewOperation, Scope};
use crate::routes;
use crate::state::Shared;

fn invalid(field: &str, value: &str, why: &str) -> ApiError {
    ApiError::invalid(format!("Invalid value for field 'resource.{field}': '{value}'. {why}"))
}

fn not_found(shared: &Shared, name: &str) -> ApiError {
    ApiError::not_found(&format!("projects/{}/global/firewalls/{name}", shared.options.project))
}

/// The rules the API applies beyond the schema: the network exists, exactly one of `allowed` or
/// `denied`, each with a protocol, ports only for port protocols, priority in 0..=65535.
fn check(shared: &Shared, body: &Value) -> Result<(), ApiError> {
    if let Some(network) = body.get("network").and_then(Value::as_str) {
        let known = parse_reference(shared, network).is_some_and(|(project, path)| {
            project.is_none_or(|p| p == shared.options.project) && path == "global/networks/default"
        });
        if !known {
            return Err(ApiError::not_found(&format!(
                "projects/{}/global/networks/{}",
                shared.options.project,
                { network.rsplit('/').next().unwrap_or(network) }
            )));
        }
    }
    let allowed = body.get("allowed").and_then(Value::as_array);
    let denied = body.get("denied").and_then(Value::as_array);
    let rules = match (allowed, denied) {
        (Some(rules), None) => ("allowed", rules),
        (None, Some(rules)) => ("denied", rules),
        _ => {
            return Err(invalid(
                "allowed",
                "",
                "Exactly one of 'allowed' or 'denied' must be specified.",
            ));
        }
    };
    for (i, rule) in rules.1.iter().enumerate() {
        let Some(protocol) = rule.get("IPProtocol").and_then(Value::as_str) else {
            return Err(ApiError::required(format!(
                "Required field 'resource.{}[{i}].IPProtocol' not specified",
                rules.0
            )));
        };
        let has_ports = rule
            .get("ports")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
        if has_ports && !matches!(protocol, "tcp" | "udp" | "sctp" | "6" | "17" | "132") {
            return Err(invalid(
                &format!("{}[{i}].ports", rules.0),
                "",
                "Ports may only be specified for tcp, udp and sctp.",
            ));
        }
    }
    if let Some(priority) = body.get("priority").and_then(Value::as_i64)
        && !(0..=65_535).contains(&priority)
    {
        return Err(invalid(
            "priority",
            &priority.to_string(),
            "Must be between 0 and 65535.",
        ));
    }
    Ok(())
}

pub(crate) async fn insert(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::FIREWALLS_INSERT, &method, &uri);
    let query = call.params(&[("project", &project)], query.as_deref())?;
    let body = call.body(&bytes)?;
    call.own_project(&project)?;
    let request_id = query.get("requestId");
    if let Some(op) = shared.state().replay(&shared, request_id) {
        return Ok(Json(op));
    }
    check(&shared, &body)?;
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut state = shared.state();
    if let Some(op) = state.replay(&shared, request_id) {
        return Ok(Json(op));
    }
    if state.firewalls.contains_key(&name) {
        return Err(ApiError::already_exists(&format!(
            "projects/{project}/global/firewalls/{name}"
        )));
    }
    let id = state.ids.resource_id();
    let mut firewall = body.as_object().cloned().unwrap_or_default();
    let link = shared.link(&format!("global/firewalls/{name}"));
    for (key, value) in [
        ("kind", json!("compute#firewall")),
        ("id", json!(id.to_string())),
        ("creationTimestamp", json!(shared.clock.rfc3339(Instant::now()))),
        ("network", json!(shared.link("global/networks/default"))),
        ("selfLink", json!(link)),
    ] {
        firewall.insert(key.to_owned(), value);
    }
    firewall.entry("direction").or_insert(json!("INGRESS"));
    firewall.entry("priority").or_insert(json!(1000));
    firewall.entry("disabled").or_insert(json!(false));
    firewall.entry("logConfig").or_insert(json!({"enable": false}));
    if firewall.get("direction") == Some(&json!("INGRESS")) {
        firewall.entry("sourceRanges").or_insert(json!(["0.0.0.0/0"]));
    }
    state.firewalls.insert(name, Value::Object(firewall));
    let op = state.create_operation(
        &shared,
        NewOperation {
            scope: Scope::Global,
            operation_type: "insert",
            target_link: link,
            target_id: id,
            request_id,
            error: None,
            immediate: false,
        },
    );
    Ok(Json(op))
}

pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path((project, firewall)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::FIREWALLS_GET, &method, &uri);
    call.params(&[("project", &project), ("firewall", &firewall)], query.as_deref())?;
    call.no_body(&bytes)?;
    call.own_project(&project)?;
    let state = shared.state();
    state
        .firewalls
        .get(&firewall)
        .cloned()
        .map(Json)
        .ok_or_else(|| not_found(&shared, &firewall))
}

pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Path(project): Path<String>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::FIREWALLS_LIST, &method, &uri);
    let query = call.params(&[("project", &project)], query.as_deref())?;
    call.no_body(&bytes)?;
    call.own_project(&project)?;
    let filter = match query.get("filter") {
        None => None,
        Some(text) => {
            let schema = shared.discovery.schema("Firewall");
            let known = |field: &str| {
                schema
                    .and_then(|s| s.get("properties"))
                    .and_then(|p| p.get(field))
                    .is_some()
            };
            Some(crate::filter::parse(text, &known).map_err(|why| {
                call.reject(&[crate::params::invalid_field(
                    "filter",
                    text,
                    &format!("Invalid list filter expression: {why}."),
                )])
            })?)
        }
    };
    let items: Vec<Value> = shared
        .state()
        .firewalls
        .values()
        .filter(|f| filter.as_ref().is_none_or(|filter| filter.matches(f)))
        .cloned()
        .collect();
    let mut list = json!({
        "kind": "compute#firewallList",
        "id": format!("projects/{project}/global/firewalls"),
        "selfLink": shared.link("global/firewalls"),
    });
    if !items.is_empty() {
        list["items"] = Value::Array(items);
    }
    Ok(Json(list))
}

pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((project, firewall)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::FIREWALLS_DELETE, &method, &uri);
    let query = call.params(&[("project", &project), ("firewall", &firewall)], query.as_deref())?;
    call.no_body(&bytes)?;
    call.own_project(&project)?;
    let request_id = query.get("requestId");
    let mut state = shared.state();
    if let Some(op) = state.replay(&shared, request_id) {
        return Ok(Json(op));
    }
    let Some(removed) = state.firewalls.remove(&firewall) else {
        return Err(not_found(&shared, &firewall));
    };
    let target_id = removed
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse().ok())
        .unwrap_or_default();
    let op = state.create_operation(
        &shared,
        NewOperation {
            scope: Scope::Global,
            operation_type: "delete",
            target_link: shared.link(&format!("global/firewalls/{firewall}")),
            target_id,
            request_id,
            error: None,
            immediate: false,
        },
    );
    Ok(Json(op))
}
