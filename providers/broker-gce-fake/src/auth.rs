//! `OAuth2` as Google's token endpoint does it (cloud-apis.md §B.2, §B.3), and the bearer-token
//! check in front of every Compute call.
//!
//! Two grants: a service account's RS256-signed JWT (`urn:ietf:params:oauth:grant-type:jwt-bearer`),
//! verified against the public keys registered for its `iss`, with `aud` = the fake's token URL,
//! a Compute-capable `scope` and a lifetime of at most an hour; and `refresh_token` with a
//! registered client id, secret and refresh token. Errors use OAuth's own shape,
//! `{"error", "error_description"}`, not the Compute envelope.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::{Digest, Sha256};
use rsa::{Pkcs1v15Sign, PublicKey};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::envelope::ApiError;
use crate::state::{IssuedToken, Shared, State as FakeState};

pub(crate) const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const COMPUTE_SCOPE: &str = "https://www.googleapis.com/auth/compute";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Clock skew the endpoint tolerates on `iat`/`exp`.
const SKEW_SECS: u64 = 60;

/// Whether `pem` is an RSA public key the verifier can use (SPKI `PUBLIC KEY` or PKCS#1
/// `RSA PUBLIC KEY`).
pub(crate) fn parse_public_key(pem: &str) -> Option<PublicKey> {
    PublicKey::from_public_key_pem(pem)
        .ok()
        .or_else(|| PublicKey::from_pkcs1_pem(pem).ok())
}

fn allows_compute(scopes: &[String]) -> bool {
    scopes.iter().any(|s| s == CLOUD_PLATFORM_SCOPE || s == COMPUTE_SCOPE)
}

impl FakeState {
    /// A new access token valid for `lifetime`.
    pub(crate) fn issue_token(&mut self, lifetime: Duration, scopes: Vec<String>) -> String {
        let token = self.ids.token();
        self.tokens.insert(
            token.clone(),
            IssuedToken {
                expires_at: Instant::now() + lifetime,
                scopes,
            },
        );
        token
    }
}

/// Refuses Compute calls without a valid, unexpired bearer token that allows Compute.
pub(crate) async fn require_bearer(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            (scheme.eq_ignore_ascii_case("bearer"), token.trim().to_owned())
        });
    let refusal = match token {
        None => Some(ApiError::missing_credentials()),
        Some((false, _)) => Some(ApiError::invalid_credentials()),
        Some((true, token)) => {
            let state = shared.state();
            match state.tokens.get(&token) {
                Some(issued) if issued.expires_at > Instant::now() => {
                    (!allows_compute(&issued.scopes)).then(ApiError::insufficient_scopes)
                }
                _ => Some(ApiError::invalid_credentials()),
            }
        }
    };
    match refusal {
        Some(error) => error.into_response(),
        None => next.run(request).await,
    }
}

/// An OAuth error response.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn token_response(token: &str, lifetime: Duration) -> Response {
    axum::Json(json!({
        "access_token": token,
        "expires_in": lifetime.as_secs(),
        "token_type": "Bearer",
    }))
    .into_response()
}

/// `POST /token`, form-encoded (JSON bodies are accepted too, as Google's endpoint does).
pub(crate) async fn token_endpoint(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let fields: Vec<(String, String)> = if is_json {
        match serde_json::from_slice::<serde_json::Map<String, Value>>(&body) {
            Ok(map) => map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_owned())))
                .collect(),
            Err(_) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Malformed JSON body."),
        }
    } else {
        form_urlencoded::parse(&body).into_owned().collect()
    };
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match field("grant_type") {
        Some(JWT_BEARER) => match field("assertion") {
            Some(assertion) => jwt_grant(&shared, assertion),
            None => oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: assertion",
            ),
        },
        Some("refresh_token") => refresh_grant(
            &shared,
            field("client_id").unwrap_or_default(),
            field("client_secret").unwrap_or_default(),
            field("refresh_token").unwrap_or_default(),
        ),
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {other}"),
        ),
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: grant_type",
        ),
    }
}

fn decode_segment(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn jwt_grant(shared: &Shared, assertion: &str) -> Response {
    let invalid_grant = |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts.as_slice() else {
        return invalid_grant("Invalid JWT: the assertion must have three dot-separated parts.");
    };
    let (Some(header), Some(claims)) = (decode_segment(header_b64), decode_segment(claims_b64)) else {
        return invalid_grant("Invalid JWT: header or claims are not base64url-encoded JSON.");
    };
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return invalid_grant("Invalid JWT: the signing algorithm must be RS256.");
    }
    let Some(issuer) = claims.get("iss").and_then(Value::as_str) else {
        return invalid_grant("Invalid JWT: no `iss` claim.");
    };
    let keys = shared.state().service_accounts.get(issuer).cloned().unwrap_or_default();
    if keys.is_empty() {
        return invalid_grant("Invalid grant: account not found");
    }
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature_b64) else {
        return invalid_grant("Invalid JWT Signature.");
    };
    let digest = Sha256::digest(format!("{header_b64}.{claims_b64}").as_bytes());
    let public_keys: Vec<PublicKey> = keys.iter().filter_map(|pem| parse_public_key(pem)).collect();
    if public_keys.is_empty() {
        return invalid_grant(
            "Invalid JWT Signature. (No key registered for this account parses as an RSA public key PEM.)",
        );
    }
    let verified = public_keys
        .iter()
        .any(|key| key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature).is_ok());
    if !verified {
        return invalid_grant("Invalid JWT Signature.");
    }
    if claims.get("aud").and_then(Value::as_str) != Some(shared.token_url().as_str()) {
        return invalid_grant(&format!(
            "Invalid JWT: Failed audience check. The expected value was {}.",
            shared.token_url()
        ));
    }
    let now = shared.clock.unix(Instant::now()).as_secs();
    let (Some(iat), Some(exp)) = (
        claims.get("iat").and_then(Value::as_u64),
        claims.get("exp").and_then(Value::as_u64),
    ) else {
        return invalid_grant("Invalid JWT: `iat` and `exp` must be numeric claims.");
    };
    if exp <= iat || exp - iat > 3600 || iat > now + SKEW_SECS || exp.saturating_add(SKEW_SECS) < now {
        return invalid_grant(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your \
             iat and exp values in the JWT claim.",
        );
    }
    let scopes: Vec<String> = claims
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !allows_compute(&scopes) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided: the fake needs the compute or cloud-platform scope.",
        );
    }
    let lifetime = shared.options.token_lifetime;
    let token = shared.state().issue_token(lifetime, scopes);
    token_response(&token, lifetime)
}

fn refresh_grant(shared: &Shared, client_id: &str, client_secret: &str, refresh_token: &str) -> Response {
    let mut state = shared.state();
    let client_known = state
        .refresh_grants
        .iter()
        .any(|g| g.client_id == client_id && g.client_secret == client_secret);
    if !client_known {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }
    let grant_known = state
        .refresh_grants
        .iter()
        .any(|g| g.client_id == client_id && g.client_secret == client_secret && g.refresh_token == refresh_token);
    if !grant_known {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
    }
    let lifetime = shared.options.token_lifetime;
    let token = state.issue_token(lifetime, vec![CLOUD_PLATFORM_SCOPE.to_owned()]);
    token_response(&token, lifetime)
}
