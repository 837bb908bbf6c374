//! The provider against `broker-gce-fake`: the shared contract, every way of getting a token, the
//! insert bodies GPU, spot and life-limited nodes need, stop/start, and injected faults. Every
//! test ends by asserting that the fake saw no request violating Google's discovery document.

use std::path::PathBuf;
use std::time::Duration;

use broker_gce_fake::{FakeGce, FakeOptions, Fault};
use broker_gcp::{GceConfig, GceProvider};
use broker_provider::{ErrorClass, FailoverScope, NodeState, Provider, ProviderError, Teardown};
use serde_json::{Value, json};

use crate::{offer, spec_for, unique_cluster};

const SA_EMAIL: &str = "broker-test@broker-test.iam.gserviceaccount.com";
const SA_KEY: &str = include_str!("../fixtures/test-only-sa-key.pem");
const SA_PUBLIC_KEY: &str = include_str!("../fixtures/test-only-sa-key.pub.pem");

/// A running fake, a temp dir for key files, and configs pointing at both.
struct Env {
    fake: FakeGce,
    dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Self {
        Self::with(FakeOptions {
            operation_delay: Duration::from_millis(40),
            ..FakeOptions::default()
        })
        .await
    }

    async fn with(options: FakeOptions) -> Self {
        let fake = FakeGce::start(options).await.unwrap();
        fake.add_service_account(SA_EMAIL, SA_PUBLIC_KEY);
        Self {
            fake,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, contents: &Value) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents.to_string()).unwrap();
        path
    }

    /// A service-account key file as the console downloads it, with the fake's token endpoint.
    fn service_account_file(&self) -> PathBuf {
        self.write(
            "sa.json",
            &json!({
                "type": "service_account",
                "project_id": "broker-test",
                "private_key_id": "test-key-1",
                "private_key": SA_KEY,
                "client_email": SA_EMAIL,
                "client_id": "100",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": self.fake.token_url(),
            }),
        )
    }

    /// Nothing but the fake's endpoints, fast polling, and no credential source yet.
    fn bare_config(&self) -> GceConfig {
        GceConfig {
            use_metadata_server: false,
            endpoint: self.fake.compute_url(),
            poll_interval: Duration::from_millis(20),
            operation_timeout: Duration::from_mins(1),
            ..GceConfig::default()
        }
    }

    /// Service-account credentials; the project comes from the key file.
    fn config(&self) -> GceConfig {
        GceConfig {
            credentials_file: Some(self.service_account_file()),
            ..self.bare_config()
        }
    }

    fn provider(&self) -> GceProvider {
        GceProvider::new(self.config()).unwrap()
    }

    fn assert_schema_clean(&self) {
        let violations = self.fake.schema_violations();
        assert!(
            violations.is_empty(),
            "requests the discovery document refuses: {violations:#?}"
        );
    }

    fn resource_of(&self, cluster: &broker_provider::ClusterName) -> Vec<Value> {
        self.fake
            .instances()
            .into_iter()
            .filter(|i| i.labels.get("broker-cluster").map(String::as_str) == Some(cluster.as_str()))
            .map(|i| i.resource)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_shared_provider_conformance_suite() {
    let env = Env::start().await;
    let provider = env.provider();
    let fixture = broker_provider::conformance::Fixture {
        offer: offer("e2-standard-2", None),
        public_key: crate::PUBLIC_KEY.into(),
        prefix: format!("cf{}", std::process::id()),
    };
    broker_provider::conformance::run_all(&provider, &fixture).await;
    env.assert_schema_clean();
}

#[tokio::test]
async fn a_service_account_key_signs_its_way_to_a_token() {
    let env = Env::start().await;
    let readiness = env.provider().check().await.unwrap();
    assert_eq!(readiness.identity, format!("{SA_EMAIL} in project broker-test"));
    env.assert_schema_clean();
}

#[tokio::test]
async fn the_adc_user_file_trades_its_refresh_token() {
    let env = Env::start().await;
    env.fake.add_refresh_token("client-1", "client-secret-1", "refresh-1");
    let adc = env.write(
        "application_default_credentials.json",
        &json!({
            "type": "authorized_user",
            "client_id": "client-1",
            "client_secret": "client-secret-1",
            "refresh_token": "refresh-1",
            "account": "",
        }),
    );
    let config = GceConfig {
        adc_file: Some(adc),
        token_url: Some(env.fake.token_url()),
        project: Some("broker-test".into()),
        ..env.bare_config()
    };
    let readiness = GceProvider::new(config).unwrap().check().await.unwrap();
    assert_eq!(readiness.identity, "user (ADC) in project broker-test");
}

#[tokio::test]
async fn a_wrong_refresh_token_is_an_auth_error_with_a_hint() {
    let env = Env::start().await;
    env.fake.add_refresh_token("client-1", "client-secret-1", "refresh-1");
    let adc = env.write(
        "adc.json",
        &json!({"type": "authorized_user", "client_id": "client-1", "client_secret": "client-secret-1",
            "refresh_token": "stolen-and-revoked"}),
    );
    let config = GceConfig {
        application_credentials: Some(adc),
        token_url: Some(env.fake.token_url()),
        project: Some("broker-test".into()),
        ..env.bare_config()
    };
    let err = GceProvider::new(config).unwrap().check().await.unwrap_err();
    match &err {
        ProviderError::Auth { message, hint, .. } => {
            assert!(
                !message.contains("stolen-and-revoked") && !message.contains("client-secret-1"),
                "{message}"
            );
            assert!(hint.contains("application-default login"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_metadata_server_gives_token_identity_and_project() {
    let env = Env::start().await;
    let config = GceConfig {
        use_metadata_server: true,
        metadata_url: env.fake.metadata_url(),
        adc_file: Some(env.dir.path().join("absent.json")),
        ..env.bare_config()
    };
    let provider = GceProvider::new(config).unwrap();
    let readiness = provider.check().await.unwrap();
    assert!(
        readiness.identity.ends_with(" in project broker-test"),
        "{}",
        readiness.identity
    );
    assert_eq!(provider.project().await.unwrap(), "broker-test");
}

#[tokio::test]
async fn tokens_are_reused_and_refreshed_before_they_expire() {
    let env = Env::with(FakeOptions {
        token_lifetime: Duration::from_secs(2),
        operation_delay: Duration::from_millis(40),
        ..FakeOptions::default()
    })
    .await;
    let provider = env.provider();
    let token_requests = || {
        env.fake
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/token"))
            .count()
    };
    provider.sweep().await.unwrap();
    provider.sweep().await.unwrap();
    assert_eq!(token_requests(), 1, "a fresh token is reused");
    // Past the token's refresh point (three quarters of its two seconds): a new one is fetched
    // before the old one is refused.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    provider.sweep().await.unwrap();
    assert_eq!(token_requests(), 2);
    env.assert_schema_clean();
}

#[tokio::test]
async fn n1_with_a_t4_attaches_it_and_terminates_on_maintenance() {
    let env = Env::start().await;
    let provider = env.provider();
    let cluster = unique_cluster("t4");
    let nodes = provider
        .launch(&spec_for(
            &cluster,
            &offer("n1-standard-8", Some(("T4", 1.0))),
            "t4-a1",
            1,
        ))
        .await
        .unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].state, NodeState::Running);
    let resource = &env.resource_of(&cluster)[0];
    let accelerators = &resource["guestAccelerators"];
    assert_eq!(accelerators[0]["acceleratorCount"], 1, "{resource:#}");
    assert!(
        accelerators[0]["acceleratorType"]
            .as_str()
            .unwrap()
            .ends_with("/zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4"),
        "{resource:#}"
    );
    assert_eq!(resource["scheduling"]["onHostMaintenance"], "TERMINATE");
    assert_eq!(resource["scheduling"]["automaticRestart"], false);
    assert!(
        env.fake.requests().iter().any(|r| r.status == 200
            && r.path.ends_with(
                "/projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570"
            )),
        "GPU nodes boot the newest Deep Learning VM image of the configured family"
    );
    provider.terminate(&cluster).await.unwrap();
    env.assert_schema_clean();
}

#[tokio::test]
async fn built_in_gpus_need_no_guest_accelerators() {
    let env = Env::start().await;
    let provider = env.provider();
    let cluster = unique_cluster("a2");
    provider
        .launch(&spec_for(
            &cluster,
            &offer("a2-highgpu-1g", Some(("A100", 1.0))),
            "a2-a1",
            1,
        ))
        .await
        .unwrap();
    let resource = &env.resource_of(&cluster)[0];
    assert_eq!(resource["scheduling"]["onHostMaintenance"], "TERMINATE");
    provider.terminate(&cluster).await.unwrap();
    env.assert_schema_clean();
}

#[tokio::test]
async fn spot_and_a_life_limit_reach_scheduling() {
    let env = Env::start().await;
    let provider = env.provider();
    let cluster = unique_cluster("spot");
    let mut spec = spec_for(&cluster, &offer("e2-standard-2", None), "spot-a1", 1).with_max_run_seconds(Some(3600));
    spec.spot = true;
    provider.launch(&spec).await.unwrap();
    let scheduling = &env.resource_of(&cluster)[0]["scheduling"];
    assert_eq!(scheduling["provisioningModel"], "SPOT", "{scheduling:#}");
    assert_eq!(scheduling["instanceTerminationAction"], "DELETE", "{scheduling:#}");
    assert_eq!(scheduling["maxRunDuration"]["seconds"], "3600", "{scheduling:#}");
    // Reclaimed with action DELETE, the VM is simply gone: not an error, and nothing to tear down.
    let name = env.resource_of(&cluster)[0]["name"].as_str().unwrap().to_owned();
    assert!(env.fake.preempt("us-central1-a", &name));
    assert!(provider.nodes(&cluster).await.unwrap().is_empty());
    assert_eq!(provider.terminate(&cluster).await.unwrap(), Teardown::AlreadyGone);
    env.assert_schema_clean();
}

#[tokio::test]
async fn stop_then_start_keeps_the_nodes() {
    let env = Env::start().await;
    let provider = env.provider();
    let cluster = unique_cluster("stop");
    let launched = provider
        .launch(&spec_for(&cluster, &offer("e2-standard-2", None), "stop-a1", 2))
        .await
        .unwrap();
    let stopped = provider.stop(&cluster).await.unwrap();
    assert_eq!(stopped.len(), 2);
    assert!(stopped.iter().all(|n| n.state == NodeState::Stopped), "{stopped:?}");
    provider.stop(&cluster).await.unwrap();
    let started = provider.start(&cluster).await.unwrap();
    let ids = |nodes: &[broker_provider::Node]| nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&started), ids(&launched));
    assert!(started.iter().all(|n| n.state == NodeState::Running), "{started:?}");
    assert!(started.iter().all(|n| n.ssh.is_some()), "{started:?}");
    assert!(matches!(
        provider.terminate(&cluster).await.unwrap(),
        Teardown::Terminated(_)
    ));
    assert_eq!(provider.terminate(&cluster).await.unwrap(), Teardown::AlreadyGone);
    let err = provider.start(&cluster).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound, "{err}");
    env.assert_schema_clean();
}

#[tokio::test]
async fn a_stockout_is_a_zone_capacity_error_and_a_new_attempt_succeeds() {
    let env = Env::start().await;
    env.fake.inject(Fault::Capacity {
        zone: "us-central1-a".into(),
        times: Some(1),
    });
    let provider = env.provider();
    let cluster = unique_cluster("cap");
    let spec = spec_for(&cluster, &offer("n1-standard-8", Some(("T4", 1.0))), "cap-a1", 1);
    let err = provider.launch(&spec).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Capacity, "{err}");
    assert_eq!(err.failover(), Some(FailoverScope::Zone), "{err}");
    assert!(err.to_string().contains("us-central1-a"), "{err}");
    assert!(
        provider.nodes(&cluster).await.unwrap().is_empty(),
        "a failed insert leaves nothing"
    );
    // A resend of the failed attempt carries the same requestId, so GCE (and the fake) answer
    // with the first, failed operation: a retry is a new attempt with a new token.
    let again = provider.launch(&spec).await.unwrap_err();
    assert_eq!(again.class(), ErrorClass::Capacity, "{again}");
    let retry = spec_for(&cluster, &offer("n1-standard-8", Some(("T4", 1.0))), "cap-a2", 1);
    let nodes = provider.launch(&retry).await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].rank, 0, "the failed attempt left no rank behind");
    provider.terminate(&cluster).await.unwrap();
    env.assert_schema_clean();
}

