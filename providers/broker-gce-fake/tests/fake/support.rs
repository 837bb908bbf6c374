//! A fake plus an HTTP client holding a valid token, and request bodies that pass validation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use broker_gce_fake::{FakeGce, FakeOptions, validate_schema};
use reqwest::{Client, Method};
use serde_json::{Value, json};

pub(crate) const ZONE: &str = "us-central1-a";

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A fresh UUID-shaped request id (v4 layout, unique within the process).
pub(crate) fn request_id() -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{nanos:08x}-{:04x}-4{:03x}-8{:03x}-{n:012x}",
        n & 0xFFFF,
        n & 0xFFF,
        (n >> 12) & 0xFFF
    )
}

pub(crate) struct Harness {
    pub(crate) fake: FakeGce,
    pub(crate) client: Client,
    pub(crate) token: String,
}

impl Harness {
    pub(crate) async fn new() -> Self {
        Self::with(FakeOptions {
            operation_delay: Duration::from_millis(40),
            ..FakeOptions::default()
        })
        .await
    }

    pub(crate) async fn with(options: FakeOptions) -> Self {
        let fake = FakeGce::start(options).await.expect("the fake starts");
        let token = fake.issue_token();
        let client = Client::builder().no_proxy().build().unwrap();
        Self { fake, client, token }
    }

    /// `{compute}/projects/{project}/{relative}`
    pub(crate) fn url(&self, relative: &str) -> String {
        format!(
            "{}/projects/{}/{relative}",
            self.fake.compute_url(),
            self.fake.project()
        )
    }

    pub(crate) async fn call(&self, method: Method, url: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self.client.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub(crate) async fn get(&self, relative: &str) -> (u16, Value) {
        self.call(Method::GET, &self.url(relative), None).await
    }

    pub(crate) async fn post(&self, relative: &str, body: &Value) -> (u16, Value) {
        self.call(Method::POST, &self.url(relative), Some(body)).await
    }

    /// `instances.insert` in `zone`; panics unless the API accepted it.
    pub(crate) async fn insert(&self, zone: &str, body: &Value) -> Value {
        let (status, op) = self
            .post(&format!("zones/{zone}/instances?requestId={}", request_id()), body)
            .await;
        assert_eq!(status, 200, "{op}");
        op
    }

    /// Waits on an operation until it is DONE (bounded).
    pub(crate) async fn wait(&self, op: &Value) -> Value {
        let link = op["selfLink"].as_str().unwrap();
        for _ in 0..20 {
            let (status, op) = self.call(Method::POST, &format!("{link}/wait"), None).await;
            assert_eq!(status, 200, "{op}");
            if op["status"] == "DONE" {
                return op;
            }
        }
        panic!("operation {link} never finished");
    }

    /// Polls `instances.get` until the instance has `status`, or panics after 10 s.
    pub(crate) async fn wait_for_status(&self, zone: &str, name: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, instance) = self.get(&format!("zones/{zone}/instances/{name}")).await;
            if code == 200 && instance["status"] == status {
                return instance;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never reached {status}: {code} {instance}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Asserts `value` matches the discovery schema (responses may carry output-only fields).
pub(crate) fn assert_conforms(schema: &str, value: &Value) {
    let violations = validate_schema("", schema, value).unwrap();
    assert!(
        violations.is_empty(),
        "{schema} response breaks the schema: {violations:#?}\n{value}"
    );
}

/// The body of cloud-apis.md §A.3: an N1 Spot VM with one T4, labelled for a cluster.
pub(crate) fn gpu_instance(name: &str, zone: &str, cluster: &str) -> Value {
    json!({
        "name": name,
        "machineType": format!("zones/{zone}/machineTypes/n1-standard-8"),
        "disks": [{
            "boot": true, "autoDelete": true, "type": "PERSISTENT",
            "initializeParams": {
                "sourceImage": "projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570",
                "diskSizeGb": "200",
                "diskType": format!("zones/{zone}/diskTypes/pd-balanced"),
            }
        }],
        "networkInterfaces": [{
            "network": "global/networks/default",
            "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT", "networkTier": "PREMIUM"}]
        }],
        "metadata": {"items": [
            {"key": "ssh-keys", "value": "broker:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE broker"},
            {"key": "install-nvidia-driver", "value": "True"}
        ]},
        "labels": {"broker-cluster": cluster, "broker-managed": "1"},
        "tags": {"items": ["broker-ssh"]},
        "guestAccelerators": [{
            "acceleratorType": format!("projects/broker-test/zones/{zone}/acceleratorTypes/nvidia-tesla-t4"),
            "acceleratorCount": 1
        }],
        "scheduling": {
            "onHostMaintenance": "TERMINATE", "automaticRestart": false,
            "provisioningModel": "SPOT", "instanceTerminationAction": "DELETE"
        },
        "serviceAccounts": [{"email": "default", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]
    })
}

/// A small CPU VM on Debian.
pub(crate) fn cpu_instance(name: &str, zone: &str, labels: &Value) -> Value {
    json!({
        "name": name,
        "machineType": format!("zones/{zone}/machineTypes/e2-standard-2"),
        "disks": [{"boot": true, "autoDelete": true,
                   "initializeParams": {"sourceImage": "projects/debian-cloud/global/images/family/debian-12"}}],
        "networkInterfaces": [{"accessConfigs": [{"type": "ONE_TO_ONE_NAT"}]}],
        "labels": labels,
    })
}

/// The `error.errors[0]` of a Google error envelope, after checking the envelope's shape.
pub(crate) fn envelope_error(status: u16, body: &Value) -> (String, String) {
    let error = &body["error"];
    assert_eq!(error["code"], status, "{body}");
    assert!(error["status"].is_string(), "{body}");
    let first = &error["errors"][0];
    assert!(first["domain"].is_string(), "{body}");
    (
        first["reason"].as_str().unwrap().to_owned(),
        error["message"].as_str().unwrap().to_owned(),
    )
}
