//! `OAuth2`: signed-JWT and refresh-token grants, token expiry, and 401s on Compute calls.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker_gce_fake::{FakeOptions, TEST_SERVICE_ACCOUNT_KEY_PEM, TEST_SERVICE_ACCOUNT_PUBLIC_PEM};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Client;
use serde_json::{Value, json};

use crate::support::{Harness, ZONE, envelope_error};

const EMAIL: &str = "broker@broker-test.iam.gserviceaccount.com";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
const OTHER_KEY_PEM: &str = include_str!("../../keys/other.pem");

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn sign(claims: &Value, private_pem: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("0123456789abcdef".to_owned());
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn claims(h: &Harness) -> Value {
    let iat = now();
    json!({"iss": EMAIL, "scope": CLOUD_PLATFORM, "aud": h.fake.token_url(), "iat": iat, "exp": iat + 3595})
}

/// Posts a form to the token endpoint; returns the status and JSON body.
async fn token_request(h: &Harness, form: &[(&str, &str)]) -> (u16, Value) {
    let response = h.client.post(h.fake.token_url()).form(form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn jwt_grant(h: &Harness, assertion: &str) -> (u16, Value) {
    token_request(
        h,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ],
    )
    .await
}

/// Lists instances with `token` (or none) and returns the status and body.
async fn list_with(h: &Harness, token: Option<&str>) -> (u16, Value, Option<String>) {
    let mut request = h.client.get(h.url(&format!("zones/{ZONE}/instances")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), challenge)
}

#[tokio::test]
async fn compute_calls_need_a_valid_bearer_token() {
    let h = Harness::new().await;
    let (status, body, challenge) = list_with(&h, None).await;
    assert_eq!(status, 401);
    let (reason, message) = envelope_error(401, &body);
    assert_eq!(reason, "required");
    assert!(
        message.starts_with("Request is missing required authentication credential."),
        "{message}"
    );
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert!(challenge.unwrap().starts_with("Bearer realm="));

    let (status, body, _) = list_with(&h, Some("ya29.made-up")).await;
    assert_eq!(status, 401);
    assert_eq!(envelope_error(401, &body).0, "authError");

    let (status, _, _) = list_with(&h, Some(&h.token)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn service_account_jwt_grant_issues_a_working_token() {
    let h = Harness::new().await;
    h.fake.add_service_account(EMAIL, TEST_SERVICE_ACCOUNT_PUBLIC_PEM);
    let (status, body) = jwt_grant(&h, &sign(&claims(&h), TEST_SERVICE_ACCOUNT_KEY_PEM)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with("ya29."));
    assert_eq!(list_with(&h, Some(token)).await.0, 200);
}

#[tokio::test]
async fn jwt_grant_refuses_bad_signatures_and_claims() {
    let h = Harness::new().await;
    h.fake.add_service_account(EMAIL, TEST_SERVICE_ACCOUNT_PUBLIC_PEM);
    let good = claims(&h);
    let with = |key: &str, value: Value| {
        let mut claims = good.clone();
        claims[key] = value;
        claims
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (sign(&good, OTHER_KEY_PEM), "invalid_grant", "Invalid JWT Signature."),
        (
            sign(
                &with("iss", json!("stranger@x.iam.gserviceaccount.com")),
                TEST_SERVICE_ACCOUNT_KEY_PEM,
            ),
            "invalid_grant",
            "account not found",
        ),
        (
            sign(
                &with("aud", json!("https://oauth2.googleapis.com/token")),
                TEST_SERVICE_ACCOUNT_KEY_PEM,
            ),
            "invalid_grant",
            "Failed audience check",
        ),
        (
            sign(&with("exp", json!(now() + 7200)), TEST_SERVICE_ACCOUNT_KEY_PEM),
            "invalid_grant",
            "short-lived token",
        ),
        (
            sign(&with("exp", json!(now() - 600)).clone(), TEST_SERVICE_ACCOUNT_KEY_PEM),
            "invalid_grant",
            "short-lived token",
        ),
        (
            sign(
                &with("scope", json!("https://www.googleapis.com/auth/devstorage.read_only")),
                TEST_SERVICE_ACCOUNT_KEY_PEM,
            ),
            "invalid_scope",
            "scope",
        ),
        ("not.a-jwt".to_owned(), "invalid_grant", "Invalid JWT"),
    ];
    for (assertion, error, description) in cases {
        let (status, body) = jwt_grant(&h, &assertion).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], error, "{body}");
        assert!(
            body["error_description"].as_str().unwrap().contains(description),
            "{body}"
        );
    }
    let (status, body) = token_request(&h, &[("grant_type", "password")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")));
}

#[tokio::test]
async fn refresh_token_grant_checks_client_and_token() {
    let h = Harness::new().await;
    h.fake
        .add_refresh_token("client-1.apps.googleusercontent.com", "s3cret", "1//refresh");
    let grant = |secret: &'static str, refresh: &'static str| {
        let h = &h;
        async move {
            token_request(
                h,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", "client-1.apps.googleusercontent.com"),
                    ("client_secret", secret),
                    ("refresh_token", refresh),
                ],
            )
            .await
        }
    };
    let (status, body) = grant("s3cret", "1//refresh").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(list_with(&h, body["access_token"].as_str()).await.0, 200);
    let (status, body) = grant("wrong", "1//refresh").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, body) = grant("s3cret", "1//stale").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    // The endpoint takes JSON bodies too, as Google's does.
    let response = Client::new()
        .post(h.fake.token_url())
        .json(
            &json!({"grant_type": "refresh_token", "client_id": "client-1.apps.googleusercontent.com",
                      "client_secret": "s3cret", "refresh_token": "1//refresh"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let h = Harness::with(FakeOptions {
        token_lifetime: Duration::from_millis(300),
        ..FakeOptions::default()
    })
    .await;
    h.fake.add_service_account(EMAIL, TEST_SERVICE_ACCOUNT_PUBLIC_PEM);
    let (_, body) = jwt_grant(&h, &sign(&claims(&h), TEST_SERVICE_ACCOUNT_KEY_PEM)).await;
    assert_eq!(body["expires_in"], 0, "lifetimes are reported in whole seconds");
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(list_with(&h, Some(&token)).await.0, 200);
    let short = h.fake.issue_token_for(Duration::from_millis(1));
    // Expiry is the point of this test, so it waits for it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body, challenge) = list_with(&h, Some(&token)).await;
    assert_eq!(status, 401);
    assert_eq!(envelope_error(401, &body).0, "authError");
    assert!(challenge.unwrap().contains("invalid_token"));
    assert_eq!(list_with(&h, Some(&short)).await.0, 401);
    // A refreshed token works again.
    let (_, body) = jwt_grant(&h, &sign(&claims(&h), TEST_SERVICE_ACCOUNT_KEY_PEM)).await;
    assert_eq!(list_with(&h, body["access_token"].as_str()).await.0, 200);
}

#[tokio::test]
async fn service_account_key_file_points_at_the_fake() {
    let h = Harness::new().await;
    let key = h.fake.service_account_key(EMAIL);
    assert_eq!(key["type"], "service_account");
    assert_eq!(key["token_uri"], h.fake.token_url());
    let iat = now();
    let claims = json!({"iss": key["client_email"], "scope": CLOUD_PLATFORM, "aud": key["token_uri"],
                        "iat": iat, "exp": iat + 3600});
    let (status, body) = jwt_grant(&h, &sign(&claims, key["private_key"].as_str().unwrap())).await;
    assert_eq!(status, 200, "{body}");
}
