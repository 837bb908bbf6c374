//! A fake Google Compute Engine v1 REST server for broker's tests, on 127.0.0.1 only.
//!
//! It serves the part of Compute the GCP provider uses (instances, zone and global operations,
//! firewalls, images, machine and accelerator types), Google's `OAuth2` token endpoint and the GCE metadata server,
//! with the real API's JSON shapes, status timelines and error formats.
//!
//! **Every request is checked against Google's discovery document for compute v1**: unknown
//! fields, JSON types (int64 as strings), enums, `$ref`s, maps, required fields and patterns in
//! bodies; unknown or malformed query parameters (`requestId` must be a UUID). A violation is
//! answered with a 400 in Google's envelope naming the field *and* recorded, so a provider test
//! ends with `assert!(fake.schema_violations().is_empty())`. Beyond the schema it makes the
//! semantic checks the real API makes on insert (see `instance_rules.rs`).
//!
//! The discovery document is not in the repository: [`discovery_document`] fetches it once from
//! a pinned `PyPI` wheel with `fetch-discovery.sh` (or set `BROKER_GCE_DISCOVERY`).
//!
//! What it is not: a simulator of placement, billing or quotas. Capacity and quota errors happen
//! only when a test injects them ([`FakeGce::inject`]); addresses are invented and never reachable.
//!
//! ```no_run
//! # async fn demo() -> Result<(), broker_gce_fake::FakeError> {
//! use broker_gce_fake::{FakeGce, FakeOptions, Fault};
//! let fake = FakeGce::start(FakeOptions::default()).await?;
//! let token = fake.issue_token();
//! fake.inject(Fault::Capacity { zone: "us-central1-a".into(), times: Some(1) });
//! // ... drive the provider at fake.compute_url() with `Authorization: Bearer {token}` ...
//! assert!(fake.schema_violations().is_empty());
//! # Ok(()) }
//! ```

mod auth;
mod call;
mod catalog;
mod catalog_api;
mod clock;
mod compute;
mod discovery;
mod envelope;
mod error;
mod filter;
mod firewalls;
mod instance_resource;
mod instance_rules;
mod metadata;
mod operations;
mod params;
mod routes;
mod schema;
mod state;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::Instant;

pub use discovery::{DISCOVERY_ENV, discovery_document, discovery_path};
pub use error::FakeError;

use crate::discovery::Discovery;
use crate::operations::{NewOperation, Scope};
use crate::state::{RefreshGrant, Shared, Step};

/// Every way `value` breaks the discovery schema `schema` (e.g. `Instance`, `Operation`,
/// `Firewall`) as it would be checked in a request to `method` (e.g. `compute.instances.insert`,
/// which decides the required fields; `""` for none). Output-only fields are accepted, so this
/// also checks responses. Loads (and on first use fetches) the discovery document.
pub fn validate_schema(method: &str, schema: &str, value: &Value) -> Result<Vec<String>, FakeError> {
    let discovery = Discovery::load()?;
    if discovery.schema(schema).is_none() {
        return Ok(vec![format!("the discovery document has no schema `{schema}`")]);
    }
    Ok(schema::validate_body(&discovery, method, schema, value)
        .into_iter()
        .map(|violation| violation.message)
        .collect())
}

/// A service-account key pair for tests, committed on purpose: it is not a secret and grants
/// nothing outside a fake. PKCS#8 PEM, as in a service-account JSON key file.
pub const TEST_SERVICE_ACCOUNT_KEY_PEM: &str = include_str!("../keys/service-account.pem");
/// The public half of [`TEST_SERVICE_ACCOUNT_KEY_PEM`] (SPKI PEM).
pub const TEST_SERVICE_ACCOUNT_PUBLIC_PEM: &str = include_str!("../keys/service-account.pub.pem");

