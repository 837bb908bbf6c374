//! Tests of the launch loop, teardown, reconcile and orphans against `FakeProvider`.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32};

use broker_provider::fake::{FakeProvider, Fault};
use broker_provider::{Arch, Location, Offer, Readiness};

use super::*;

type Hook = Box<dyn Fn(&LaunchSpec) -> Option<ProviderError> + Send + Sync>;
type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Wraps a fake to run a hook before each launch: to look at the database mid-launch or to
/// inject failures the fake cannot script (auth, transient).
struct Scripted {
    inner: Arc<FakeProvider>,
    hook: Hook,
    /// Tokens of the calls the hook failed (the fake never sees those).
    failed: Mutex<Vec<LaunchToken>>,
}

impl Scripted {
    fn new(inner: &Arc<FakeProvider>, hook: Hook) -> Self {
        Self {
            inner: Arc::clone(inner),
            hook,
            failed: Mutex::new(Vec::new()),
        }
    }
}

impl fmt::Debug for Scripted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scripted({:?})", self.inner)
    }
}

impl fmt::Display for Scripted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scripted({})", self.inner)
    }
}

// Written out by hand as `async_trait` would expand it: the broker crate does not depend on it.
impl Provider for Scripted {
    fn cloud(&self) -> Cloud {
        self.inner.cloud()
    }

    fn check<'a, 'async_trait>(&'a self) -> BoxFut<'async_trait, Result<Readiness, ProviderError>>
    where
        'a: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.check()
    }

    fn launch<'a, 'b, 'async_trait>(
        &'a self,
        spec: &'b LaunchSpec,
    ) -> BoxFut<'async_trait, Result<Vec<Node>, ProviderError>>
    where
        'a: 'async_trait,
        'b: 'async_trait,
        Self: 'async_trait,
    {
        match (self.hook)(spec) {
            Some(err) => {
                self.failed.lock().unwrap().push(spec.token.clone());
                Box::pin(async move { Err(err) })
            }
            None => self.inner.launch(spec),
        }
    }

    fn nodes<'a, 'b, 'async_trait>(
        &'a self,
        cluster: &'b ClusterName,
    ) -> BoxFut<'async_trait, Result<Vec<Node>, ProviderError>>
    where
        'a: 'async_trait,
        'b: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.nodes(cluster)
    }

    fn terminate<'a, 'b, 'async_trait>(
        &'a self,
        cluster: &'b ClusterName,
    ) -> BoxFut<'async_trait, Result<Teardown, ProviderError>>
    where
        'a: 'async_trait,
        'b: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.terminate(cluster)
    }

    fn sweep<'a, 'async_trait>(&'a self) -> BoxFut<'async_trait, Result<Vec<Node>, ProviderError>>
    where
        'a: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.sweep()
    }
}

fn cand(cloud: Cloud, region: &str, zone: Option<&str>) -> Candidate {
    Candidate {
        offer: Offer {
            cloud,
            instance_type: "g5.xlarge".into(),
            accelerator: None,
            vcpus: None,
            memory_gib: None,
            price: Some(1.0),
            spot_price: None,
            location: Location {
                region: Cow::Owned(region.to_owned()),
                zone: zone.map(|z| Cow::Owned(z.to_owned())),
            },
            arch: Arch::X86_64,
        },
        rank: 0,
        spot: false,
        nodes: 2,
        hourly_total: 2.0,
        option: 0,
    }
}

fn name(s: &str) -> ClusterName {
    s.parse().unwrap()
}

fn providers(list: Vec<Arc<dyn Provider>>) -> Providers {
    list.into_iter().map(|p| (p.cloud(), p)).collect()
}

fn template() -> LaunchTemplate {
    LaunchTemplate {
        disk_gib: 100,
        image: None,
        ssh_public_key: "ssh-ed25519 AAAA test".into(),
        labels: BTreeMap::new(),
        task_name: Some("train".into()),
        max_run_seconds: Some(1200),
    }
}

