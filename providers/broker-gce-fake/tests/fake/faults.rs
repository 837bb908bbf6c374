//! Injected capacity and quota errors arrive as Compute reports them: a DONE operation with
//! `error.errors[]` and `httpErrorStatusCode`, and no instance left behind.

use broker_gce_fake::Fault;
use serde_json::{Value, json};

use crate::support::{Harness, ZONE, assert_conforms, cpu_instance, gpu_instance};

fn first_error(op: &Value) -> (&str, &str) {
    let error = &op["error"]["errors"][0];
    (error["code"].as_str().unwrap(), error["message"].as_str().unwrap())
}

#[tokio::test]
async fn capacity_fault_fails_the_insert_operation_then_clears() {
    let h = Harness::new().await;
    h.fake.inject(Fault::Capacity {
        zone: ZONE.to_owned(),
        times: Some(1),
    });
    let op = h.insert(ZONE, &gpu_instance("brk-cap", ZONE, "cap")).await;
    assert_eq!(op["status"], "RUNNING");
    assert!(
        op.get("error").is_none(),
        "the error appears only once the operation is done"
    );
    let done = h.wait(&op).await;
    assert_conforms("Operation", &done);
    assert_eq!(
        first_error(&done),
        (
            "ZONE_RESOURCE_POOL_EXHAUSTED",
            "The zone 'projects/broker-test/zones/us-central1-a' does not have enough resources available to \
             fulfill the request.  Try a different zone, or try again later."
        )
    );
    assert_eq!(done["httpErrorStatusCode"], 503);
    assert_eq!(done["httpErrorMessage"], "SERVICE UNAVAILABLE");
    let (status, _) = h.get(&format!("zones/{ZONE}/instances/brk-cap")).await;
    assert_eq!(status, 404);

    // Only one failure was injected, and only in that zone.
    let retry = h.insert(ZONE, &gpu_instance("brk-cap", ZONE, "cap")).await;
    assert!(h.wait(&retry).await.get("error").is_none());
    assert_eq!(h.fake.instances().len(), 1);
    assert!(h.fake.schema_violations().is_empty());
}

#[tokio::test]
async fn capacity_with_details_and_start_after_stop() {
    let h = Harness::new().await;
    h.wait(&h.insert(ZONE, &cpu_instance("brk-restart", ZONE, &json!({}))).await)
        .await;
    let (_, stop) = h
        .post(&format!("zones/{ZONE}/instances/brk-restart/stop"), &json!({}))
        .await;
    h.wait(&stop).await;
    h.fake.inject(Fault::CapacityWithDetails {
        zone: ZONE.to_owned(),
        times: None,
    });
    let (_, start) = h
        .post(&format!("zones/{ZONE}/instances/brk-restart/start"), &json!({}))
        .await;
    let done = h.wait(&start).await;
    let (code, message) = first_error(&done);
    assert_eq!(code, "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS");
    assert!(message.ends_with("'(resource type:compute)'."), "{message}");
    h.wait_for_status(ZONE, "brk-restart", "TERMINATED").await;
    // `times: None` keeps failing until cleared.
    let again = h.insert(ZONE, &cpu_instance("brk-other", ZONE, &json!({}))).await;
    assert!(h.wait(&again).await.get("error").is_some());
    h.fake.clear_faults();
    let ok = h.insert(ZONE, &cpu_instance("brk-other", ZONE, &json!({}))).await;
    assert!(h.wait(&ok).await.get("error").is_none());
}

#[tokio::test]
async fn quota_faults_name_the_metric_and_respect_the_region() {
    let h = Harness::new().await;
    h.fake.inject(Fault::Quota {
        region: Some("us-central1".to_owned()),
        metric: "NVIDIA_T4_GPUS".to_owned(),
        times: Some(1),
    });
    let other = h
        .insert("us-east1-b", &gpu_instance("brk-east", "us-east1-b", "q"))
        .await;
    assert!(
        h.wait(&other).await.get("error").is_none(),
        "another region is not affected"
    );
    let op = h.insert(ZONE, &gpu_instance("brk-central", ZONE, "q")).await;
    let done = h.wait(&op).await;
    assert_eq!(
        first_error(&done),
        (
            "QUOTA_EXCEEDED",
            "Quota 'NVIDIA_T4_GPUS' exceeded.  Limit: 0.0 in region us-central1."
        )
    );
    assert_eq!(done["httpErrorStatusCode"], 403);
    assert_eq!(done["httpErrorMessage"], "FORBIDDEN");
    assert_eq!(
        done["error"]["errors"][0]["errorDetails"][0]["quotaInfo"]["dimensions"]["region"],
        "us-central1"
    );

    h.fake.inject(Fault::Quota {
        region: None,
        metric: "GPUS_ALL_REGIONS".to_owned(),
        times: Some(2),
    });
    for zone in ["europe-west4-a", "asia-east1-a"] {
        let op = h.insert(zone, &gpu_instance("brk-global", zone, "q")).await;
        let done = h.wait(&op).await;
        let (code, message) = first_error(&done);
        assert_eq!(code, "QUOTA_EXCEEDED");
        assert!(message.contains("'GPUS_ALL_REGIONS'"), "{message}");
    }
    let op = h
        .insert("asia-east1-a", &gpu_instance("brk-global", "asia-east1-a", "q"))
        .await;
    assert!(h.wait(&op).await.get("error").is_none());
}
