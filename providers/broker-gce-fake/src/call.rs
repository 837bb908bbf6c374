//! The checks every Compute call goes through before its handler acts: parameters against the
//! discovery document, the body against the method's request schema, the project. Violations
//! of the document are answered with a 400 *and* recorded, so a test can assert there were none.

use axum::http::{Method, Uri};
use serde_json::Value;

use crate::discovery::MethodRef;
use crate::envelope::ApiError;
use crate::params::{self, Query};
use crate::schema::{self, Violation};
use crate::state::Shared;

/// One request to one discovery method.
pub(crate) struct Call<'a> {
    shared: &'a Shared,
    method: MethodRef,
    /// `POST /compute/v1/...`, the prefix of recorded violations.
    request: String,
}

impl<'a> Call<'a> {
    pub(crate) fn new(shared: &'a Shared, method: MethodRef, http_method: &Method, uri: &Uri) -> Self {
        Self {
            shared,
            method,
            request: format!("{http_method} {}", uri.path()),
        }
    }

    fn description(&self) -> Result<&'a Value, ApiError> {
        self.shared.discovery.method(&self.method).ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "global",
                "backendError",
                format!("the discovery document lacks {} (fake bug)", self.method.id()),
            )
        })
    }

    /// Checks path parameters (name, value) and the raw query string.
    pub(crate) fn params(&self, path_params: &[(&str, &str)], raw_query: Option<&str>) -> Result<Query, ApiError> {
        let query = Query::parse(raw_query);
        let violations = params::validate(&self.shared.discovery, self.description()?, path_params, &query);
        if violations.is_empty() {
            Ok(query)
        } else {
            Err(self.reject(&violations))
        }
    }

    /// The JSON body, checked against the method's request schema. An empty body is `{}`.
    pub(crate) fn body(&self, bytes: &[u8]) -> Result<Value, ApiError> {
        let body = self.parse_json(bytes)?;
        let schema = self
            .description()?
            .pointer("/request/$ref")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let violations = schema::validate_body(&self.shared.discovery, &self.method.id(), schema, &body);
        if violations.is_empty() {
            Ok(body)
        } else {
            Err(self.reject(&violations))
        }
    }

    /// Refuses a body on a method that takes none (`stop`, `start`, `delete`, `wait`).
    pub(crate) fn no_body(&self, bytes: &[u8]) -> Result<(), ApiError> {
        match self.parse_json(bytes)? {
            Value::Object(map) if map.is_empty() => Ok(()),
            other => Err(self.reject(&[Violation {
                field: "resource".to_owned(),
                message: format!(
                    "Invalid JSON payload received. {} takes no request body, got {}",
                    self.method.id(),
                    schema::excerpt(&other)
                ),
            }])),
        }
    }

    fn parse_json(&self, bytes: &[u8]) -> Result<Value, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        serde_json::from_slice(bytes).map_err(|e| {
            self.reject(&[Violation {
                field: "resource".to_owned(),
                message: format!("Invalid JSON payload received. {e}"),
            }])
        })
    }

    /// Only the fake's own project has resources (public image projects aside, see `images`).
    pub(crate) fn own_project(&self, project: &str) -> Result<(), ApiError> {
        if project == self.shared.options.project {
            Ok(())
        } else {
            Err(ApiError::not_found(&format!("projects/{project}")))
        }
    }

    /// Records `violations` as schema violations and builds the 400.
    pub(crate) fn reject(&self, violations: &[Violation]) -> ApiError {
        let mut state = self.shared.state();
        for violation in violations {
            state
                .schema_violations
                .push(format!("{}: {}", self.request, violation.message));
        }
        let pairs: Vec<(String, String)> = violations
            .iter()
            .map(|v| (v.field.clone(), v.message.clone()))
            .collect();
        ApiError::schema(&pairs)
    }
}