async fn run(
    db: &StateDb,
    providers: &Providers,
    cluster: &ClusterName,
    plan: &[Candidate],
) -> (Result<Launched, ProvisionError>, Vec<LaunchEvent>) {
    let mut events = Vec::new();
    let result = launch(db, providers, cluster, plan, &template(), &mut |e| events.push(e)).await;
    (result, events)
}

fn where_tried(fake: &FakeProvider) -> Vec<String> {
    fake.launches().iter().map(|s| s.location.to_string()).collect()
}

#[tokio::test]
async fn intent_is_pending_in_the_db_while_the_provider_is_called() {
    let db = Arc::new(StateDb::open_in_memory().unwrap());
    let cluster = name("c1");
    let seen = Arc::new(AtomicBool::new(false));
    let hook: Hook = {
        let (db, cluster, seen) = (Arc::clone(&db), cluster.clone(), Arc::clone(&seen));
        Box::new(move |spec| {
            let attempts = db.attempts(&cluster).unwrap();
            let last = attempts.last().expect("an attempt row exists before the call");
            assert_eq!(last.outcome, AttemptOutcome::Pending);
            assert_eq!(last.token, spec.token);
            assert_eq!(db.cluster(&cluster).unwrap().unwrap().state, ClusterState::Requesting);
            seen.store(true, Ordering::SeqCst);
            None
        })
    };
    let fake = Arc::new(FakeProvider::new(Cloud::Aws));
    let p = providers(vec![Arc::new(Scripted::new(&fake, hook))]);
    let (result, events) = run(&db, &p, &cluster, &[cand(Cloud::Aws, "us-east-1", Some("a"))]).await;
    let launched = result.unwrap();
    assert!(seen.load(Ordering::SeqCst));
    assert_eq!(launched.nodes.len(), 2);
    assert_eq!(launched.attempts, 1);
    let spec = &fake.launches()[0];
    assert_eq!((spec.disk_gib, spec.count), (100, 2));
    assert_eq!(spec.max_run_seconds, Some(1200), "the deadline reaches the provider");
    assert_eq!(spec.ssh_public_key, "ssh-ed25519 AAAA test");
    assert!(
        spec.token.0.starts_with("c1-1-") && spec.token.0.len() <= 64,
        "{}",
        spec.token
    );
    let rec = db.cluster(&cluster).unwrap().unwrap();
    assert_eq!(rec.state, ClusterState::Provisioned);
    assert_eq!(rec.nodes.len(), 2);
    assert_eq!(db.attempts(&cluster).unwrap()[0].outcome, AttemptOutcome::Ok);
    assert!(matches!(events.first(), Some(LaunchEvent::Trying { .. })));
    assert!(matches!(events.last(), Some(LaunchEvent::Launched { nodes }) if nodes.len() == 2));
}

#[tokio::test]
async fn capacity_moves_to_the_next_zone_quota_skips_the_region() {
    let db = StateDb::open_in_memory().unwrap();
    let fake = Arc::new(FakeProvider::new(Cloud::Aws));
    fake.fail("us-east-1", Some("a"), Fault::Capacity);
    fake.fail("us-west-2", None, Fault::Quota(FailoverScope::Region));
    let p = providers(vec![Arc::clone(&fake) as Arc<dyn Provider>]);
    let plan = [
        cand(Cloud::Aws, "us-west-2", Some("a")),
        cand(Cloud::Aws, "us-west-2", Some("b")),
        cand(Cloud::Aws, "us-east-1", Some("a")),
        cand(Cloud::Aws, "us-east-1", Some("b")),
    ];
    let cluster = name("c2");
    let (result, events) = run(&db, &p, &cluster, &plan).await;
    let launched = result.unwrap();
    assert_eq!(launched.candidate, plan[3]);
    assert_eq!(launched.attempts, 3);
    assert_eq!(where_tried(&fake), ["us-west-2/a", "us-east-1/a", "us-east-1/b"]);
    assert!(events.iter().any(|e| matches!(e,
        LaunchEvent::Skipped { candidate, reason } if *candidate == plan[1] && reason.contains("region"))));
    assert!(events.iter().any(|e| matches!(
        e,
        LaunchEvent::Failed {
            class: ErrorClass::Capacity,
            blocked: Some(FailoverScope::Zone),
            ..
        }
    )));
    let outcomes: Vec<_> = db.attempts(&cluster).unwrap().iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [AttemptOutcome::Quota, AttemptOutcome::Capacity, AttemptOutcome::Ok]
    );
    let tokens: HashSet<_> = fake.launches().iter().map(|s| s.token.clone()).collect();
    assert_eq!(tokens.len(), 3, "every attempt has its own token");
}

