//! The provisioner: the launch loop with failover, teardown, reconciliation and orphan checks,
//! all over `&dyn Provider` so every cloud (and the test fake) goes through the same code.
//!
//! # The finalizer contract (DESIGN §6)
//!
//! * Intent is written to the state database *before* any call that can create a billable
//!   resource: [`launch`] calls [`StateDb::record_intent`] and only then `Provider::launch`. If
//!   the intent cannot be written, nothing is launched.
//! * Node ids are written as soon as the provider returns them.
//! * Every step is idempotent: a launch resend reuses its token (the provider returns the nodes
//!   of the first call instead of creating more), terminate of a gone cluster is success, and
//!   recording the same nodes twice changes nothing.
//! * Teardown tolerates a launch that never happened (no row, no cloud recorded, no nodes).
//! * A crash at any point leaves a row that [`reconcile`] (finds the nodes by tag and records
//!   them) and [`teardown`] (terminates by tag on every cloud an attempt may have billed on)
//!   can finish.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker_provider::{
    Candidate, Cloud, ClusterName, ErrorClass, FailoverScope, LaunchSpec, LaunchToken, Node, NodeState, Provider,
    ProviderError, Teardown,
};

use crate::failpoint;
use crate::state::{AttemptOutcome, ClusterRecord, ClusterState, StateDb, StateError};

/// The providers available to this run, by cloud. Clouds without an entry are skipped.
pub type Providers = BTreeMap<Cloud, Arc<dyn Provider>>;

/// What every launch of a cluster shares, whatever candidate it lands on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LaunchTemplate {
    /// Root disk size in GiB.
    pub disk_gib: u32,
    /// An explicit machine image; the provider's default when `None`.
    pub image: Option<String>,
    /// The public key (OpenSSH format) allowed to log in.
    pub ssh_public_key: String,
    /// User labels put on every resource.
    pub labels: BTreeMap<String, String>,
    /// The task's `name`, recorded with the cluster.
    pub task_name: Option<String>,
    /// A hard limit on each node's life, enforced from boot (see `LaunchSpec::max_run_seconds`).
    pub max_run_seconds: Option<u64>,
}

/// A successful launch.
#[derive(Debug, Clone, PartialEq)]
pub struct Launched {
    /// The candidate that got capacity.
    pub candidate: Candidate,
    /// Its nodes, as the provider returned them.
    pub nodes: Vec<Node>,
    /// Launch attempts made, this one included (one per candidate tried; retries not counted).
    pub attempts: usize,
}

/// How transient failures are retried: same candidate, same token, exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first call (so `retries + 1` calls at most).
    pub retries: u32,
    /// Delay before the first retry; doubled for each further one, then jittered by ±50 %.
    pub base: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 3,
            base: Duration::from_millis(200),
        }
    }
}

/// Progress of a launch, for the CLI to show.
#[derive(Debug, Clone, PartialEq)]
pub enum LaunchEvent {
    /// About to call the provider for this candidate.
    Trying {
        /// The candidate.
        candidate: Candidate,
    },
    /// A temporary failure; the same attempt is resent after `delay`.
    Retrying {
        /// The candidate.
        candidate: Candidate,
        /// Which retry this is, from 1.
        retry: u32,
        /// How long until it.
        delay: Duration,
        /// The failure.
        message: String,
    },
    /// The candidate failed.
    Failed {
        /// The candidate.
        candidate: Candidate,
        /// What kind of failure.
        class: ErrorClass,
        /// The provider's message.
        message: String,
        /// What the failure ruled out; `None` when the launch stops here.
        blocked: Option<FailoverScope>,
    },
    /// The candidate was not tried.
    Skipped {
        /// The candidate.
        candidate: Candidate,
        /// Why.
        reason: String,
    },
    /// Every candidate failed for lack of capacity or quota; with `--retry-until-up` the whole
    /// plan is tried again after `delay`.
    Waiting {
        /// The pass about to start, from 2.
        pass: u32,
        /// How long until it.
        delay: Duration,
    },
    /// Nodes were created.
    Launched {
        /// The nodes.
        nodes: Vec<Node>,
    },
}

fn describe(c: &Candidate) -> String {
    format!(
        "{} on {} {}{}",
        c.offer.instance_type,
        c.offer.cloud,
        c.offer.location,
        if c.spot { " (spot)" } else { "" }
    )
}

