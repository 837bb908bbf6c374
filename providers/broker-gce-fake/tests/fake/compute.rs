//! Instances: shapes, status timelines, idempotency, lists and filters, semantic refusals.

use reqwest::Method;
use serde_json::json;

use crate::support::{Harness, ZONE, assert_conforms, cpu_instance, envelope_error, gpu_instance, request_id};

#[tokio::test]
async fn valid_insert_provisions_then_runs_with_real_shapes() {
    let h = Harness::new().await;
    let op = h.insert(ZONE, &gpu_instance("brk-run-0", ZONE, "run")).await;
    assert_eq!(op["kind"], "compute#operation");
    assert_eq!(op["operationType"], "insert");
    assert_eq!(op["status"], "RUNNING");
    assert!(op["name"].as_str().unwrap().starts_with("operation-"), "{op}");
    assert!(op["id"].as_str().unwrap().parse::<u64>().is_ok(), "{op}");
    assert!(
        op["targetLink"]
            .as_str()
            .unwrap()
            .ends_with("/zones/us-central1-a/instances/brk-run-0")
    );
    assert!(op["clientOperationId"].is_string());
    assert_conforms("Operation", &op);

    let (status, early) = h.get(&format!("zones/{ZONE}/instances/brk-run-0")).await;
    assert_eq!(status, 200);
    assert_eq!(early["status"], "PROVISIONING");

    let done = h.wait(&op).await;
    assert_eq!(done["progress"], 100);
    assert!(done.get("error").is_none(), "{done}");
    assert!(done["endTime"].is_string());

    let instance = h.wait_for_status(ZONE, "brk-run-0", "RUNNING").await;
    assert_conforms("Instance", &instance);
    assert_eq!(instance["kind"], "compute#instance");
    assert!(instance["id"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(instance["id"], done["targetId"]);
    assert!(
        instance["selfLink"]
            .as_str()
            .unwrap()
            .starts_with(&h.fake.compute_url())
    );
    assert!(
        instance["machineType"]
            .as_str()
            .unwrap()
            .ends_with("/zones/us-central1-a/machineTypes/n1-standard-8")
    );
    assert!(instance["zone"].as_str().unwrap().ends_with("/zones/us-central1-a"));
    assert!(instance["creationTimestamp"].as_str().unwrap().ends_with("-08:00"));
    assert!(instance["lastStartTimestamp"].is_string());
    let nic = &instance["networkInterfaces"][0];
    assert!(nic["networkIP"].as_str().unwrap().starts_with("10.128."), "{nic}");
    let nat = nic["accessConfigs"][0]["natIP"].as_str().unwrap();
    assert!(nat.starts_with("34.") || nat.starts_with("35."), "{nat}");
    assert_eq!(
        instance["labels"],
        json!({"broker-cluster": "run", "broker-managed": "1"})
    );
    assert!(instance["labelFingerprint"].is_string());
    assert!(instance["metadata"]["fingerprint"].is_string());
    assert_eq!(instance["metadata"]["items"][0]["key"], "ssh-keys");
    assert_eq!(instance["scheduling"]["provisioningModel"], "SPOT");
    assert_eq!(instance["scheduling"]["preemptible"], true);
    assert_eq!(instance["guestAccelerators"][0]["acceleratorCount"], 1);
    assert!(
        instance["guestAccelerators"][0]["acceleratorType"]
            .as_str()
            .unwrap()
            .ends_with("/zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4")
    );
    let disk = &instance["disks"][0];
    assert_eq!(disk["diskSizeGb"], "200");
    assert_eq!(disk["boot"], true);
    assert!(disk.get("initializeParams").is_none());
    assert_eq!(
        instance["serviceAccounts"][0]["email"],
        "123456789012-compute@developer.gserviceaccount.com"
    );

    let fakes = h.fake.instances();
    assert_eq!(fakes.len(), 1);
    assert_eq!(
        (fakes[0].name.as_str(), fakes[0].zone.as_str(), fakes[0].status.as_str()),
        ("brk-run-0", ZONE, "RUNNING")
    );
    assert_eq!(fakes[0].labels["broker-cluster"], "run");
    assert!(h.fake.schema_violations().is_empty());
}

#[tokio::test]
async fn built_in_gpus_are_filled_in_by_the_server() {
    let h = Harness::new().await;
    let mut body = gpu_instance("brk-a2", ZONE, "a2");
    body["machineType"] = json!(format!("zones/{ZONE}/machineTypes/a2-highgpu-1g"));
    body.as_object_mut().unwrap().remove("guestAccelerators");
    h.wait(&h.insert(ZONE, &body).await).await;
    let (_, instance) = h.get(&format!("zones/{ZONE}/instances/brk-a2")).await;
    assert!(
        instance["guestAccelerators"][0]["acceleratorType"]
            .as_str()
            .unwrap()
            .ends_with("/acceleratorTypes/nvidia-tesla-a100")
    );
}

#[tokio::test]
async fn stop_terminates_and_start_runs_again_with_a_new_address() {
    let h = Harness::new().await;
    h.wait(&h.insert(ZONE, &cpu_instance("brk-stop", ZONE, &json!({}))).await)
        .await;
    h.wait_for_status(ZONE, "brk-stop", "RUNNING").await;

    let (status, stop) = h
        .post(&format!("zones/{ZONE}/instances/brk-stop/stop"), &json!({}))
        .await;
    assert_eq!(status, 200, "{stop}");
    assert_eq!(stop["operationType"], "stop");
    let (_, stopping) = h.get(&format!("zones/{ZONE}/instances/brk-stop")).await;
    assert_eq!(stopping["status"], "STOPPING");
    h.wait(&stop).await;
    let stopped = h.wait_for_status(ZONE, "brk-stop", "TERMINATED").await;
    assert!(
        stopped["networkInterfaces"][0]["accessConfigs"][0]
            .get("natIP")
            .is_none()
    );
    assert!(stopped["lastStopTimestamp"].is_string());

    let (status, start) = h
        .post(&format!("zones/{ZONE}/instances/brk-stop/start"), &json!({}))
        .await;
    assert_eq!(status, 200, "{start}");
    h.wait(&start).await;
    let running = h.wait_for_status(ZONE, "brk-stop", "RUNNING").await;
    assert!(running["networkInterfaces"][0]["accessConfigs"][0]["natIP"].is_string());
}

#[tokio::test]
async fn delete_removes_and_then_404s() {
    let h = Harness::new().await;
    h.wait(&h.insert(ZONE, &cpu_instance("brk-del", ZONE, &json!({}))).await)
        .await;
    let url = h.url(&format!("zones/{ZONE}/instances/brk-del"));
    let (status, op) = h.call(Method::DELETE, &url, None).await;
    assert_eq!(status, 200, "{op}");
    assert_eq!(op["operationType"], "delete");
    h.wait(&op).await;
    let (status, body) = h.get(&format!("zones/{ZONE}/instances/brk-del")).await;
    assert_eq!(status, 404);
    let (reason, message) = envelope_error(404, &body);
    assert_eq!(reason, "notFound");
    assert_eq!(
        message,
        "The resource 'projects/broker-test/zones/us-central1-a/instances/brk-del' was not found"
    );
    let (status, _) = h.call(Method::DELETE, &url, None).await;
    assert_eq!(status, 404);
    assert!(h.fake.instances().is_empty());
}

#[tokio::test]
async fn duplicate_name_is_409_already_exists() {
    let h = Harness::new().await;
    let body = cpu_instance("brk-dup", ZONE, &json!({}));
    h.insert(ZONE, &body).await;
    let (status, error) = h
        .post(&format!("zones/{ZONE}/instances?requestId={}", request_id()), &body)
        .await;
    assert_eq!(status, 409);
    assert_eq!(envelope_error(409, &error).0, "alreadyExists");
    assert_eq!(h.fake.instances().len(), 1);
}

#[tokio::test]
async fn a_replayed_request_id_returns_the_first_operation_and_creates_once() {
    let h = Harness::new().await;
    let id = request_id();
    let body = cpu_instance("brk-idem", ZONE, &json!({}));
    let (_, first) = h.post(&format!("zones/{ZONE}/instances?requestId={id}"), &body).await;
    let (status, second) = h.post(&format!("zones/{ZONE}/instances?requestId={id}"), &body).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(first["name"], second["name"]);
    assert_eq!(second["clientOperationId"], id.as_str());
    assert_eq!(h.fake.instances().len(), 1);

    // Replays after completion return the finished operation.
    h.wait(&first).await;
    let (_, third) = h.post(&format!("zones/{ZONE}/instances?requestId={id}"), &body).await;
    assert_eq!(third["name"], first["name"]);
    assert_eq!(third["status"], "DONE");

    let stop_id = request_id();
    let stop = format!("zones/{ZONE}/instances/brk-idem/stop?requestId={stop_id}");
    let (_, a) = h.post(&stop, &json!({})).await;
    let (_, b) = h.post(&stop, &json!({})).await;
    assert_eq!(a["name"], b["name"]);
    assert!(h.fake.schema_violations().is_empty());
}

#[tokio::test]
async fn lists_filter_by_labels_status_and_name() {
    let h = &Harness::new().await;
    let other_zone = "europe-west4-b";
    let managed = |cluster: &str| json!({"broker-cluster": cluster, "broker-managed": "1"});
    h.wait(&h.insert(ZONE, &cpu_instance("brk-x-0", ZONE, &managed("x"))).await)
        .await;
    h.wait(&h.insert(ZONE, &cpu_instance("brk-y-0", ZONE, &managed("y"))).await)
        .await;
    h.wait(
        &h.insert(other_zone, &cpu_instance("brk-x-1", other_zone, &managed("x")))
            .await,
    )
    .await;
    h.wait(
        &h.insert(ZONE, &cpu_instance("someone-else", ZONE, &json!({"team": "ml"})))
            .await,
    )
    .await;
    let (_, stop) = h
        .post(&format!("zones/{ZONE}/instances/brk-y-0/stop"), &json!({}))
        .await;
    h.wait(&stop).await;

    let names = |list: &serde_json::Value| -> Vec<String> {
        list["items"]
            .as_array()
            .map(|items| items.iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let list = |filter: &str| {
        let url =
            reqwest::Url::parse_with_params(&h.url(&format!("zones/{ZONE}/instances")), [("filter", filter)]).unwrap();
        async move { h.call(Method::GET, url.as_str(), None).await }
    };
    let (status, cluster_x) = list(r#"labels.broker-cluster = "x""#).await;
    assert_eq!(status, 200, "{cluster_x}");
    assert_eq!(cluster_x["kind"], "compute#instanceList");
    assert_eq!(names(&cluster_x), ["brk-x-0"]);
    let (_, live) = list(r#"(labels.broker-managed = "1") AND (status != "TERMINATED")"#).await;
    assert_eq!(names(&live), ["brk-x-0"]);
    let (_, managed_all) = list(r#"(labels.broker-managed = "1")"#).await;
    assert_eq!(names(&managed_all), ["brk-x-0", "brk-y-0"]);
    let (_, by_name) = list("name = someone-else").await;
    assert_eq!(names(&by_name), ["someone-else"]);
    let (_, none) = list(r#"labels.broker-cluster = "nope""#).await;
    assert!(none.get("items").is_none(), "{none}");

    let url = reqwest::Url::parse_with_params(
        &h.url("aggregated/instances"),
        [
            ("filter", r#"labels.broker-cluster = "x""#),
            ("returnPartialSuccess", "true"),
        ],
    )
    .unwrap();
    let (status, aggregated) = h.call(Method::GET, url.as_str(), None).await;
    assert_eq!(status, 200, "{aggregated}");
    assert_conforms("InstanceAggregatedList", &aggregated);
    let items = aggregated["items"].as_object().unwrap();
    assert_eq!(
        names(&json!({"items": items["zones/us-central1-a"]["instances"]})),
        ["brk-x-0"]
    );
    assert_eq!(
        names(&json!({"items": items["zones/europe-west4-b"]["instances"]})),
        ["brk-x-1"]
    );
    assert_eq!(items["zones/us-east1-b"]["warning"]["code"], "NO_RESULTS_ON_PAGE");

    let (status, error) = list("labelz.broker-cluster = x").await;
    assert_eq!(status, 400, "{error}");
    assert!(envelope_error(400, &error).1.contains("'filter'"));
    assert_eq!(h.fake.schema_violations().len(), 1);
}

#[tokio::test]
async fn list_pages_with_max_results() {
    let h = Harness::new().await;
    for i in 0..3 {
        h.insert(ZONE, &cpu_instance(&format!("brk-page-{i}"), ZONE, &json!({})))
            .await;
    }
    let (_, first) = h.get(&format!("zones/{ZONE}/instances?maxResults=2")).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let token = first["nextPageToken"].as_str().unwrap();
    let (_, second) = h
        .get(&format!("zones/{ZONE}/instances?maxResults=2&pageToken={token}"))
        .await;
    assert_eq!(second["items"][0]["name"], "brk-page-2");
    assert!(second.get("nextPageToken").is_none());
}

/// Refusals the real API makes beyond the schema: answered, not recorded as schema violations.
#[tokio::test]
async fn semantic_rules_refuse_with_the_real_messages() {
    let h = &Harness::new().await;
    let refuse = |body: serde_json::Value| async move {
        let (status, error) = h
            .post(&format!("zones/{ZONE}/instances?requestId={}", request_id()), &body)
            .await;
        (status, envelope_error(status, &error).1)
    };
    let base = gpu_instance("brk-rule", ZONE, "rule");

    let mut a2_with_t4 = base.clone();
    a2_with_t4["machineType"] = json!(format!("zones/{ZONE}/machineTypes/a2-highgpu-1g"));
    let (status, message) = refuse(a2_with_t4).await;
    assert_eq!(status, 400);
    assert!(
        message.contains("'resource.guestAccelerators[0].acceleratorType'"),
        "{message}"
    );

    let mut migrating = base.clone();
    migrating["scheduling"] = json!({"onHostMaintenance": "MIGRATE"});
    let (status, message) = refuse(migrating).await;
    assert_eq!(status, 400);
    assert!(
        message.contains("'resource.scheduling.onHostMaintenance': 'MIGRATE'"),
        "{message}"
    );
    assert!(message.contains("do not support live migration"), "{message}");

    let mut default_maintenance = base.clone();
    default_maintenance["scheduling"] = json!({"provisioningModel": "STANDARD"});
    assert_eq!(refuse(default_maintenance).await.0, 400);

    let mut unknown_type = base.clone();
    unknown_type["machineType"] = json!(format!("zones/{ZONE}/machineTypes/n1-standard-3"));
    let (status, message) = refuse(unknown_type).await;
    assert_eq!(status, 400);
    assert!(message.contains("does not exist in zone 'us-central1-a'"), "{message}");

    let mut bare_accelerator = gpu_instance("brk-rule", "us-central1-b", "rule");
    bare_accelerator["guestAccelerators"][0]["acceleratorType"] = json!("nvidia-tesla-t4");
    let (status, error) = h.post("zones/us-central1-b/instances", &bare_accelerator).await;
    assert_eq!(status, 400, "{error}");

    let mut wrong_zone = gpu_instance("brk-rule", "us-central1-b", "rule");
    wrong_zone["machineType"] = json!("zones/us-central1-c/machineTypes/n1-standard-8");
    let (status, _) = h.post("zones/us-central1-b/instances", &wrong_zone).await;
    assert_eq!(status, 400);

    let (status, message) = refuse(cpu_instance("brk-rule", ZONE, &json!({"Broker": "x"}))).await;
    assert_eq!(status, 400);
    assert!(
        message.contains("Label key 'Broker' violates format constraints"),
        "{message}"
    );
    let (status, _) = refuse(cpu_instance("brk-rule", ZONE, &json!({"broker": "Has Space"}))).await;
    assert_eq!(status, 400);

    let mut no_such_image = cpu_instance("brk-rule", ZONE, &json!({}));
    no_such_image["disks"][0]["initializeParams"]["sourceImage"] =
        json!("projects/deeplearning-platform-release/global/images/family/pytorch-0-1-cu1");
    let (status, message) = refuse(no_such_image).await;
    assert_eq!(status, 404);
    assert_eq!(
        message,
        "The resource 'projects/deeplearning-platform-release/global/images/family/pytorch-0-1-cu1' was not found"
    );

    let mut tiny_disk = base.clone();
    tiny_disk["disks"][0]["initializeParams"]["diskSizeGb"] = json!("20");
    let (status, message) = refuse(tiny_disk).await;
    assert!(
        status == 400 && message.contains("smaller than the image size (50 GB)"),
        "{message}"
    );

    let mut spot_restart = base.clone();
    spot_restart["scheduling"]["automaticRestart"] = json!(true);
    assert_eq!(refuse(spot_restart).await.0, 400);

    let (status, _) = h.post("zones/mars-1/instances", &base).await;
    assert_eq!(status, 404);

    // Last: it changes what the zone offers.
    h.fake.hide_machine_type(ZONE, "n1-standard-8");
    let (status, message) = refuse(base.clone()).await;
    assert!(
        status == 400 && message.contains("'n1-standard-8' does not exist"),
        "{message}"
    );
    let (status, _) = h.get(&format!("zones/{ZONE}/machineTypes/n1-standard-8")).await;
    assert_eq!(status, 404);

    assert!(h.fake.instances().is_empty());
    assert!(
        h.fake.schema_violations().is_empty(),
        "{:?}",
        h.fake.schema_violations()
    );
    let refused = h.fake.requests().into_iter().filter(|r| r.status >= 400).count();
    assert!(refused >= 12, "{:?}", h.fake.requests());
}

#[tokio::test]
async fn the_request_log_records_method_path_status_and_error() {
    let h = Harness::new().await;
    h.insert(ZONE, &cpu_instance("brk-log", ZONE, &json!({}))).await;
    h.get(&format!("zones/{ZONE}/instances/nope")).await;
    let requests = h.fake.requests();
    assert_eq!(requests[0].method, "POST");
    assert_eq!(
        requests[0].path,
        "/compute/v1/projects/broker-test/zones/us-central1-a/instances"
    );
    assert!(requests[0].query.as_deref().unwrap().starts_with("requestId="));
    assert_eq!(requests[0].status, 200);
    assert_eq!(requests[0].error, None);
    assert_eq!(requests[1].status, 404);
    assert!(requests[1].error.as_deref().unwrap().contains("was not found"));
}

#[tokio::test]
async fn preemption_deletes_a_spot_vm_with_action_delete() {
    let h = Harness::new().await;
    h.wait(&h.insert(ZONE, &gpu_instance("brk-spot", ZONE, "spot")).await)
        .await;
    assert!(h.fake.preempt(ZONE, "brk-spot"));
    let (status, _) = h.get(&format!("zones/{ZONE}/instances/brk-spot")).await;
    assert_eq!(status, 404);
    assert!(!h.fake.preempt(ZONE, "brk-spot"));
}

#[tokio::test]
async fn firewalls_insert_get_and_conflict() {
    let h = Harness::new().await;
    let rule = json!({
        "name": "broker-allow-ssh", "network": "global/networks/default", "direction": "INGRESS",
        "priority": 1000, "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
        "sourceRanges": ["0.0.0.0/0"], "targetTags": ["broker-ssh"]
    });
    let (status, op) = h.post("global/firewalls", &rule).await;
    assert_eq!(status, 200, "{op}");
    assert!(op.get("zone").is_none());
    assert!(
        op["selfLink"]
            .as_str()
            .unwrap()
            .contains("/global/operations/operation-")
    );
    assert_eq!(h.wait(&op).await["status"], "DONE");
    let (status, firewall) = h.get("global/firewalls/broker-allow-ssh").await;
    assert_eq!(status, 200);
    assert_conforms("Firewall", &firewall);
    assert_eq!(firewall["kind"], "compute#firewall");
    assert_eq!(firewall["targetTags"], json!(["broker-ssh"]));
    let (status, error) = h.post("global/firewalls", &rule).await;
    assert_eq!(status, 409);
    assert_eq!(envelope_error(409, &error).0, "alreadyExists");

    let mut bad = rule.clone();
    bad["name"] = json!("other");
    bad["direction"] = json!("INBOUND");
    let (status, error) = h.post("global/firewalls", &bad).await;
    assert_eq!(status, 400);
    assert!(envelope_error(400, &error).1.contains("resource.direction"), "{error}");
    assert_eq!(h.fake.schema_violations().len(), 1);
    assert_eq!(h.fake.firewalls().len(), 1);
    let (status, _) = h.get("global/firewalls/missing").await;
    assert_eq!(status, 404);
}
