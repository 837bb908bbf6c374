//! Google's JSON error envelope for synchronous HTTP errors:
//! `{"error": {"code", "message", "errors": [{"domain", "reason", "message"}], "status"}}`.
//!
//! Messages copy the real API's wording where it is known (cloud-apis.md §A.6), because the GCP
//! provider's `classify.rs` may have to read them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One entry of `error.errors[]`.
#[derive(Debug, Clone)]
pub(crate) struct ErrorItem {
    pub(crate) domain: &'static str,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    /// `location` and `locationType`, for errors about a header or parameter.
    pub(crate) location: Option<(&'static str, &'static str)>,
}

/// A synchronous error response in Google's envelope.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) errors: Vec<ErrorItem>,
    /// `google.rpc.BadRequest` field violations: (field, description).
    pub(crate) field_violations: Vec<(String, String)>,
    /// 401 responses carry `WWW-Authenticate`, as Google's do.
    pub(crate) www_authenticate: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        domain: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        Self {
            status,
            errors: vec![ErrorItem {
                domain,
                reason,
                message: message.clone(),
                location: None,
            }],
            message,
            field_violations: Vec::new(),
            www_authenticate: None,
        }
    }

    /// 404 `notFound` for a resource path such as `projects/p/zones/z/instances/n`.
    pub(crate) fn not_found(resource: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "global",
            "notFound",
            format!("The resource '{resource}' was not found"),
        )
    }

    /// 409 `alreadyExists`.
    pub(crate) fn already_exists(resource: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "global",
            "alreadyExists",
            format!("The resource '{resource}' already exists"),
        )
    }

    /// 400 `invalid`, the reason of Compute's own field checks.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "global", "invalid", message)
    }

    /// 400 `required`, for a required field that is missing.
    pub(crate) fn required(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "global", "required", message)
    }

    /// 400 for request bodies or parameters that do not match the discovery document: the
    /// first violation is the message, all of them are listed.
    pub(crate) fn schema(violations: &[(String, String)]) -> Self {
        let message = violations
            .first()
            .map_or_else(|| "Invalid request".to_owned(), |(_, message)| message.clone());
        Self {
            status: StatusCode::BAD_REQUEST,
            message,
            errors: violations
                .iter()
                .map(|(_, message)| ErrorItem {
                    domain: "global",
                    reason: "invalid",
                    message: message.clone(),
                    location: None,
                })
                .collect(),
            field_violations: violations.to_vec(),
            www_authenticate: None,
        }
    }

    /// 401 for a request without an `Authorization` header.
    pub(crate) fn missing_credentials() -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "global",
            "required",
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or \
             other valid authentication credential. See \
             https://developers.google.com/identity/sign-in/web/devconsole-project.",
        );
        "Login Required.".clone_into(&mut error.errors[0].message);
        error.errors[0].location = Some(("Authorization", "header"));
        error.www_authenticate = Some("Bearer realm=\"https://accounts.google.com/\"");
        error
    }

    /// 401 for a bearer token the fake did not issue, or one that expired.
    pub(crate) fn invalid_credentials() -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "global",
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other \
             valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        );
        "Invalid Credentials".clone_into(&mut error.errors[0].message);
        error.errors[0].location = Some(("Authorization", "header"));
        error.www_authenticate = Some("Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"");
        error
    }

    /// 403 for a token whose scopes do not allow Compute Engine.
    pub(crate) fn insufficient_scopes() -> Self {
        let mut error = Self::new(
            StatusCode::FORBIDDEN,
            "global",
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
        );
        error.www_authenticate = Some("Bearer realm=\"https://accounts.google.com/\", error=\"insufficient_scope\"");
        error
    }

    pub(crate) fn body(&self) -> Value {
        let errors: Vec<Value> = self
            .errors
            .iter()
            .map(|item| {
                let mut entry = json!({"message": item.message, "domain": item.domain, "reason": item.reason});
                if let Some((location, location_type)) = item.location {
                    entry["location"] = json!(location);
                    entry["locationType"] = json!(location_type);
                }
                entry
            })
            .collect();
        let mut error = json!({
            "code": self.status.as_u16(),
            "message": self.message,
            "errors": errors,
            "status": rpc_status(self.status),
        });
        if !self.field_violations.is_empty() {
            let violations: Vec<Value> = self
                .field_violations
                .iter()
                .map(|(field, description)| json!({"field": field, "description": description}))
                .collect();
            error["details"] = json!([{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": violations,
            }]);
        }
        json!({ "error": error })
    }
}

/// The `google.rpc.Code` name Google puts in `error.status`.
fn rpc_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(challenge) = self.www_authenticate {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}