const fn scope_name(scope: FailoverScope) -> &'static str {
    match scope {
        FailoverScope::Zone => "zone",
        FailoverScope::Region => "region",
        FailoverScope::Cloud => "cloud",
    }
}

impl fmt::Display for LaunchEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Trying { candidate } => write!(f, "trying {}", describe(candidate)),
            Self::Retrying {
                retry, delay, message, ..
            } => write!(f, "{message}; retry {retry} in {} ms", delay.as_millis()),
            Self::Failed { message, blocked, .. } => match blocked {
                Some(scope) => write!(f, "{message}; skipping the rest of that {}", scope_name(*scope)),
                None => write!(f, "{message}; giving up"),
            },
            Self::Skipped { candidate, reason } => write!(f, "skipping {}: {reason}", describe(candidate)),
            Self::Waiting { pass, delay } => write!(
                f,
                "no candidate had capacity; trying the whole plan again in {} s (pass {pass})",
                delay.as_secs()
            ),
            Self::Launched { nodes } => {
                write!(
                    f,
                    "launched {} node{}",
                    nodes.len(),
                    if nodes.len() == 1 { "" } else { "s" }
                )
            }
        }
    }
}

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A provider failure that stops the launch (or a teardown/reconcile call that failed).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Every candidate of the plan failed or was ruled out.
    #[error("no candidate could be launched:{}", list_attempts(.attempts))]
    Exhausted {
        /// Where each attempt went, and why it failed.
        attempts: Vec<(String, String)>,
        /// Whether a failure was a stockout or a quota, which a later pass may get past.
        retryable: bool,
    },
    /// The cluster's cloud has no provider enabled on this machine.
    #[error("no provider for cloud `{0}` is enabled; it is needed to manage this cluster")]
    NoProvider(Cloud),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
}

fn list_attempts(attempts: &[(String, String)]) -> String {
    if attempts.is_empty() {
        return " the plan was empty".to_owned();
    }
    attempts.iter().fold(String::new(), |mut out, (at, why)| {
        out.push_str("\n  - ");
        out.push_str(at);
        out.push_str(": ");
        out.push_str(why);
        out
    })
}

/// Randomness without a crate: `RandomState` is seeded from the OS per process, mixed with the
/// time, the pid and a counter so two calls in one process differ too.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

/// A token unique to this attempt: a resend reuses it, a new attempt (or a new `broker launch`
/// of the same cluster name) never does. At most 40 + 1 + 10 + 1 + 12 characters, inside EC2's
/// 64-character `ClientToken` limit.
fn new_token(cluster: &ClusterName, attempt: usize) -> LaunchToken {
    LaunchToken(format!("{cluster}-{attempt}-{:012x}", random_u64() & 0xffff_ffff_ffff))
}

fn backoff(policy: RetryPolicy, retry: u32) -> Duration {
    let exp = policy.base.saturating_mul(1 << retry.saturating_sub(1).min(16));
    // ±50 % so many brokers hitting the same throttled API do not retry in lockstep.
    let jitter = 0.5 + (random_u64() % 1000) as f64 / 1000.0;
    exp.mul_f64(jitter)
}

/// The places earlier failures ruled out.
#[derive(Default)]
struct Blocked {
    /// Capacity is per instance type, so a stockout only rules out that type in that zone.
    zones: HashSet<(Cloud, String, Option<String>, String)>,
    regions: HashSet<(Cloud, String)>,
    clouds: HashSet<Cloud>,
}

impl Blocked {
    fn zone_key(c: &Candidate) -> (Cloud, String, Option<String>, String) {
        let o = &c.offer;
        (
            o.cloud,
            o.location.region.to_string(),
            o.location.zone.as_deref().map(str::to_owned),
            o.instance_type.to_string(),
        )
    }

    fn block(&mut self, c: &Candidate, scope: FailoverScope) {
        let o = &c.offer;
        match scope {
            FailoverScope::Zone => {
                self.zones.insert(Self::zone_key(c));
            }
            FailoverScope::Region => {
                self.regions.insert((o.cloud, o.location.region.to_string()));
            }
            FailoverScope::Cloud => {
                self.clouds.insert(o.cloud);
            }
        }
    }