#[tokio::test]
async fn auth_failure_skips_the_whole_cloud() {
    let db = StateDb::open_in_memory().unwrap();
    let aws = Arc::new(FakeProvider::new(Cloud::Aws));
    let gcp = Arc::new(FakeProvider::new(Cloud::Gcp));
    let failing: Hook = Box::new(|_| {
        Some(ProviderError::Auth {
            cloud: Cloud::Aws,
            message: "expired".into(),
            hint: "log in".into(),
        })
    });
    let p = providers(vec![
        Arc::new(Scripted::new(&aws, failing)),
        Arc::clone(&gcp) as Arc<dyn Provider>,
    ]);
    let plan = [
        cand(Cloud::Aws, "us-east-1", Some("a")),
        cand(Cloud::Aws, "eu-west-1", Some("a")),
        cand(Cloud::Gcp, "us-central1", Some("us-central1-a")),
    ];
    let cluster = name("c3");
    let (result, events) = run(&db, &p, &cluster, &plan).await;
    assert_eq!(result.unwrap().candidate, plan[2]);
    assert!(events.iter().any(|e| matches!(e,
        LaunchEvent::Skipped { candidate, reason } if *candidate == plan[1] && reason.contains("cloud"))));
    assert_eq!(db.attempts(&cluster).unwrap().len(), 2);
    assert_eq!(db.cluster(&cluster).unwrap().unwrap().cloud, Some(Cloud::Gcp));
}

#[tokio::test]
async fn exhausted_lists_every_attempt_and_marks_the_cluster_failed() {
    let db = StateDb::open_in_memory().unwrap();
    let fake = Arc::new(FakeProvider::new(Cloud::Aws));
    fake.fail("us-east-1", None, Fault::Capacity);
    let p = providers(vec![Arc::clone(&fake) as Arc<dyn Provider>]);
    let plan = [
        cand(Cloud::Aws, "us-east-1", Some("a")),
        cand(Cloud::Aws, "us-east-1", Some("b")),
        cand(Cloud::Lambda, "us-south-1", None),
    ];
    let cluster = name("c4");
    let (result, _) = run(&db, &p, &cluster, &plan).await;
    let err = result.unwrap_err();
    let ProvisionError::Exhausted { attempts, retryable } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(attempts.len(), 3);
    assert!(*retryable, "stockouts may pass");
    let text = err.to_string();
    assert!(text.contains("us-east-1/a") && text.contains("us-east-1/b"), "{text}");
    assert!(text.contains("no provider for `lambda`"), "{text}");
    assert_eq!(db.cluster(&cluster).unwrap().unwrap().state, ClusterState::Failed);
}

