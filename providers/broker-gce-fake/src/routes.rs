//! The URL map: Compute v1 under `/compute/v1` (bearer token required), the OAuth token
//! endpoint at `/token`, the metadata server under `/computeMetadata/v1`. Every request and its
//! status (and, for errors, the message) goes into the request log.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use crate::discovery::MethodRef;
use crate::envelope::ApiError;
use crate::state::Shared;
use crate::{RecordedRequest, auth, catalog_api, compute, firewalls, metadata, operations};

const fn method(resource: &'static str, method: &'static str) -> MethodRef {
    MethodRef { resource, method }
}

pub(crate) const INSTANCES_INSERT: MethodRef = method("instances", "insert");
pub(crate) const INSTANCES_GET: MethodRef = method("instances", "get");
pub(crate) const INSTANCES_LIST: MethodRef = method("instances", "list");
pub(crate) const INSTANCES_AGGREGATED_LIST: MethodRef = method("instances", "aggregatedList");
pub(crate) const INSTANCES_DELETE: MethodRef = method("instances", "delete");
pub(crate) const INSTANCES_STOP: MethodRef = method("instances", "stop");
pub(crate) const INSTANCES_START: MethodRef = method("instances", "start");
pub(crate) const ZONE_OPERATIONS_GET: MethodRef = method("zoneOperations", "get");
pub(crate) const ZONE_OPERATIONS_WAIT: MethodRef = method("zoneOperations", "wait");
pub(crate) const GLOBAL_OPERATIONS_GET: MethodRef = method("globalOperations", "get");
pub(crate) const GLOBAL_OPERATIONS_WAIT: MethodRef = method("globalOperations", "wait");
pub(crate) const FIREWALLS_INSERT: MethodRef = method("firewalls", "insert");
pub(crate) const FIREWALLS_GET: MethodRef = method("firewalls", "get");
pub(crate) const FIREWALLS_LIST: MethodRef = method("firewalls", "list");
pub(crate) const FIREWALLS_DELETE: MethodRef = method("firewalls", "delete");
pub(crate) const IMAGES_GET_FROM_FAMILY: MethodRef = method("images", "getFromFamily");
pub(crate) const IMAGES_GET: MethodRef = method("images", "get");
pub(crate) const MACHINE_TYPES_GET: MethodRef = method("machineTypes", "get");
pub(crate) const ACCELERATOR_TYPES_GET: MethodRef = method("acceleratorTypes", "get");

/// Every discovery method the fake serves; loading the document fails if one is missing.
pub(crate) const METHODS: &[MethodRef] = &[
    INSTANCES_INSERT,
    INSTANCES_GET,
    INSTANCES_LIST,
    INSTANCES_AGGREGATED_LIST,
    INSTANCES_DELETE,
    INSTANCES_STOP,
    INSTANCES_START,
    ZONE_OPERATIONS_GET,
    ZONE_OPERATIONS_WAIT,
    GLOBAL_OPERATIONS_GET,
    GLOBAL_OPERATIONS_WAIT,
    FIREWALLS_INSERT,
    FIREWALLS_GET,
    FIREWALLS_LIST,
    FIREWALLS_DELETE,
    IMAGES_GET_FROM_FAMILY,
    IMAGES_GET,
    MACHINE_TYPES_GET,
    ACCELERATOR_TYPES_GET,
];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let zone = "/projects/{project}/zones/{zone}";
    let compute = Router::new()
        .route(&format!("{zone}/instances"), post(compute::insert).get(compute::list))
        .route(
            &format!("{zone}/instances/{{instance}}"),
            get(compute::get).delete(compute::delete),
        )
        .route(&format!("{zone}/instances/{{instance}}/stop"), post(compute::stop))
        .route(&format!("{zone}/instances/{{instance}}/start"), post(compute::start))
        .route(
            "/projects/{project}/aggregated/instances",
            get(compute::aggregated_list),
        )
        .route(&format!("{zone}/operations/{{operation}}"), get(operations::zone_get))
        .route(
            &format!("{zone}/operations/{{operation}}/wait"),
            post(operations::zone_wait),
        )
        .route(
            "/projects/{project}/global/operations/{operation}",
            get(operations::global_get),
        )
        .route(
            "/projects/{project}/global/operations/{operation}/wait",
            post(operations::global_wait),
        )
        .route(
            "/projects/{project}/global/firewalls",
            post(firewalls::insert).get(firewalls::list),
        )
        .route(
            "/projects/{project}/global/firewalls/{firewall}",
            get(firewalls::get).delete(firewalls::delete),
        )
        .route(
            "/projects/{project}/global/images/family/{family}",
            get(catalog_api::get_from_family),
        )
        .route("/projects/{project}/global/images/{image}", get(catalog_api::get))
        .route(
            &format!("{zone}/machineTypes/{{machine_type}}"),
            get(catalog_api::machine_type),
        )
        .route(
            &format!("{zone}/acceleratorTypes/{{accelerator_type}}"),
            get(catalog_api::accelerator_type),
        )
        .fallback(unimplemented)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            auth::require_bearer,
        ));
    let metadata = Router::new()
        .route("/", get(metadata::root))
        .route("/computeMetadata/v1/", get(metadata::root))
        .route(
            "/computeMetadata/v1/instance/service-accounts/{account}/token",
            get(metadata::token),
        )
        .route(
            "/computeMetadata/v1/instance/service-accounts/{account}/email",
            get(metadata::email),
        )
        .route("/computeMetadata/v1/project/project-id", get(metadata::project_id))
        .route(
            "/computeMetadata/v1/project/numeric-project-id",
            get(metadata::numeric_project_id),
        );
    Router::new()
        .nest("/compute/v1", compute)
        .route("/token", post(auth::token_endpoint))
        .merge(metadata)
        .fallback(unimplemented)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), record))
        .with_state(shared)
}

/// A clear 404 for anything the fake does not serve, so a provider calling an unexpected
/// method finds out which.
async fn unimplemented(method: Method, uri: Uri) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "global",
        "notFound",
        format!("broker-gce-fake does not serve {method} {}", uri.path()),
    )
    .into_response()
}

/// Logs each request with its status and, for errors, the message of the response.
async fn record(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let response = next.run(request).await;
    let status = response.status();
    let (response, error) = if status.is_client_error() || status.is_server_error() {
        let (parts, body) = response.into_parts();
        // Error bodies are small JSON or text; 1 MiB is far above any of them.
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
        let error = error_message(&bytes);
        (Response::from_parts(parts, Body::from(bytes)), Some(error))
    } else {
        (response, None)
    };
    shared.state().requests.push(RecordedRequest {
        method,
        path,
        query,
        status: status.as_u16(),
        error,
    });
    response
}

/// `error.message` of a Compute error, `error_description` of an OAuth one, else the text.
fn error_message(bytes: &[u8]) -> String {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(body) => body
            .pointer("/error/message")
            .or_else(|| body.get("error_description"))
            .and_then(Value::as_str)
            .map_or_else(|| body.to_string(), str::to_owned),
        Err(_) => String::from_utf8_lossy(bytes).trim().to_owned(),
    }
}