    fn why(&self, c: &Candidate) -> Option<&'static str> {
        let o = &c.offer;
        if self.clouds.contains(&o.cloud) {
            Some("an earlier failure ruled out this cloud")
        } else if self.regions.contains(&(o.cloud, o.location.region.to_string())) {
            Some("an earlier failure ruled out this region")
        } else if self.zones.contains(&Self::zone_key(c)) {
            Some("an earlier failure ruled out this zone")
        } else {
            None
        }
    }
}

/// Marks the cluster failed after a launch gives up; the launch's own error is what matters to
/// the caller, so a database failure here is only logged (the row stays `requesting`, which
/// reconcile and teardown handle just as well).
fn mark_failed(db: &StateDb, cluster: &ClusterName) {
    if let Err(e) = db.set_state(cluster, ClusterState::Failed) {
        tracing::warn!(%cluster, error = %e, "could not mark the cluster failed");
    }
}

/// Launches the cluster on the first candidate of `plan` that works, with the default retry policy.
pub async fn launch(
    db: &StateDb,
    providers: &Providers,
    cluster: &ClusterName,
    plan: &[Candidate],
    template: &LaunchTemplate,
    events: &mut dyn FnMut(LaunchEvent),
) -> Result<Launched, ProvisionError> {
    launch_with(db, providers, cluster, plan, template, RetryPolicy::default(), events).await
}

/// [`launch`] with an explicit retry policy.
///
/// Walks `plan` in order, skipping candidates an earlier failure ruled out and clouds without a
/// provider. Each attempt gets a fresh token and a `pending` row before the provider is called.
pub async fn launch_with(
    db: &StateDb,
    providers: &Providers,
    cluster: &ClusterName,
    plan: &[Candidate],
    template: &LaunchTemplate,
    retry: RetryPolicy,
    events: &mut dyn FnMut(LaunchEvent),
) -> Result<Launched, ProvisionError> {
    let mut blocked = Blocked::default();
    let mut failures: Vec<(String, String)> = Vec::new();
    let mut retryable = false;
    let mut attempts = 0usize;
    for candidate in plan {
        if let Some(reason) = blocked.why(candidate) {
            events(LaunchEvent::Skipped {
                candidate: candidate.clone(),
                reason: reason.to_owned(),
            });
            continue;
        }
        let cloud = candidate.offer.cloud;
        let Some(provider) = providers.get(&cloud) else {
            let reason = format!("no provider for `{cloud}` is enabled");
            failures.push((describe(candidate), reason.clone()));
            events(LaunchEvent::Skipped {
                candidate: candidate.clone(),
                reason,
            });
            continue;
        };
        attempts += 1;
        let token = new_token(cluster, attempts);
        let spec = LaunchSpec::new(
            cluster.clone(),
            token.clone(),
            &candidate.offer,
            candidate.nodes,
            candidate.spot,
        )
        .with_disk_gib(template.disk_gib)
        .with_image(template.image.clone())
        .with_ssh_public_key(template.ssh_public_key.clone())
        .with_labels(template.labels.clone())
        .with_max_run_seconds(template.max_run_seconds);
        events(LaunchEvent::Trying {
            candidate: candidate.clone(),
        });
        // The intent row goes first: if this fails, nothing has been asked of the cloud.
        let attempt_id = db.record_intent(cluster, candidate, &token, template.task_name.as_deref())?;
        failpoint::hit("after-intent");

        let mut retries = 0;
        let result = loop {
            match provider.launch(&spec).await {
                Err(err) if err.class() == ErrorClass::Transient && retries < retry.retries => {
                    retries += 1;
                    let delay = backoff(retry, retries);
                    events(LaunchEvent::Retrying {
                        candidate: candidate.clone(),
                        retry: retries,
                        delay,
                        message: err.to_string(),
                    });
                    // Same spec, same token: if the failed call did create nodes, the resend
                    // returns them instead of creating a second set.
                    tokio::time::sleep(delay).await;
                }
                other => break other,
            }
        };

        match result {
            Ok(nodes) => {
                failpoint::hit("after-create");
                // Node ids first, then the outcome: the ids are what teardown needs.
                db.record_nodes(cluster, &nodes)?;
                failpoint::hit("after-record");
                db.finish_attempt(attempt_id, AttemptOutcome::Ok, None)?;
                events(LaunchEvent::Launched { nodes: nodes.clone() });
                return Ok(Launched {
                    candidate: candidate.clone(),
                    nodes,
                    attempts,
                });
            }
            Err(err) => {
                let class = err.class();
                let message = err.to_string();
                db.finish_attempt(attempt_id, AttemptOutcome::from_class(class), Some(&message))?;
                let scope = err.failover();
                events(LaunchEvent::Failed {
                    candidate: candidate.clone(),
                    class,
                    message: message.clone(),
                    blocked: scope,
                });
                let Some(scope) = scope else {
                    mark_failed(db, cluster);
                    return Err(ProvisionError::Provider(err));
                };
                retryable |= matches!(class, ErrorClass::Capacity | ErrorClass::Quota);
                blocked.block(candidate, scope);
                failures.push((describe(candidate), message));
            }
        }
    }
    if db.cluster(cluster)?.is_some() {
        mark_failed(db, cluster);
    }
    Err(ProvisionError::Exhausted {
        attempts: failures,
        retryable,
    })
}

