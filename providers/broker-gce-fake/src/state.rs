//! Everything the fake remembers, behind one mutex that is never held across an `.await`.
//!
//! Nothing runs in the background: instances and operations carry their future as a list of
//! timed steps, and every access first applies the steps that are due ([`State::settle`]). So
//! the fake needs no tasks, is deterministic for a given clock, and follows tokio's paused time.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::clock::{Clock, Ids};
use crate::discovery::Discovery;
use crate::operations::{OperationError, OperationRecord};
use crate::{FakeOptions, Fault, RecordedRequest};

/// What the request handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: FakeOptions,
    pub(crate) discovery: Arc<Discovery>,
    /// `http://127.0.0.1:PORT`
    pub(crate) origin: String,
    pub(crate) clock: Clock,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(options: FakeOptions, discovery: Arc<Discovery>, origin: String, seed: u64) -> Self {
        Self {
            options,
            discovery,
            origin,
            clock: Clock::new(),
            state: Mutex::new(State::new(seed)),
        }
    }

    /// The state, with every step that is due applied.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.settle(Instant::now(), &self.clock);
        state
    }

    /// `http://127.0.0.1:PORT/compute/v1`
    pub(crate) fn compute_base(&self) -> String {
        format!("{}/compute/v1", self.origin)
    }

    /// The self link of a project-relative path such as `zones/z/instances/n`.
    pub(crate) fn link(&self, relative: &str) -> String {
        format!("{}/projects/{}/{relative}", self.compute_base(), self.options.project)
    }

    pub(crate) fn token_url(&self) -> String {
        format!("{}/token", self.origin)
    }
}

/// A stored instance and the status changes scheduled for it.
#[derive(Debug, Clone)]
pub(crate) struct InstanceRecord {
    pub(crate) zone: String,
    pub(crate) name: String,
    pub(crate) resource: Value,
    pub(crate) pending: VecDeque<(Instant, Step)>,
}

impl InstanceRecord {
    pub(crate) fn status(&self) -> &str {
        self.resource.get("status").and_then(Value::as_str).unwrap_or_default()
    }

    /// Drops what was scheduled and schedules `steps` instead: a new action supersedes the last.
    pub(crate) fn reschedule(&mut self, steps: impl IntoIterator<Item = (Instant, Step)>) {
        self.pending = steps.into_iter().collect();
    }

    fn apply(&mut self, at: Instant, step: &Step, clock: &Clock, ids: &mut Ids) {
        match step {
            Step::Status(status) => {
                self.resource["status"] = json!(status);
                match *status {
                    "RUNNING" => self.resource["lastStartTimestamp"] = json!(clock.rfc3339(at)),
                    "TERMINATED" => self.resource["lastStopTimestamp"] = json!(clock.rfc3339(at)),
                    _ => {}
                }
            }
            Step::AssignExternalIps => {
                for config in access_configs(&mut self.resource) {
                    config["natIP"] = json!(external_ip(ids));
                }
            }
            Step::ReleaseExternalIps => {
                for config in access_configs(&mut self.resource) {
                    if let Some(map) = config.as_object_mut() {
                        map.remove("natIP");
                    }
                }
            }
            Step::Remove => {}
        }
    }
}

fn access_configs(resource: &mut Value) -> impl Iterator<Item = &mut Value> {
    resource
        .get_mut("networkInterfaces")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(|nic| nic.get_mut("accessConfigs").and_then(Value::as_array_mut))
        .flatten()
}

/// An invented external address in 34.0.0.0/7, never dialled: broker maps instances to test
/// hosts by id.
pub(crate) fn external_ip(ids: &mut Ids) -> String {
    let n = ids.next();
    format!(
        "{}.{}.{}.{}",
        34 + (n & 1),
        (n >> 8) & 0xFF,
        (n >> 16) & 0xFF,
        1 + ((n >> 24) % 254)
    )
}

/// A scheduled change to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Status(&'static str),
    AssignExternalIps,
    ReleaseExternalIps,
    Remove,
}

/// A registered `authorized_user` credential.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) refresh_token: String,
}

