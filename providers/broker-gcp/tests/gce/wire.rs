//! Retries, token refresh and synchronous errors, against the scripted server in `mock.rs`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use broker_gcp::{GceConfig, GceProvider};
use broker_provider::{ErrorClass, FailoverScope, Provider, ProviderError};
use serde_json::{Value, json};

use crate::mock::{MockServer, Request};
use crate::{offer, spec_for, unique_cluster};

/// A user-credentials file whose token endpoint is the mock, and a config pointing at it.
fn config(server: &MockServer, dir: &tempfile::TempDir) -> GceConfig {
    let path = dir.path().join("adc.json");
    let file = json!({
        "type": "authorized_user",
        "client_id": "cid",
        "client_secret": "mock-client-secret",
        "refresh_token": "mock-refresh-token",
        "token_uri": format!("{}/token", server.url),
    });
    std::fs::write(&path, file.to_string()).unwrap();
    GceConfig {
        project: Some("p".into()),
        application_credentials: Some(path),
        use_metadata_server: false,
        endpoint: format!("{}/compute/v1", server.url),
        poll_interval: Duration::from_millis(10),
        max_attempts: 3,
        ..GceConfig::default()
    }
}

fn token_reply(n: u32) -> (u16, String) {
    (
        200,
        json!({"access_token": format!("mock-token-{n}"), "expires_in": 3600}).to_string(),
    )
}