#[tokio::test]
async fn quota_errors_rule_out_the_region_or_all_of_gcp() {
    for (region, metric, scope) in [
        (Some("us-central1".to_owned()), "NVIDIA_T4_GPUS", FailoverScope::Region),
        (None, "GPUS_ALL_REGIONS", FailoverScope::Cloud),
    ] {
        let env = Env::start().await;
        env.fake.inject(Fault::Quota {
            region,
            metric: metric.into(),
            times: None,
        });
        let provider = env.provider();
        let cluster = unique_cluster("quota");
        let spec = spec_for(&cluster, &offer("n1-standard-8", Some(("T4", 1.0))), "q-a1", 1);
        let err = provider.launch(&spec).await.unwrap_err();
        match &err {
            ProviderError::Quota { quota, scope: got, .. } => {
                assert_eq!((quota.as_str(), *got), (metric, scope), "{err}");
            }
            other => panic!("{metric}: expected a quota error: {other:?}"),
        }
        assert_eq!(err.failover(), Some(scope));
        assert_eq!(provider.terminate(&cluster).await.unwrap(), Teardown::AlreadyGone);
        env.assert_schema_clean();
    }
}

#[tokio::test]
async fn a_resent_launch_creates_only_the_missing_ranks() {
    let env = Env::start().await;
    let provider = env.provider();
    let cluster = unique_cluster("resend");
    let first = provider
        .launch(&spec_for(&cluster, &offer("e2-standard-2", None), "rs-a1", 2))
        .await
        .unwrap();
    // Another attempt in the same cluster numbers its nodes after the first one's.
    let second = provider
        .launch(&spec_for(&cluster, &offer("e2-standard-2", None), "rs-a2", 1))
        .await
        .unwrap();
    assert_eq!(second.iter().map(|n| n.rank).collect::<Vec<_>>(), [2]);
    let all = provider.nodes(&cluster).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(
        provider
            .launch(&spec_for(&cluster, &offer("e2-standard-2", None), "rs-a1", 2))
            .await
            .unwrap(),
        first
    );
    let gone = provider.terminate(&cluster).await.unwrap();
    assert!(
        matches!(gone, Teardown::Terminated(ref names) if names.len() == 3),
        "{gone:?}"
    );
    env.assert_schema_clean();
}