/// How a fake behaves.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// The one project that has resources. Default `broker-test`.
    pub project: String,
    /// Its project number (metadata server `numeric-project-id`). Default `123456789012`.
    pub project_number: u64,
    /// How long an operation stays `RUNNING` before `DONE`. Instance statuses move on the same
    /// clock: an inserted or started VM is `STAGING` at half of it and `RUNNING` at one and a
    /// half times it (so a done insert may still be staging, as on the real API); a stopped VM
    /// is `TERMINATED`, a deleted one gone, when the operation is done. Default 200 ms.
    pub operation_delay: Duration,
    /// The longest `operations/{op}/wait` blocks before answering a still-running operation
    /// (the real API: about 2 minutes). Default 2 s.
    pub wait_timeout: Duration,
    /// How long issued access tokens stay valid. Default one hour, like Google's.
    pub token_lifetime: Duration,
    /// The VMs' default service account and the metadata server's account email.
    pub service_account_email: String,
    /// The port to listen on, on 127.0.0.1; 0 picks a free one. Default 0.
    pub port: u16,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            project: "broker-test".to_owned(),
            project_number: 123_456_789_012,
            operation_delay: Duration::from_millis(200),
            wait_timeout: Duration::from_secs(2),
            token_lifetime: Duration::from_hours(1),
            service_account_email: "123456789012-compute@developer.gserviceaccount.com".to_owned(),
            port: 0,
        }
    }
}

/// A failure to inject, reported in the operation of the next matching call(s).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `ZONE_RESOURCE_POOL_EXHAUSTED` (HTTP 503 in the operation) for inserts and starts in
    /// `zone`; `times: None` means for as long as the fake runs.
    Capacity { zone: String, times: Option<u32> },
    /// The same with code `ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS` and the
    /// `'(resource type:compute)'` message.
    CapacityWithDetails { zone: String, times: Option<u32> },
    /// `QUOTA_EXCEEDED` (HTTP 403 in the operation) for inserts in `region`, or in every region
    /// when `None`, with a message naming `metric` (e.g. `NVIDIA_T4_GPUS`, `GPUS_ALL_REGIONS`).
    Quota {
        region: Option<String>,
        metric: String,
        times: Option<u32>,
    },
}

/// An instance as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeInstance {
    pub name: String,
    pub zone: String,
    /// `PROVISIONING`, `STAGING`, `RUNNING`, `STOPPING`, `TERMINATED`.
    pub status: String,
    pub labels: BTreeMap<String, String>,
    /// The full `Instance` JSON that `instances.get` returns.
    pub resource: Value,
}

/// One request the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    pub status: u16,
    /// For 4xx/5xx answers: the error message sent.
    pub error: Option<String>,
}

/// A running fake; the server stops when this is dropped.
#[derive(Debug)]
pub struct FakeGce {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for FakeGce {
    fn drop(&mut self) {
        // Graceful: the listener closes at once, idle keep-alive connections are closed, and a
        // request in flight (an operation wait) is still answered.
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl FakeGce {
    /// Loads the discovery document (fetching it on first use) and serves on 127.0.0.1.
    /// Must be called inside a tokio runtime, which then runs the server.
    pub async fn start(options: FakeOptions) -> Result<Self, FakeError> {
        let discovery = tokio::task::spawn_blocking(Discovery::load)
            .await
            .map_err(|e| FakeError::io("loading the discovery document", std::io::Error::other(e)))??;
        let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| FakeError::io(format!("cannot listen on {bind}"), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| FakeError::io("cannot read the listening address", e))?;
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() ^ u64::from(d.subsec_nanos()) << 20)
            ^ u64::from(addr.port()) << 48;
        let shared = Arc::new(Shared::new(options, discovery, format!("http://{addr}"), seed));
        let app = routes::router(Arc::clone(&shared));
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            // `serve` only fails on an accept error the fake cannot recover from; tests then see
            // connection failures, which is the clearest report available from here.
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            shared,
            addr,
            shutdown: Some(shutdown),
        })
    }

    /// `http://127.0.0.1:PORT/compute/v1`; the provider appends `/projects/{p}/zones/...`.
    pub fn compute_url(&self) -> String {
        self.shared.compute_base()
    }

    /// `http://127.0.0.1:PORT/token`, also the `aud` service-account JWTs must carry.
    pub fn token_url(&self) -> String {
        self.shared.token_url()
    }