fn http_error(status: u16, reason: &str, message: &str) -> (u16, String) {
    (
        status,
        json!({"error": {"code": status, "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}]}})
        .to_string(),
    )
}

fn empty_list() -> (u16, String) {
    (
        200,
        json!({"kind": "compute#instanceAggregatedList", "items": {}}).to_string(),
    )
}

#[tokio::test]
async fn transient_failures_are_retried_until_they_pass() {
    let lists = AtomicU32::new(0);
    let server = MockServer::start(move |r: &Request| {
        if r.path() == "/token" {
            return token_reply(1);
        }
        match lists.fetch_add(1, Ordering::SeqCst) {
            0 => (503, "<html>unavailable</html>".into()),
            1 => http_error(500, "backendError", "Backend Error"),
            _ => empty_list(),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let provider = GceProvider::new(config(&server, &dir)).unwrap();
    let nodes = provider.nodes(&unique_cluster("retry")).await.unwrap();
    assert!(nodes.is_empty());
    assert_eq!(server.count("GET", "/aggregated/instances"), 3);
    assert_eq!(server.count("POST", "/token"), 1, "one token serves every attempt");
}

#[tokio::test]
async fn rate_limits_end_as_a_transient_error_after_the_last_attempt() {
    let server = MockServer::start(|r: &Request| {
        if r.path() == "/token" {
            return token_reply(1);
        }
        http_error(429, "rateLimitExceeded", "Rate Limit Exceeded")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let provider = GceProvider::new(config(&server, &dir)).unwrap();
    let err = provider.sweep().await.unwrap_err();
    match &err {
        ProviderError::Transient { attempts, .. } => assert_eq!(*attempts, 3, "{err}"),
        other => panic!("expected transient: {other:?}"),
    }
    assert_eq!(server.count("GET", "/aggregated/instances"), 3);
}

#[tokio::test]
async fn a_rejected_token_is_replaced_once() {
    let tokens = AtomicU32::new(0);
    let server = MockServer::start(move |r: &Request| {
        if r.path() == "/token" {
            return token_reply(tokens.fetch_add(1, Ordering::SeqCst) + 1);
        }
        if r.header("authorization") == Some("Bearer mock-token-1") {
            return http_error(401, "authError", "Request had invalid authentication credentials.");
        }
        empty_list()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let provider = GceProvider::new(config(&server, &dir)).unwrap();
    provider.sweep().await.unwrap();
    assert_eq!(server.count("POST", "/token"), 2);
    let debug = format!("{provider:?}");
    for secret in ["mock-token-2", "mock-refresh-token", "mock-client-secret"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    let forms: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/token")
        .map(|r| r.body)
        .collect();
    assert!(forms[0].contains("grant_type=refresh_token") && forms[0].contains("refresh_token=mock-refresh-token"));
}

#[tokio::test]
async fn an_account_that_is_refused_everything_is_an_auth_error() {
    let server = MockServer::start(|r: &Request| {
        if r.path() == "/token" {
            return (
                400,
                json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
                    .to_string(),
            );
        }
        empty_list()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let provider = GceProvider::new(config(&server, &dir)).unwrap();
    let err = provider.check().await.unwrap_err();
    match &err {
        ProviderError::Auth { message, hint, .. } => {
            assert!(message.contains("invalid_grant"), "{message}");
            assert!(hint.contains("gcloud auth application-default login"), "{hint}");
            assert!(!message.contains("mock-refresh-token") && !message.contains("mock-client-secret"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.failover(), Some(FailoverScope::Cloud));
    assert_eq!(server.count("GET", "/aggregated/instances"), 0);
}

/// Compute for one launch: no instances yet, the firewall rule exists, Debian resolves, and
/// inserts are answered by `insert`; an inserted instance is RUNNING at once.
fn launch_handler(
    insert: impl Fn(u32) -> Option<(u16, String)> + Send + Sync + 'static,
) -> impl Fn(&Request) -> (u16, String) + Send + Sync + 'static {
    let inserts = AtomicU32::new(0);
    let created: Mutex<Vec<Value>> = Mutex::new(Vec::new());
    move |r: &Request| {
        let path = r.path();
        if path == "/token" {
            return token_reply(1);
        }
        if path.ends_with("/aggregated/instances") {
            let instances: Vec<Value> = created
                .lock()
                .unwrap()
                .iter()
                .map(|body| {
                    json!({"name": body["name"], "status": "RUNNING", "labels": body["labels"],
                        "zone": "projects/p/zones/us-central1-a",
                        "networkInterfaces": [{"networkIP": "10.0.0.2", "accessConfigs": [{"natIP": "34.0.0.2"}]}]})
                })
                .collect();
            return (
                200,
                json!({"items": {"zones/us-central1-a": {"instances": instances}}}).to_string(),
            );
        }
        if path.ends_with("/global/firewalls") {
            return http_error(409, "alreadyExists", "The resource 'broker-allow-ssh' already exists");
        }
        if path.ends_with("/images/family/debian-12") {
            return (200, json!({"name": "debian-12-bookworm-v1"}).to_string());
        }
        if r.method == "POST" && path.ends_with("/zones/us-central1-a/instances") {
            let n = inserts.fetch_add(1, Ordering::SeqCst);
            if let Some(reply) = insert(n) {
                return reply;
            }
            created.lock().unwrap().push(serde_json::from_str(&r.body).unwrap());
            return (
                200,
                json!({"name": format!("operation-{n}"), "status": "DONE",
                    "zone": "projects/p/zones/us-central1-a"})
                .to_string(),
            );
        }
        (
            404,
            json!({"error": {"code": 404, "message": format!("no route {path}")}}).to_string(),
        )
    }
}

#[tokio::test]
async fn a_resent_insert_carries_the_same_request_id() {
    let server = MockServer::start(launch_handler(|n| {
        (n == 0).then(|| http_error(503, "backendError", "Backend Error"))
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let provider = GceProvider::new(config(&server, &dir)).unwrap();
    let cluster = unique_cluster("resend");
    let nodes = provider
        .launch(&spec_for(&cluster, &offer("e2-standard-2", None), "t1", 1))
        .await
        .unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].ssh, Some("34.0.0.2:22".parse().unwrap()));
    let ids: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path().ends_with("/instances"))
        .map(|r| r.query("requestId").unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "the 503 was retried once");
    assert_eq!(ids[0], ids[1], "with the same requestId");
}

#[tokio::test]
async fn quota_and_capacity_errors_are_not_retried_and_carry_their_scope() {
    for (reply, class, scope) in [
        (
            http_error(
                403,
                "quotaExceeded",
                "Quota 'CPUS' exceeded.  Limit: 24.0 in region us-central1.",
            ),
            ErrorClass::Quota,
            FailoverScope::Region,
        ),
        (
            http_error(
                403,
                "quotaExceeded",
                "Quota 'GPUS_ALL_REGIONS' exceeded.  Limit: 0.0 globally.",
            ),
            ErrorClass::Quota,
            FailoverScope::Cloud,
        ),
        (
            http_error(
                400,
                "invalid",
                "Invalid value for field 'resource.machineType': 'zones/us-central1-a/machineTypes/e2-standard-2'. \
                 Machine type with name 'e2-standard-2' does not exist in zone 'us-central1-a'.",
            ),
            ErrorClass::Capacity,
            FailoverScope::Zone,
        ),
    ] {
        let server = MockServer::start(launch_handler(move |_| Some(reply.clone()))).await;
        let dir = tempfile::tempdir().unwrap();
        let provider = GceProvider::new(config(&server, &dir)).unwrap();
        let cluster = unique_cluster("quota");
        let err = provider
            .launch(&spec_for(&cluster, &offer("e2-standard-2", None), "t1", 2))
            .await
            .unwrap_err();
        assert_eq!((err.class(), err.failover()), (class, Some(scope)), "{err}");
        assert_eq!(
            server.count("POST", "/instances"),
            1,
            "not retried, no second rank tried: {err}"
        );
    }
}