#[tokio::test]
async fn detailed_stockouts_and_types_a_zone_lacks_rule_out_the_zone() {
    let env = Env::start().await;
    env.fake.inject(Fault::CapacityWithDetails {
        zone: "us-central1-a".into(),
        times: None,
    });
    env.fake.hide_machine_type("us-central1-b", "e2-standard-2");
    let provider = env.provider();
    let cluster = unique_cluster("zones");
    let mut in_b = offer("e2-standard-2", None);
    in_b.location.zone = Some("us-central1-b".into());
    for (offer, token) in [(offer("e2-standard-2", None), "z-a1"), (in_b, "z-b1")] {
        let err = provider
            .launch(&spec_for(&cluster, &offer, token, 1))
            .await
            .unwrap_err();
        assert_eq!(
            (err.class(), err.failover()),
            (ErrorClass::Capacity, Some(FailoverScope::Zone)),
            "{err}"
        );
    }
    let mut in_c = offer("e2-standard-2", None);
    in_c.location.zone = Some("us-central1-c".into());
    assert_eq!(
        provider
            .launch(&spec_for(&cluster, &in_c, "z-c1", 1))
            .await
            .unwrap()
            .len(),
        1
    );
    provider.terminate(&cluster).await.unwrap();
    env.assert_schema_clean();
}
