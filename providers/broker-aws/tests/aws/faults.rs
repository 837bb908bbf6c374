//! Failures injected at the wire by `moto_faults.py`, each rule scoped to one test's cluster
//! name so that tests running in parallel never see each other's faults.

use broker_provider::{ErrorClass, FailoverScope, LaunchSpec, LaunchToken, NodeState, Provider, ProviderError};
use serde_json::json;

use crate::moto::Moto;
use crate::{OTHER_ZONE_ID, OTHER_ZONE_NAME, REGION, ZONE_NAME, cluster, instances_of, offer, provider, spec};

#[tokio::test]
async fn capacity_in_a_zone_is_reported_after_one_attempt_and_the_next_zone_works() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("ice");
    moto.fault(&json!({
        "action": "RunInstances",
        "any_value": cluster.as_str(),
        "params": {"Placement.AvailabilityZone": ZONE_NAME},
        "status": 500,
        "code": "InsufficientInstanceCapacity",
        "message": "We currently do not have sufficient g5.xlarge capacity in the Availability Zone you requested",
    }));

    let err = provider.launch(&spec(&cluster, "ice-a1", 1)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Capacity, "{err}");
    assert_eq!(err.failover(), Some(FailoverScope::Zone));
    assert!(err.to_string().contains("g5.xlarge"), "{err}");
    // EC2 sends this as HTTP 500, which the SDK would retry: one request proves it did not.
    let sent = moto.requests("RunInstances", cluster.as_str());
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["params"]["Placement.AvailabilityZone"], ZONE_NAME);
    assert_eq!(sent[0]["region"], REGION);

    // The engine's next candidate: the next zone, with a new token.
    let next = LaunchSpec::new(
        cluster.clone(),
        LaunchToken("ice-a2".into()),
        &offer("g5.xlarge", OTHER_ZONE_ID),
        1,
        false,
    )
    .with_ssh_public_key(crate::PUBLIC_KEY);
    let nodes = provider.launch(&next).await.unwrap();
    assert_eq!(nodes[0].location.zone.as_deref(), Some(OTHER_ZONE_ID));
    let sent = moto.requests("RunInstances", cluster.as_str());
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["params"]["Placement.AvailabilityZone"], OTHER_ZONE_NAME);
    provider.terminate(&cluster).await.unwrap();
}

#[tokio::test]
async fn a_vcpu_limit_is_a_quota_of_the_region() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("vcpu");
    moto.fault(&json!({
        "action": "RunInstances",
        "any_value": cluster.as_str(),
        "status": 400,
        "code": "VcpuLimitExceeded",
        "message": "You have requested more vCPU capacity than your current vCPU limit of 0 allows",
    }));
    let err = provider.launch(&spec(&cluster, "vcpu-a1", 1)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Quota, "{err}");
    assert_eq!(err.failover(), Some(FailoverScope::Region));
    let ProviderError::Quota { quota, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(quota, "VcpuLimitExceeded");
    assert_eq!(moto.requests("RunInstances", cluster.as_str()).len(), 1);
}

#[tokio::test]
async fn an_auth_failure_on_run_instances_rules_out_the_cloud() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("denied");
    moto.fault(&json!({
        "action": "RunInstances",
        "any_value": cluster.as_str(),
        "status": 403,
        "code": "UnauthorizedOperation",
        "message": "You are not authorized to perform this operation.",
    }));
    let err = provider.launch(&spec(&cluster, "denied-a1", 1)).await.unwrap_err();
    assert_eq!(
        (err.class(), err.failover()),
        (ErrorClass::Auth, Some(FailoverScope::Cloud)),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_multi_node_attempt_leaves_nothing_running() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("partial");
    // One of the three ranks meets a stockout; the other two get instances.
    moto.fault(&json!({
        "action": "RunInstances",
        "any_value": cluster.as_str(),
        "times": 1,
        "status": 500,
        "code": "InsufficientInstanceCapacity",
        "message": "no capacity",
    }));
    let err = provider.launch(&spec(&cluster, "partial-a1", 3)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Capacity, "{err}");
    assert_eq!(moto.requests("RunInstances", cluster.as_str()).len(), 3);
    let left: Vec<_> = provider
        .nodes(&cluster)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.state != NodeState::Terminated)
        .collect();
    assert!(left.is_empty(), "the two that started were terminated: {left:?}");
    assert_eq!(instances_of(moto, &cluster).await.len(), 2);
}

#[tokio::test]
async fn a_resend_after_a_lost_answer_does_not_create_twice() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("lost");
    // moto creates the instance, then the answer is lost: the caller sees a server error.
    moto.fault(&json!({
        "action": "RunInstances",
        "any_value": cluster.as_str(),
        "mode": "after",
        "times": 1,
        "status": 500,
        "code": "InternalError",
        "message": "An internal error has occurred",
    }));
    let spec = spec(&cluster, "lost-a1", 1);
    let err = provider.launch(&spec).await.unwrap_err();
    assert!(matches!(err, ProviderError::Transient { attempts: 1, .. }), "{err:?}");
    assert_eq!(
        instances_of(moto, &cluster).await.len(),
        1,
        "the lost answer's instance exists"
    );

    // The engine resends the same spec (same token) after a transient failure.
    let nodes = provider.launch(&spec).await.unwrap();
    assert_eq!(nodes.len(), 1);
    let instances = instances_of(moto, &cluster).await;
    assert_eq!(instances.len(), 1, "still one instance");
    assert_eq!(instances[0].instance_id(), Some(nodes[0].id.as_str()));
    let sent = moto.requests("RunInstances", cluster.as_str());
    assert_eq!(sent.len(), 1, "found by its token tag, not created again: {sent:#?}");
    assert_eq!(sent[0]["params"]["ClientToken"], "lost-a1-r0");
    provider.terminate(&cluster).await.unwrap();
}

#[tokio::test]
async fn a_transient_run_instances_failure_is_not_retried_by_the_sdk() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("unavail");
    moto.fault(&json!({
        "action": "RunInstances",
        "any_value": cluster.as_str(),
        "times": 1,
        "status": 503,
        "code": "ServiceUnavailable",
        "message": "The service is unavailable",
    }));
    let err = provider.launch(&spec(&cluster, "unavail-a1", 1)).await.unwrap_err();
    assert!(matches!(err, ProviderError::Transient { attempts: 1, .. }), "{err:?}");
    assert_eq!(moto.requests("RunInstances", cluster.as_str()).len(), 1);
    // The engine's retry of the same attempt goes through.
    assert_eq!(
        provider.launch(&spec(&cluster, "unavail-a1", 1)).await.unwrap().len(),
        1
    );
    provider.terminate(&cluster).await.unwrap();
}

#[tokio::test]
async fn throttled_reads_are_retried_by_the_sdk() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("throttle");
    moto.fault(&json!({
        "action": "DescribeInstances",
        "any_value": cluster.as_str(),
        "region": REGION,
        "times": 2,
        "status": 503,
        "code": "RequestLimitExceeded",
        "message": "Request limit exceeded.",
    }));
    assert!(provider.nodes(&cluster).await.unwrap().is_empty());
    let sent: Vec<_> = moto
        .requests("DescribeInstances", cluster.as_str())
        .into_iter()
        .filter(|r| r["region"] == REGION)
        .collect();
    assert_eq!(sent.len(), 3, "two throttled attempts, then the answer");
}