#[tokio::test(start_paused = true)]
async fn transient_errors_resend_the_same_token_with_backoff() {
    let db = StateDb::open_in_memory().unwrap();
    let fake = Arc::new(FakeProvider::new(Cloud::Aws));
    let calls = Arc::new(AtomicU32::new(0));
    let hook: Hook = {
        let calls = Arc::clone(&calls);
        Box::new(move |_| {
            (calls.fetch_add(1, Ordering::SeqCst) < 2).then(|| ProviderError::Transient {
                cloud: Cloud::Aws,
                attempts: 1,
                source: "throttled".into(),
            })
        })
    };
    let scripted = Arc::new(Scripted::new(&fake, hook));
    let p = providers(vec![Arc::clone(&scripted) as Arc<dyn Provider>]);
    let cluster = name("c5");
    let start = tokio::time::Instant::now();
    let (result, events) = run(&db, &p, &cluster, &[cand(Cloud::Aws, "us-east-1", Some("a"))]).await;
    assert!(result.is_ok());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // 200 ms then 400 ms, each jittered to at least half.
    assert!(start.elapsed() >= Duration::from_millis(300), "{:?}", start.elapsed());
    let retries = events
        .iter()
        .filter(|e| matches!(e, LaunchEvent::Retrying { .. }))
        .count();
    assert_eq!(retries, 2);
    let attempts = db.attempts(&cluster).unwrap();
    assert_eq!(attempts.len(), 1, "a resend is the same attempt");
    assert_eq!(
        *scripted.failed.lock().unwrap(),
        [attempts[0].token.clone(), attempts[0].token.clone()]
    );
    assert_eq!(fake.launches()[0].token, attempts[0].token);
}

#[tokio::test(start_paused = true)]
async fn transient_errors_that_persist_stop_the_launch() {
    let db = StateDb::open_in_memory().unwrap();
    let fake = Arc::new(FakeProvider::new(Cloud::Aws));
    let calls = Arc::new(AtomicU32::new(0));
    let hook: Hook = {
        let calls = Arc::clone(&calls);
        Box::new(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            Some(ProviderError::Transient {
                cloud: Cloud::Aws,
                attempts: 1,
                source: "throttled".into(),
            })
        })
    };
    let p = providers(vec![Arc::new(Scripted::new(&fake, hook))]);
    let cluster = name("c6");
    let plan = [
        cand(Cloud::Aws, "us-east-1", Some("a")),
        cand(Cloud::Aws, "us-east-1", Some("b")),
    ];
    let (result, _) = run(&db, &p, &cluster, &plan).await;
    assert!(matches!(
        result,
        Err(ProvisionError::Provider(ProviderError::Transient { .. }))
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 4, "one call and three retries, then stop");
    assert_eq!(db.cluster(&cluster).unwrap().unwrap().state, ClusterState::Failed);
    assert_eq!(db.attempts(&cluster).unwrap()[0].outcome, AttemptOutcome::Transient);
}

#[tokio::test]
async fn a_crash_after_launch_is_reconciled_and_torn_down() {
    let db = StateDb::open_in_memory().unwrap();
    let fake = Arc::new(FakeProvider::new(Cloud::Aws));
    let p = providers(vec![Arc::clone(&fake) as Arc<dyn Provider>]);
    let cluster = name("c7");
    let c = cand(Cloud::Aws, "us-east-1", Some("a"));
    let token = LaunchToken("c7-1-crash".into());
    db.record_intent(&cluster, &c, &token, None).unwrap();
    // The provider call succeeds, then broker "crashes": nothing after it runs.
    fake.launch(&LaunchSpec::new(cluster.clone(), token, &c.offer, 2, false))
        .await
        .unwrap();
    assert!(db.cluster(&cluster).unwrap().unwrap().nodes.is_empty());

    let rec = reconcile(&db, &p, &cluster).await.unwrap();
    assert_eq!(rec.state, ClusterState::Provisioned);
    assert_eq!(rec.nodes.len(), 2);
    assert!(
        orphans(&db, &p).await.unwrap().is_empty(),
        "known nodes are not orphans"
    );

    let outcome = teardown(&db, &p, &cluster).await.unwrap();
    assert!(matches!(outcome, Teardown::Terminated(ids) if ids.len() == 2));
    assert!(fake.nodes(&cluster).await.unwrap().is_empty());
    let rec = db.cluster(&cluster).unwrap().unwrap();
    assert_eq!(rec.state, ClusterState::TornDown);
    assert!(rec.nodes.is_empty());

    assert_eq!(teardown(&db, &p, &cluster).await.unwrap(), Teardown::AlreadyGone);
    assert_eq!(db.cluster(&cluster).unwrap().unwrap().state, ClusterState::TornDown);
}