    /// `http://127.0.0.1:PORT`; the provider appends `/computeMetadata/v1/...`.
    pub fn metadata_url(&self) -> String {
        self.shared.origin.clone()
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn project(&self) -> &str {
        &self.shared.options.project
    }

    /// The revision of the discovery document in use (e.g. `20261106`).
    pub fn discovery_revision(&self) -> &str {
        self.shared.discovery.revision()
    }

    /// Lets `email` sign JWT assertions with the private half of `public_key_pem` (SPKI
    /// `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`). A key that does not parse verifies nothing; the
    /// token endpoint then says so in its error.
    pub fn add_service_account(&self, email: &str, public_key_pem: &str) {
        self.shared
            .state()
            .service_accounts
            .entry(email.to_owned())
            .or_default()
            .push(public_key_pem.to_owned());
    }

    /// Registers an `authorized_user` credential for the `refresh_token` grant.
    pub fn add_refresh_token(&self, client_id: &str, client_secret: &str, refresh_token: &str) {
        self.shared.state().refresh_grants.push(RefreshGrant {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            refresh_token: refresh_token.to_owned(),
        });
    }

    /// A service-account key file (the JSON `gcloud iam service-accounts keys create` writes)
    /// for `email`, whose `token_uri` is this fake and whose key is registered here.
    pub fn service_account_key(&self, email: &str) -> Value {
        self.add_service_account(email, TEST_SERVICE_ACCOUNT_PUBLIC_PEM);
        json!({
            "type": "service_account",
            "project_id": self.shared.options.project,
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": TEST_SERVICE_ACCOUNT_KEY_PEM,
            "client_email": email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_url(),
        })
    }

    /// A valid bearer token with the cloud-platform scope, for tests not about auth.
    pub fn issue_token(&self) -> String {
        self.issue_token_for(self.shared.options.token_lifetime)
    }

    /// A valid bearer token that expires after `lifetime`.
    pub fn issue_token_for(&self, lifetime: Duration) -> String {
        self.shared
            .state()
            .issue_token(lifetime, vec![auth::CLOUD_PLATFORM_SCOPE.to_owned()])
    }

    /// Makes matching calls fail as described by `fault` (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.shared.state().add_fault(fault);
    }

    /// Removes every injected fault that is still active.
    pub fn clear_faults(&self) {
        self.shared.state().clear_faults();
    }

    /// Makes `machine_type` unknown in `zone` (`machineTypes.get` 404s, insert refuses it with
    /// the real "does not exist in zone" error), for tests of "not offered here".
    pub fn hide_machine_type(&self, zone: &str, machine_type: &str) {
        self.shared
            .state()
            .hidden_machine_types
            .insert((zone.to_owned(), machine_type.to_owned()));
    }

    /// Preempts a VM as Compute does a Spot VM: it is deleted (termination action `DELETE`) or
    /// stopped (`STOP`, the default), and a `compute.instances.preempted` operation by `system`
    /// is recorded. Returns false when there is no such instance.
    pub fn preempt(&self, zone: &str, name: &str) -> bool {
        let shared = &self.shared;
        let mut state = shared.state();
        let key = (zone.to_owned(), name.to_owned());
        let Some(record) = state.instances.get_mut(&key) else {
            return false;
        };
        let now = Instant::now();
        let delete = record.resource.pointer("/scheduling/instanceTerminationAction") == Some(&json!("DELETE"));
        record.resource["status"] = json!("STOPPING");
        record.reschedule(if delete {
            vec![(now, Step::Remove)]
        } else {
            vec![(now, Step::Status("TERMINATED")), (now, Step::ReleaseExternalIps)]
        });
        let target_link = record
            .resource
            .get("selfLink")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let target_id = record
            .resource
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| id.parse().ok())
            .unwrap_or_default();
        let op = state.create_operation(
            shared,
            NewOperation {
                scope: Scope::Zone(zone.to_owned()),
                operation_type: "compute.instances.preempted",
                target_link,
                target_id,
                request_id: None,
                error: None,
                immediate: true,
            },
        );
        if let Some(name) = op.get("name").and_then(Value::as_str)
            && let Some(record) = state.operations.get_mut(name)
        {
            "system".clone_into(&mut record.user);
        }
        true
    }

    /// Every instance, as of now, sorted by zone and name.
    pub fn instances(&self) -> Vec<FakeInstance> {
        self.shared
            .state()
            .instances
            .values()
            .map(|record| FakeInstance {
                name: record.name.clone(),
                zone: record.zone.clone(),
                status: record.status().to_owned(),
                labels: record
                    .resource
                    .get("labels")
                    .and_then(Value::as_object)
                    .map(|labels| {
                        labels
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                            .collect()
                    })
                    .unwrap_or_default(),
                resource: record.resource.clone(),
            })
            .collect()
    }

    /// Every firewall rule, as `firewalls.get` returns them.
    pub fn firewalls(&self) -> Vec<Value> {
        self.shared.state().firewalls.values().cloned().collect()
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// Every violation of the discovery document seen so far, as
    /// `"{METHOD} {path}: {message}"`. A correct client leaves this empty.
    pub fn schema_violations(&self) -> Vec<String> {
        self.shared.state().schema_violations.clone()
    }
}
