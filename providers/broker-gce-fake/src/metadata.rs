//! The GCE metadata server as a VM sees it (cloud-apis.md §B.4): the default service account's
//! token and email, and the project id. Every request must carry `Metadata-Flavor: Google` and
//! every answer does, which is how client libraries tell the real server from a captive portal.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::CLOUD_PLATFORM_SCOPE;
use crate::state::Shared;

const FLAVOR: &str = "metadata-flavor";

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(FLAVOR, HeaderValue::from_static("Google"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::SERVER, HeaderValue::from_static("Metadata Server for VM"));
    response
}

/// The real server answers a request without the header with 403 and an HTML page.
fn check_flavor(headers: &HeaderMap) -> Result<(), Box<Response>> {
    let flavored = headers.get(FLAVOR).and_then(|v| v.to_str().ok()) == Some("Google");
    let forwarded = headers.contains_key("x-forwarded-for");
    if flavored && !forwarded {
        return Ok(());
    }
    Err(Box::new(answer(
        StatusCode::FORBIDDEN,
        "text/html; charset=UTF-8",
        "<!DOCTYPE html>\n<html><head><title>Error 403 (Forbidden)!!1</title></head><body>\
         <p><b>403.</b> <ins>That's an error.</ins></p>\
         <p>Your client does not have permission to get URL from this server. Missing Metadata-Flavor:Google \
         header. <ins>That's all we know.</ins></p></body></html>\n"
            .to_owned(),
    )))
}

fn text(body: String) -> Response {
    answer(StatusCode::OK, "application/text", body)
}

pub(crate) async fn root(headers: HeaderMap) -> Response {
    match check_flavor(&headers) {
        Ok(()) => text("computeMetadata/\n".to_owned()),
        Err(refusal) => *refusal,
    }
}

/// Accepts `default` and the fake's service-account email as the account name.
fn known_account(shared: &Shared, account: &str) -> bool {
    account == "default" || account == shared.options.service_account_email
}

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = check_flavor(&headers) {
        return *refusal;
    }
    if !known_account(&shared, &account) {
        return answer(
            StatusCode::NOT_FOUND,
            "text/html; charset=UTF-8",
            "Not Found\n".to_owned(),
        );
    }
    let requested = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "scopes")
            .map(|(_, v)| v.into_owned())
    });
    let scopes = requested.map_or_else(
        || vec![CLOUD_PLATFORM_SCOPE.to_owned()],
        |s| {
            s.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        },
    );
    let lifetime = shared.options.token_lifetime;
    let token = shared.state().issue_token(lifetime, scopes);
    answer(
        StatusCode::OK,
        "application/json",
        json!({"access_token": token, "expires_in": lifetime.as_secs(), "token_type": "Bearer"}).to_string(),
    )
}

pub(crate) async fn email(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = check_flavor(&headers) {
        return *refusal;
    }
    if !known_account(&shared, &account) {
        return answer(
            StatusCode::NOT_FOUND,
            "text/html; charset=UTF-8",
            "Not Found\n".to_owned(),
        );
    }
    text(shared.options.service_account_email.clone())
}

pub(crate) async fn project_id(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match check_flavor(&headers) {
        Ok(()) => text(shared.options.project.clone()),
        Err(refusal) => *refusal,
    }
}

pub(crate) async fn numeric_project_id(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match check_flavor(&headers) {
        Ok(()) => text(shared.options.project_number.to_string()),
        Err(refusal) => *refusal,
    }
}