#[tokio::test]
async fn reconcile_marks_a_cluster_whose_nodes_vanished_torn_down() {
    let db = StateDb::open_in_memory().unwrap();
    let fake = Arc::new(FakeProvider::new(Cloud::Aws));
    let p = providers(vec![Arc::clone(&fake) as Arc<dyn Provider>]);
    let cluster = name("c8");
    let (result, _) = run(&db, &p, &cluster, &[cand(Cloud::Aws, "us-east-1", Some("a"))]).await;
    result.unwrap();
    db.set_state(&cluster, ClusterState::Running).unwrap();
    // Someone deletes the instances in the console.
    fake.terminate(&cluster).await.unwrap();
    let rec = reconcile(&db, &p, &cluster).await.unwrap();
    assert_eq!(rec.state, ClusterState::TornDown);
    assert!(rec.nodes.is_empty());
}

#[tokio::test]
async fn teardown_without_a_record_tries_every_provider() {
    let db = StateDb::open_in_memory().unwrap();
    let aws = Arc::new(FakeProvider::new(Cloud::Aws));
    let gcp = Arc::new(FakeProvider::new(Cloud::Gcp));
    let p = providers(vec![
        Arc::clone(&aws) as Arc<dyn Provider>,
        Arc::clone(&gcp) as Arc<dyn Provider>,
    ]);
    let cluster = name("c9");
    let c = cand(Cloud::Gcp, "us-central1", None);
    gcp.launch(&LaunchSpec::new(
        cluster.clone(),
        LaunchToken("t".into()),
        &c.offer,
        1,
        false,
    ))
    .await
    .unwrap();
    let outcome = teardown(&db, &p, &cluster).await.unwrap();
    assert!(matches!(outcome, Teardown::Terminated(ids) if ids.len() == 1));
    assert!(gcp.sweep().await.unwrap().is_empty());
    assert!(db.cluster(&cluster).unwrap().is_none(), "no row is invented");
    assert_eq!(teardown(&db, &p, &cluster).await.unwrap(), Teardown::AlreadyGone);
}

#[tokio::test]
async fn teardown_needs_the_clusters_cloud() {
    let db = StateDb::open_in_memory().unwrap();
    let cluster = name("c10");
    db.record_intent(
        &cluster,
        &cand(Cloud::Aws, "us-east-1", None),
        &LaunchToken("t".into()),
        None,
    )
    .unwrap();
    let err = teardown(&db, &Providers::new(), &cluster).await.unwrap_err();
    assert!(matches!(err, ProvisionError::NoProvider(Cloud::Aws)), "{err:?}");
    assert_eq!(db.cluster(&cluster).unwrap().unwrap().state, ClusterState::Requesting);
}

#[tokio::test]
async fn orphans_lists_nodes_launched_behind_the_dbs_back() {
    let db = StateDb::open_in_memory().unwrap();
    let fake = Arc::new(FakeProvider::new(Cloud::Aws));
    let p = providers(vec![Arc::clone(&fake) as Arc<dyn Provider>]);
    let known = name("known");
    let (result, _) = run(&db, &p, &known, &[cand(Cloud::Aws, "us-east-1", Some("a"))]).await;
    result.unwrap();
    let stray = name("stray");
    let c = cand(Cloud::Aws, "us-east-1", Some("b"));
    fake.launch(&LaunchSpec::new(
        stray.clone(),
        LaunchToken("x".into()),
        &c.offer,
        1,
        false,
    ))
    .await
    .unwrap();
    let found = orphans(&db, &p).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].cluster, stray);
    // A torn-down cluster's leftovers are orphans too.
    db.forget(&known).unwrap();
    assert_eq!(orphans(&db, &p).await.unwrap().len(), 3);
}