/// How long `--retry-until-up` keeps trying, and how it spaces the passes over the plan.
#[derive(Debug, Clone)]
pub struct RetryUntilUp {
    /// No pass starts after this.
    pub deadline: tokio::time::Instant,
    /// Pause before the second pass; doubled for each further one, jittered, capped by `max`.
    pub base: Duration,
    /// The longest pause between passes.
    pub max: Duration,
    /// Set by Ctrl-C or SIGTERM: no further pass starts, and a pause ends at once.
    pub cancelled: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl RetryUntilUp {
    /// Passes until `within` from now, 10 s apart at first and at most 2 min apart.
    pub fn within(within: Duration) -> Self {
        Self {
            deadline: tokio::time::Instant::now() + within,
            base: Duration::from_secs(10),
            max: Duration::from_mins(2),
            cancelled: None,
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.as_ref().is_some_and(|c| c.load(Ordering::SeqCst))
    }
}

/// [`launch_with`] repeated over the whole plan while every candidate fails for lack of
/// capacity or quota (stockouts pass), until `until.deadline`. Earlier passes' blocks are
/// forgotten: a zone that was out of stock a minute ago may not be now.
#[allow(clippy::too_many_arguments)]
pub async fn launch_until(
    db: &StateDb,
    providers: &Providers,
    cluster: &ClusterName,
    plan: &[Candidate],
    template: &LaunchTemplate,
    retry: RetryPolicy,
    until: RetryUntilUp,
    events: &mut dyn FnMut(LaunchEvent),
) -> Result<Launched, ProvisionError> {
    let mut pass = 1u32;
    loop {
        match launch_with(db, providers, cluster, plan, template, retry, events).await {
            Err(ProvisionError::Exhausted { retryable: true, .. })
                if tokio::time::Instant::now() < until.deadline && !until.is_cancelled() =>
            {
                pass += 1;
                let policy = RetryPolicy {
                    retries: 0,
                    base: until.base,
                };
                let left = until.deadline.saturating_duration_since(tokio::time::Instant::now());
                let delay = backoff(policy, pass - 1).min(until.max).min(left);
                events(LaunchEvent::Waiting { pass, delay });
                // In slices, so a signal ends the pause within a second.
                let resume = tokio::time::Instant::now() + delay;
                while tokio::time::Instant::now() < resume && !until.is_cancelled() {
                    tokio::time::sleep(Duration::from_secs(1).min(resume - tokio::time::Instant::now())).await;
                }
            }
            other => return other,
        }
    }
}

/// The clouds an attempt of this cluster may have created resources on: the recorded cloud,
/// plus every cloud of an attempt that did not end in a clean refusal.
fn billed_clouds(db: &StateDb, record: &ClusterRecord) -> Result<BTreeSet<Cloud>, StateError> {
    let mut clouds: BTreeSet<Cloud> = record.cloud.into_iter().collect();
    clouds.extend(
        db.attempts(&record.name)?
            .into_iter()
            .filter(|a| a.outcome.may_have_created())
            .map(|a| a.cloud),
    );
    Ok(clouds)
}

/// Terminates everything of the cluster and marks it `torn_down`.
///
/// Terminates by tag on the cluster's cloud and on every other cloud an attempt may have billed
/// on; when the row is missing or records no cloud yet (a crash before the intent landed, or a
/// name typed by hand), on every provider. Idempotent: a second call returns
/// [`Teardown::AlreadyGone`]. On a provider error the cluster stays `terminating`, to be retried.
pub async fn teardown(db: &StateDb, providers: &Providers, cluster: &ClusterName) -> Result<Teardown, ProvisionError> {
    let record = db.cluster(cluster)?;
    let mut targets: Vec<&Arc<dyn Provider>> = Vec::new();
    match &record {
        Some(rec) if rec.cloud.is_some() => {
            let main = rec.cloud;
            for cloud in billed_clouds(db, rec)? {
                match providers.get(&cloud) {
                    Some(p) => targets.push(p),
                    // Without the cluster's own cloud nothing can be done; fail loudly.
                    None if Some(cloud) == main => return Err(ProvisionError::NoProvider(cloud)),
                    // An earlier attempt's cloud that is no longer enabled: say so, go on.
                    None => tracing::warn!(%cluster, %cloud, "cannot check an earlier attempt's cloud: no provider"),
                }
            }
        }
        _ => targets.extend(providers.values()),
    }
    if record.is_some() {
        db.set_state(cluster, ClusterState::Terminating)?;
    }
    let mut terminated = Vec::new();
    for provider in targets {
        if let Teardown::Terminated(ids) = provider.terminate(cluster).await? {
            terminated.extend(ids);
        }
    }
    db.forget(cluster)?;
    Ok(if terminated.is_empty() {
        Teardown::AlreadyGone
    } else {
        Teardown::Terminated(terminated)
    })
}

/// Brings the cluster's record in line with what its cloud reports, and returns the new record.
///
/// * Nodes found for a cluster that is `requesting` (a crash right after launch), `failed` or
///   `torn_down` are recorded and the cluster becomes `provisioned`: something is billing.
/// * Nodes found for a cluster further along update its node rows; its state is kept.
/// * No nodes for a cluster that had some (or was `terminating`) makes it `torn_down`.
/// * No nodes for a cluster still `requesting` or `failed` without nodes leaves it alone: the
///   launch may still be in flight, and `teardown` is the way to give up on it.
pub async fn reconcile(
    db: &StateDb,
    providers: &Providers,
    cluster: &ClusterName,
) -> Result<ClusterRecord, ProvisionError> {
    let record = db
        .cluster(cluster)?
        .ok_or_else(|| StateError::UnknownCluster(cluster.to_string()))?;
    let Some(cloud) = record.cloud else {
        return Ok(record);
    };
    let provider = providers.get(&cloud).ok_or(ProvisionError::NoProvider(cloud))?;
    let nodes: Vec<Node> = provider
        .nodes(cluster)
        .await?
        .into_iter()
        .filter(|n| n.state != NodeState::Terminated)
        .collect();
    let state = record.state;
    if nodes.is_empty() {
        let had_nodes = !record.nodes.is_empty();
        if state != ClusterState::TornDown && (had_nodes || state == ClusterState::Terminating) {
            db.forget(cluster)?;
        }
    } else if matches!(
        state,
        ClusterState::Planned | ClusterState::Requesting | ClusterState::Failed | ClusterState::TornDown
    ) {
        db.record_nodes(cluster, &nodes)?;
    } else {
        db.update_nodes(cluster, &nodes)?;
        // Nodes stop themselves (autostop); the record must say so, or status shows a
        // stopped cluster as running.
        if nodes.iter().all(|n| n.state == NodeState::Stopped) && state != ClusterState::Stopped {
            db.set_state(cluster, ClusterState::Stopped)?;
        }
    }
    Ok(db
        .cluster(cluster)?
        .ok_or_else(|| StateError::UnknownCluster(cluster.to_string()))?)
}

/// Nodes carrying broker's tag that no live cluster record accounts for.
///
/// A node is accounted for when its cluster is recorded, not `torn_down`, and its cloud is one
/// the cluster may have billed on.
pub async fn orphans(db: &StateDb, providers: &Providers) -> Result<Vec<Node>, ProvisionError> {
    let mut known: HashMap<ClusterName, BTreeSet<Cloud>> = HashMap::new();
    for record in db.clusters()? {
        if record.state != ClusterState::TornDown {
            let clouds = billed_clouds(db, &record)?;
            known.insert(record.name, clouds);
        }
    }
    let mut found = Vec::new();
    for (cloud, provider) in providers {
        for node in provider.sweep().await? {
            if !known.get(&node.cluster).is_some_and(|clouds| clouds.contains(cloud)) {
                found.push(node);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
