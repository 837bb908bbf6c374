//! Raw Compute v1 calls: bearer token, JSON in and out, errors parsed, transient failures retried.
//!
//! Every call broker makes is safe to repeat: reads, waits, `instances.insert` with its
//! `requestId`, deletes (a second one meets 404, which callers treat as done), stops and starts,
//! and firewall inserts (409 on a repeat). So the retry here is uniform: 429, 5xx, rate-limit
//! reasons and connection failures are retried with jittered backoff; everything else, and in
//! particular a capacity or quota error, goes straight back to the caller, which decides where to
//! go next. A 401 drops the cached token and tries once more with a fresh one.

use std::time::{Duration, Instant};

use broker_provider::{Cloud, ProviderError};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::{Auth, AuthError};
use crate::classify::{self, ApiError, Context, Kind};
use crate::retry;

/// An ordinary call: Compute answers in well under a second, a slow insert in a few.
const CALL_TIMEOUT: Duration = Duration::from_mins(1);

/// A Compute call that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// Compute answered with an error, or an operation ended with one.
    #[error("{what}: {error}")]
    Api {
        what: String,
        error: ApiError,
        attempts: u32,
    },
    /// No token.
    #[error(transparent)]
    Auth(AuthError),
    /// No answer: connection refused or reset, timeout, or an operation that never finished.
    #[error("{what}: {message}")]
    Unreachable {
        what: String,
        message: String,
        attempts: u32,
    },
    /// An answer that is not what the API documents.
    #[error("{what}: unexpected answer: {message}")]
    Decode { what: String, message: String },
}

impl CallError {
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Self::Api { error, .. } => classify::classify(error),
            Self::Auth(_) => Kind::Auth,
            Self::Unreachable { .. } => Kind::Transient,
            Self::Decode { .. } => Kind::Other,
        }
    }

    /// The classified error for the caller; `context` says where and what for capacity and
    /// not-found errors.
    pub(crate) fn into_provider_error(self, context: &Context) -> ProviderError {
        match self {
            Self::Auth(e) => e.into_provider_error(),
            Self::Api { error, attempts, .. } if classify::classify(&error) == Kind::Transient => {
                ProviderError::Transient {
                    cloud: Cloud::Gcp,
                    attempts,
                    source: Box::new(error),
                }
            }
            Self::Api { error, .. } => classify::to_provider_error(error, context),
            Self::Unreachable { attempts, .. } => ProviderError::Transient {
                cloud: Cloud::Gcp,
                attempts,
                source: Box::new(self),
            },
            Self::Decode { .. } => ProviderError::Other {
                cloud: Cloud::Gcp,
                source: Box::new(self),
            },
        }
    }
}

/// An authenticated Compute client for one base URL.
#[derive(Debug)]
pub(crate) struct Compute {
    http: reqwest::Client,
    base: String,
    pub(crate) auth: Auth,
    max_attempts: u32,
}

impl Compute {
    pub(crate) fn new(http: reqwest::Client, base: &str, auth: Auth, max_attempts: u32) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            auth,
            max_attempts: max_attempts.max(1),
        }
    }

    /// `GET {base}/{path}` with query parameters.
    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, CallError> {
        self.call(Method::GET, path, query, None, CALL_TIMEOUT).await
    }

    /// `POST {base}/{path}` with a JSON body (or none).
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<T, CallError> {
        self.call(Method::POST, path, query, body, CALL_TIMEOUT).await
    }

    pub(crate) async fn delete<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, CallError> {
        self.call(Method::DELETE, path, query, None, CALL_TIMEOUT).await
    }

    /// One call, repeated while it fails transiently and attempts remain.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let what = format!("{method} {path}");
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let mut attempt = 1;
        let mut refreshed = false;
        loop {
            let token = self.auth.token().await.map_err(CallError::Auth)?;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(token.secret())
                .query(query)
                .timeout(timeout);
            if let Some(body) = body {
                request = request.json(body);
            } else if method == Method::POST {
                // Compute wants a length on bodiless POSTs (`wait`, `stop`, `start`).
                request = request.header(reqwest::header::CONTENT_LENGTH, "0");
            }
            let started = Instant::now();
            let failure = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    let bytes = response.bytes().await.map_err(|e| CallError::Unreachable {
                        what: what.clone(),
                        message: e.to_string(),
                        attempts: attempt,
                    });
                    match bytes {
                        Ok(bytes) => {
                            return serde_json::from_slice(&bytes).map_err(|e| CallError::Decode {
                                what,
                                message: e.to_string(),
                            });
                        }
                        Err(e) => e,
                    }
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status == StatusCode::UNAUTHORIZED && !refreshed {
                        // Revoked or expired early: one more try with a new token, not counted.
                        refreshed = true;
                        self.auth.invalidate(&token).await;
                        continue;
                    }
                    CallError::Api {
                        what: what.clone(),
                        error: ApiError::from_http(status.as_u16(), &text),
                        attempts: attempt,
                    }
                }
                Err(e) => CallError::Unreachable {
                    what: what.clone(),
                    message: if e.is_timeout() {
                        format!("no answer within {} s", started.elapsed().as_secs())
                    } else {
                        e.to_string()
                    },
                    attempts: attempt,
                },
            };
            if failure.kind() != Kind::Transient || attempt >= self.max_attempts {
                return Err(failure);
            }
            let pause = retry::delay(attempt);
            tracing::debug!(error = %failure, attempt, ?pause, "transient Compute failure, retrying");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }
}
