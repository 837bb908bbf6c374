//! The one place that reads Compute Engine's error codes and messages.
//!
//! GCE reports a failure in two shapes (../shared/reference/cloud-apis.md §A.6): a synchronous
//! HTTP error whose `error.errors[].reason` is camelCase (`quotaExceeded`, `notFound`), and an
//! operation that ends `DONE` with `error.errors[].code` in upper snake case
//! (`ZONE_RESOURCE_POOL_EXHAUSTED`, `QUOTA_EXCEEDED`). Both become an [`ApiError`], and
//! [`classify`] maps it to a [`Kind`]; the rest of the crate branches on kinds only. Where GCE
//! offers nothing but English (`GPUS_ALL_REGIONS` inside a quota message, "does not exist in
//! zone"), the text is matched here and nowhere else.

use std::fmt;

use broker_provider::{Cloud, FailoverScope, Location, ProviderError};
use serde::Deserialize;

/// A failure as Compute reported it: HTTP status (absent for an operation without one), the
/// codes or reasons of its entries, and the first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: Option<u16>,
    pub(crate) codes: Vec<String>,
    pub(crate) message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codes = self.codes.join(", ");
        match (self.status, codes.is_empty()) {
            (Some(status), false) => write!(f, "HTTP {status} {codes}: {}", self.message),
            (Some(status), true) => write!(f, "HTTP {status}: {}", self.message),
            (None, false) => write!(f, "{codes}: {}", self.message),
            (None, true) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ApiError {}

/// `{"error": {"code": 404, "message": "...", "errors": [{"reason": "notFound", ...}], "status": "NOT_FOUND"}}`
#[derive(Debug, Deserialize)]
struct HttpErrorBody {
    error: HttpError,
}

#[derive(Debug, Deserialize)]
struct HttpError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ErrorEntry>,
    /// The newer format's canonical code (`PERMISSION_DENIED`).
    #[serde(default)]
    status: Option<String>,
}

/// One entry of `error.errors[]`, in either shape.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorEntry {
    /// Operations: `ZONE_RESOURCE_POOL_EXHAUSTED`.
    #[serde(default)]
    pub(crate) code: Option<String>,
    /// HTTP errors: `quotaExceeded`.
    #[serde(default)]
    pub(crate) reason: Option<String>,
    #[serde(default)]
    pub(crate) message: String,
}

impl ApiError {
    /// Parses a non-2xx response body; a body that is not Google's error JSON (a proxy's HTML
    /// page, an empty 503) still gives the status and a shortened text.
    pub(crate) fn from_http(status: u16, body: &str) -> Self {
        match serde_json::from_str::<HttpErrorBody>(body) {
            Ok(HttpErrorBody { error }) => {
                let mut codes: Vec<String> = error
                    .errors
                    .iter()
                    .filter_map(|e| e.reason.clone().or_else(|| e.code.clone()))
                    .collect();
                codes.extend(error.status);
                let message = if error.message.is_empty() {
                    error.errors.first().map(|e| e.message.clone()).unwrap_or_default()
                } else {
                    error.message
                };
                Self {
                    status: Some(status),
                    codes,
                    message,
                }
            }
            Err(_) => Self {
                status: Some(status),
                codes: Vec::new(),
                message: body.trim().chars().take(300).collect(),
            },
        }
    }