#[test]
fn events_and_errors_read_well() {
    let c = cand(Cloud::Aws, "us-east-1", Some("a"));
    assert_eq!(
        LaunchEvent::Trying { candidate: c.clone() }.to_string(),
        "trying g5.xlarge on aws us-east-1/a"
    );
    let err = ProvisionError::Exhausted {
        attempts: vec![("here".into(), "no capacity".into())],
        retryable: true,
    };
    assert_eq!(
        err.to_string(),
        "no candidate could be launched:\n  - here: no capacity"
    );
    let d = backoff(RetryPolicy::default(), 3);
    assert!(
        d >= Duration::from_millis(400) && d <= Duration::from_millis(1200),
        "{d:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_until_up_passes_over_the_plan_again_until_capacity_appears() {
    let db = StateDb::open_in_memory().unwrap();
    let fake = Arc::new(FakeProvider::new(Cloud::Aws));
    let calls = Arc::new(AtomicU32::new(0));
    // Both zones are out of stock for the first two passes (four calls), then zone b has room.
    let hook: Hook = {
        let calls = Arc::clone(&calls);
        Box::new(move |spec| {
            (calls.fetch_add(1, Ordering::SeqCst) < 4 || spec.location.zone.as_deref() == Some("a")).then(|| {
                ProviderError::Capacity {
                    cloud: Cloud::Aws,
                    location: spec.location.clone(),
                    instance_type: spec.instance_type.clone(),
                    message: "InsufficientInstanceCapacity".into(),
                }
            })
        })
    };
    let p = providers(vec![Arc::new(Scripted::new(&fake, hook))]);
    let plan = [
        cand(Cloud::Aws, "us-east-1", Some("a")),
        cand(Cloud::Aws, "us-east-1", Some("b")),
    ];
    let cluster = name("until");
    let mut events = Vec::new();
    let until = RetryUntilUp::within(Duration::from_mins(10));
    let launched = launch_until(
        &db,
        &p,
        &cluster,
        &plan,
        &template(),
        RetryPolicy::default(),
        until,
        &mut |e| events.push(e),
    )
    .await
    .unwrap();
    assert_eq!(launched.candidate.offer.location.zone.as_deref(), Some("b"));
    let passes: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            LaunchEvent::Waiting { pass, .. } => Some(*pass),
            _ => None,
        })
        .collect();
    assert_eq!(passes, [2, 3], "two waits before the third pass succeeds");
    assert_eq!(
        db.attempts(&cluster).unwrap().len(),
        6,
        "every attempt of every pass is recorded"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_until_up_stops_at_the_deadline_and_on_errors_that_cannot_pass() {
    let db = StateDb::open_in_memory().unwrap();
    let fake = Arc::new(FakeProvider::new(Cloud::Aws));
    fake.fail("us-east-1", None, Fault::Capacity);
    let p = providers(vec![Arc::clone(&fake) as Arc<dyn Provider>]);
    let plan = [cand(Cloud::Aws, "us-east-1", Some("a"))];
    let started = tokio::time::Instant::now();
    let until = RetryUntilUp::within(Duration::from_mins(5));
    let err = launch_until(
        &db,
        &p,
        &name("dl"),
        &plan,
        &template(),
        RetryPolicy::default(),
        until,
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProvisionError::Exhausted { .. }), "{err:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_mins(5) && waited < Duration::from_mins(8),
        "kept trying until the deadline, then stopped: {waited:?}"
    );

    // A plan with no provider at all is not a stockout: no second pass.
    let none = providers(vec![]);
    let mut waits = 0;
    let until = RetryUntilUp::within(Duration::from_mins(5));
    let _ = launch_until(
        &db,
        &none,
        &name("np"),
        &plan,
        &template(),
        RetryPolicy::default(),
        until,
        &mut |e| {
            waits += usize::from(matches!(e, LaunchEvent::Waiting { .. }));
        },
    )
    .await;
    assert_eq!(waits, 0);
}