/// An access token the fake issued.
#[derive(Debug, Clone)]
pub(crate) struct IssuedToken {
    pub(crate) expires_at: Instant,
    pub(crate) scopes: Vec<String>,
}

#[derive(Debug, Clone)]
struct ActiveFault {
    fault: Fault,
    remaining: Option<u32>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) ids: Ids,
    /// Keyed by (zone, name).
    pub(crate) instances: BTreeMap<(String, String), InstanceRecord>,
    pub(crate) firewalls: BTreeMap<String, Value>,
    pub(crate) operations: HashMap<String, OperationRecord>,
    /// `requestId` → the name of the operation it created.
    pub(crate) request_ids: HashMap<String, String>,
    pub(crate) tokens: HashMap<String, IssuedToken>,
    /// Service-account email → its public keys (PEM).
    pub(crate) service_accounts: HashMap<String, Vec<String>>,
    pub(crate) refresh_grants: Vec<RefreshGrant>,
    pub(crate) hidden_machine_types: HashSet<(String, String)>,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) schema_violations: Vec<String>,
    next_internal_ip: u32,
    faults: Vec<ActiveFault>,
}

impl State {
    fn new(seed: u64) -> Self {
        Self {
            ids: Ids::new(seed),
            instances: BTreeMap::new(),
            firewalls: BTreeMap::new(),
            operations: HashMap::new(),
            request_ids: HashMap::new(),
            tokens: HashMap::new(),
            service_accounts: HashMap::new(),
            refresh_grants: Vec::new(),
            hidden_machine_types: HashSet::new(),
            requests: Vec::new(),
            schema_violations: Vec::new(),
            next_internal_ip: 0,
            faults: Vec::new(),
        }
    }

    /// Applies every scheduled step that is due at `now`, in time order per instance.
    fn settle(&mut self, now: Instant, clock: &Clock) {
        let mut removed = Vec::new();
        for (key, record) in &mut self.instances {
            while let Some((at, _)) = record.pending.front()
                && *at <= now
            {
                let Some((at, step)) = record.pending.pop_front() else {
                    break;
                };
                if step == Step::Remove {
                    removed.push(key.clone());
                    break;
                }
                record.apply(at, &step, clock, &mut self.ids);
            }
        }
        for key in removed {
            self.instances.remove(&key);
        }
    }

    /// An internal address in 10.128.0.0/16, as the default network's us-central1 subnet hands out.
    pub(crate) fn internal_ip(&mut self) -> String {
        let n = self.next_internal_ip;
        self.next_internal_ip = (n + 1) % (256 * 254 - 2);
        let host = n + 2;
        format!("10.128.{}.{}", host / 254, host % 254 + 1)
    }

    pub(crate) fn add_fault(&mut self, fault: Fault) {
        let remaining = match &fault {
            Fault::Capacity { times, .. } | Fault::CapacityWithDetails { times, .. } | Fault::Quota { times, .. } => {
                *times
            }
        };
        if remaining != Some(0) {
            self.faults.push(ActiveFault { fault, remaining });
        }
    }

    pub(crate) fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// The first injected fault that applies to creating (`starting` = false) or starting a VM
    /// in `zone`, used up by one. Quota faults apply to creation only.
    pub(crate) fn take_fault(&mut self, project: &str, zone: &str, starting: bool) -> Option<OperationError> {
        let region = crate::catalog::region_of(zone);
        let index = self.faults.iter().position(|active| match &active.fault {
            Fault::Capacity { zone: z, .. } | Fault::CapacityWithDetails { zone: z, .. } => z == zone,
            Fault::Quota { region: r, .. } => !starting && r.as_deref().is_none_or(|r| r == region),
        })?;
        let active = &mut self.faults[index];
        let error = match &active.fault {
            Fault::Capacity { .. } => OperationError::capacity(project, zone, false),
            Fault::CapacityWithDetails { .. } => OperationError::capacity(project, zone, true),
            Fault::Quota { metric, .. } => OperationError::quota(metric, region),
        };
        if let Some(remaining) = &mut active.remaining {
            *remaining -= 1;
            if *remaining == 0 {
                self.faults.remove(index);
            }
        }
        Some(error)
    }
}