    /// The error of an operation that finished `DONE` with `error.errors[]`.
    pub(crate) fn from_operation(entries: &[ErrorEntry], http_status: Option<u16>) -> Self {
        Self {
            status: http_status,
            codes: entries
                .iter()
                .filter_map(|e| e.code.clone().or_else(|| e.reason.clone()))
                .collect(),
            message: entries
                .iter()
                .map(|e| e.message.trim())
                .filter(|m| !m.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    fn has(&self, wanted: &[&str]) -> bool {
        self.codes
            .iter()
            .any(|c| wanted.iter().any(|w| c.eq_ignore_ascii_case(w)))
    }
}

/// What a failure means to broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// No room for this machine here: try another zone.
    Capacity,
    /// A quota is used up; `metric` as GCE names it, `scope` what it rules out.
    Quota {
        metric: String,
        scope: FailoverScope,
    },
    NotFound,
    /// The name is taken: an earlier request with this name went through.
    AlreadyExists,
    /// Credentials are missing or lack a permission, or the API is disabled.
    Auth,
    /// Worth repeating after a pause: rate limits, 5xx, resources still settling.
    Transient,
    /// The request is wrong; repeating it anywhere repeats the mistake.
    Invalid,
    Other,
}

const CAPACITY: &[&str] = &[
    "ZONE_RESOURCE_POOL_EXHAUSTED",
    "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
    "REGION_RESOURCE_POOL_EXHAUSTED",
    // Seen when a Spot VM is preempted while it is being created; another zone may work.
    "UNSUPPORTED_OPERATION",
];
const QUOTA: &[&str] = &["QUOTA_EXCEEDED", "quotaExceeded"];
const TRANSIENT: &[&str] = &[
    "RESOURCE_NOT_READY",
    "RESOURCE_OPERATION_RATE_EXCEEDED",
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "backendError",
    "internalError",
    "UNAVAILABLE",
    "RESOURCE_EXHAUSTED",
];
const NOT_FOUND: &[&str] = &["notFound", "RESOURCE_NOT_FOUND", "NOT_FOUND"];
const ALREADY_EXISTS: &[&str] = &["alreadyExists", "RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"];
const AUTH: &[&str] = &[
    "forbidden",
    "accessNotConfigured",
    "insufficientPermissions",
    "authError",
    "IAM_PERMISSION_DENIED",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
    "SERVICE_DISABLED",
];
/// A 400 whose text says the zone does not offer the machine or GPU: not a broker bug, a place
/// to skip, like a stockout.
const NOT_OFFERED_HERE: &[&str] = &[
    "does not exist in zone",
    "is not available in zone",
    "not supported in zone",
    "is not available in the zone",
];

/// The meaning of a failure. First match wins; the order matters where GCE overloads a status
/// (403 is both a quota and a permission problem, 503 both a stockout and an outage).
pub(crate) fn classify(error: &ApiError) -> Kind {
    let status = error.status.unwrap_or(0);
    if error.has(CAPACITY) {
        return Kind::Capacity;
    }
    if error.has(QUOTA) {
        return quota(&error.message);
    }
    if error.has(TRANSIENT) {
        return Kind::Transient;
    }
    if error.has(NOT_FOUND) || status == 404 {
        return Kind::NotFound;
    }
    if error.has(ALREADY_EXISTS) || status == 409 {
        return Kind::AlreadyExists;
    }
    if error.has(AUTH) || status == 401 || status == 403 {
        return Kind::Auth;
    }
    if status == 429 || status >= 500 {
        return Kind::Transient;
    }
    let lower = error.message.to_lowercase();
    if NOT_OFFERED_HERE.iter().any(|needle| lower.contains(needle)) {
        return Kind::Capacity;
    }
    if status == 400 || error.has(&["invalid", "badRequest", "INVALID_FIELD_VALUE", "INVALID_ARGUMENT"]) {
        return Kind::Invalid;
    }
    Kind::Other
}

/// A quota failure: which metric, and how much of the plan it rules out. A project-wide metric
/// (`GPUS_ALL_REGIONS`, `CPUS_ALL_REGIONS`) stops all GCP work, as SkyPilot's `_gcp_handler` does;
/// a regional one (`NVIDIA_T4_GPUS ... in region us-central1`) only its region.
fn quota(message: &str) -> Kind {
    let metric = message
        .split_once("Quota '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(metric, _)| metric.to_owned())
        .or_else(|| {
            message
                .split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .find(|word| word.len() > 3 && word.contains('_'))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let project_wide = metric.ends_with("_ALL_REGIONS") || message.contains("GPUS_ALL_REGIONS");
    Kind::Quota {
        scope: if project_wide {
            FailoverScope::Cloud
        } else {
            FailoverScope::Region
        },
        metric,
    }
}

/// What was being done when a call failed, for the error the caller sees.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    /// Where, and with which machine type, for capacity errors.
    pub(crate) placement: Option<(Location, String)>,
    /// The thing acted on (`instance train-0-3f2a in us-central1-a`), for not-found errors.
    pub(crate) what: String,
}

/// The hint for credentials that do not work at all.
pub(crate) const LOGIN_HINT: &str =
    "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file";

/// The hint for credentials that work but may not do this.
pub(crate) const PERMISSION_HINT: &str = "enable the Compute Engine API and grant the account \
     `roles/compute.instanceAdmin.v1` and `roles/compute.securityAdmin` in the project";

/// The classified [`ProviderError`] for a failure that was not retried (or stopped being).
pub(crate) fn to_provider_error(error: ApiError, context: &Context) -> ProviderError {
    let cloud = Cloud::Gcp;
    match classify(&error) {
        Kind::Capacity => match &context.placement {
            Some((location, instance_type)) => ProviderError::Capacity {
                cloud,
                location: location.clone(),
                instance_type: instance_type.clone(),
                message: error.to_string(),
            },
            None => ProviderError::Other {
                cloud,
                source: Box::new(error),
            },
        },
        Kind::Quota { metric, scope } => ProviderError::Quota {
            cloud,
            quota: metric,
            scope,
            message: error.to_string(),
        },
        Kind::NotFound => ProviderError::NotFound {
            cloud,
            what: if context.what.is_empty() {
                error.message
            } else {
                format!("{} ({})", context.what, error.message)
            },
        },
        Kind::Auth => ProviderError::Auth {
            cloud,
            hint: if error.status == Some(401) {
                LOGIN_HINT
            } else {
                PERMISSION_HINT
            }
            .to_owned(),
            message: error.to_string(),
        },
        Kind::Transient => ProviderError::Transient {
            cloud,
            attempts: 1,
            source: Box::new(error),
        },
        Kind::Invalid => ProviderError::Invalid {
            cloud,
            message: error.to_string(),
        },
        Kind::AlreadyExists | Kind::Other => ProviderError::Other {
            cloud,
            source: Box::new(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use broker_provider::ErrorClass;

    use super::*;

    fn op(code: &str, message: &str, http: Option<u16>) -> ApiError {
        ApiError::from_operation(
            &[ErrorEntry {
                code: Some(code.into()),
                reason: None,
                message: message.into(),
            }],
            http,
        )
    }

    fn http(status: u16, reason: &str, message: &str) -> ApiError {
        let body = serde_json::json!({"error": {"code": status, "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}]}});
        ApiError::from_http(status, &body.to_string())
    }

    fn region(scope: FailoverScope, metric: &str) -> Kind {
        Kind::Quota {
            metric: metric.into(),
            scope,
        }
    }

    /// Real codes and messages (operation errors and HTTP errors), and what they must mean.
    #[test]
    fn real_errors_classify_with_the_right_scope() {
        let cases: Vec<(ApiError, Kind, ErrorClass, Option<FailoverScope>)> = vec![
            (
                op(
                    "ZONE_RESOURCE_POOL_EXHAUSTED",
                    "The zone 'projects/p/zones/us-central1-a' does not have enough resources available to fulfill \
                     the request.  Try a different zone, or try again later.",
                    Some(503),
                ),
                Kind::Capacity,
                ErrorClass::Capacity,
                Some(FailoverScope::Zone),
            ),
            (
                op(
                    "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                    "The zone 'projects/p/zones/us-central1-a' does not have enough resources available to fulfill \
                     the request. '(resource type:compute)'.",
                    Some(503),
                ),
                Kind::Capacity,
                ErrorClass::Capacity,
                Some(FailoverScope::Zone),
            ),
            (
                op(
                    "UNSUPPORTED_OPERATION",
                    "Instance 'x' creation failed: the Spot VM was preempted during creation",
                    Some(400),
                ),
                Kind::Capacity,
                ErrorClass::Capacity,
                Some(FailoverScope::Zone),
            ),
            (
                op(
                    "QUOTA_EXCEEDED",
                    "Quota 'NVIDIA_T4_GPUS' exceeded.  Limit: 8.0 in region us-central1.",
                    Some(403),
                ),
                region(FailoverScope::Region, "NVIDIA_T4_GPUS"),
                ErrorClass::Quota,
                Some(FailoverScope::Region),
            ),
            (
                op(
                    "QUOTA_EXCEEDED",
                    "Quota 'GPUS_ALL_REGIONS' exceeded.  Limit: 1.0 globally.",
                    Some(403),
                ),
                region(FailoverScope::Cloud, "GPUS_ALL_REGIONS"),
                ErrorClass::Quota,
                Some(FailoverScope::Cloud),
            ),
            (
                http(
                    403,
                    "quotaExceeded",
                    "Quota 'CPUS' exceeded.  Limit: 24.0 in region us-central1.",
                ),
                region(FailoverScope::Region, "CPUS"),
                ErrorClass::Quota,
                Some(FailoverScope::Region),
            ),
            (
                http(
                    403,
                    "quotaExceeded",
                    "Quota exceeded for quota metric GPUS_ALL_REGIONS and limit per project",
                ),
                region(FailoverScope::Cloud, "GPUS_ALL_REGIONS"),
                ErrorClass::Quota,
                Some(FailoverScope::Cloud),
            ),
            (
                http(
                    404,
                    "notFound",
                    "The resource 'projects/p/global/images/family/coreos' was not found",
                ),
                Kind::NotFound,
                ErrorClass::NotFound,
                None,
            ),
            (
                op(
                    "RESOURCE_NOT_FOUND",
                    "The resource 'projects/p/zones/z/instances/x' was not found",
                    Some(404),
                ),
                Kind::NotFound,
                ErrorClass::NotFound,
                None,
            ),
            (
                http(
                    409,
                    "alreadyExists",
                    "The resource 'projects/p/zones/z/instances/x' already exists",
                ),
                Kind::AlreadyExists,
                ErrorClass::Other,
                None,
            ),
            (
                http(401, "authError", "Request had invalid authentication credentials."),
                Kind::Auth,
                ErrorClass::Auth,
                Some(FailoverScope::Cloud),
            ),
            (
                http(
                    403,
                    "forbidden",
                    "Required 'compute.instances.create' permission for 'projects/p/zones/z/instances/x'",
                ),
                Kind::Auth,
                ErrorClass::Auth,
                Some(FailoverScope::Cloud),
            ),
            (
                http(
                    403,
                    "accessNotConfigured",
                    "Compute Engine API has not been used in project 1 before or it is disabled.",
                ),
                Kind::Auth,
                ErrorClass::Auth,
                Some(FailoverScope::Cloud),
            ),
            (
                http(403, "rateLimitExceeded", "Rate Limit Exceeded"),
                Kind::Transient,
                ErrorClass::Transient,
                None,
            ),
            (
                http(429, "rateLimitExceeded", "Too many requests"),
                Kind::Transient,
                ErrorClass::Transient,
                None,
            ),
            (
                http(503, "backendError", "Backend Error"),
                Kind::Transient,
                ErrorClass::Transient,
                None,
            ),
            (
                ApiError::from_http(502, "<html>Bad Gateway</html>"),
                Kind::Transient,
                ErrorClass::Transient,
                None,
            ),
            (
                op(
                    "RESOURCE_NOT_READY",
                    "The resource 'projects/p/global/firewalls/x' is not ready",
                    None,
                ),
                Kind::Transient,
                ErrorClass::Transient,
                None,
            ),
            (
                http(
                    400,
                    "invalid",
                    "Invalid value for field 'resource.machineType': 'zones/us-central1-f/machineTypes/a2-highgpu-1g'. \
                     Machine type with name 'a2-highgpu-1g' does not exist in zone 'us-central1-f'.",
                ),
                Kind::Capacity,
                ErrorClass::Capacity,
                Some(FailoverScope::Zone),
            ),
            (
                http(
                    400,
                    "invalid",
                    "Invalid value for field 'resource.guestAccelerators[0].acceleratorCount': '1'. At most 8 vCPUs \
                     can be used along with 1 accelerator cards in an instance., invalid",
                ),
                Kind::Invalid,
                ErrorClass::Invalid,
                None,
            ),
            (
                http(400, "badRequest", "Invalid value for field 'resource.name'"),
                Kind::Invalid,
                ErrorClass::Invalid,
                None,
            ),
            (
                op("SOMETHING_NEW", "nobody has seen this", None),
                Kind::Other,
                ErrorClass::Other,
                None,
            ),
        ];
        let context = Context {
            placement: Some((
                Location {
                    region: Cow::Borrowed("us-central1"),
                    zone: Some(Cow::Borrowed("us-central1-a")),
                },
                "n1-standard-8".into(),
            )),
            what: "instance x".into(),
        };
        for (error, kind, class, scope) in cases {
            assert_eq!(classify(&error), kind, "{error}");
            let provider_error = to_provider_error(error.clone(), &context);
            assert_eq!(provider_error.class(), class, "{error}");
            assert_eq!(provider_error.failover(), scope, "{error}");
        }
    }

    #[test]
    fn both_error_shapes_parse() {
        let body = r#"{"error":{"code":403,"message":"Permission denied","status":"PERMISSION_DENIED",
            "errors":[{"message":"Permission denied","domain":"global","reason":"forbidden"}]}}"#;
        let error = ApiError::from_http(403, body);
        assert_eq!(error.codes, ["forbidden", "PERMISSION_DENIED"]);
        assert_eq!(error.message, "Permission denied");
        assert_eq!(
            error.to_string(),
            "HTTP 403 forbidden, PERMISSION_DENIED: Permission denied"
        );
        let op = op("QUOTA_EXCEEDED", "Quota 'CPUS' exceeded.", Some(403));
        assert_eq!(op.to_string(), "HTTP 403 QUOTA_EXCEEDED: Quota 'CPUS' exceeded.");
    }

    #[test]
    fn capacity_errors_carry_the_place_and_auth_errors_a_hint() {
        let context = Context {
            placement: Some((
                Location {
                    region: Cow::Borrowed("us-central1"),
                    zone: Some(Cow::Borrowed("us-central1-b")),
                },
                "a2-highgpu-1g".into(),
            )),
            what: String::new(),
        };
        let error = to_provider_error(op("ZONE_RESOURCE_POOL_EXHAUSTED", "no room", Some(503)), &context);
        assert!(
            error
                .to_string()
                .starts_with("gcp: no capacity for `a2-highgpu-1g` in us-central1/us-central1-b"),
            "{error}"
        );
        match to_provider_error(http(401, "authError", "expired"), &Context::default()) {
            ProviderError::Auth { hint, .. } => assert!(hint.contains("application-default login"), "{hint}"),
            other => panic!("{other:?}"),
        }
    }
}
