//! Discovery-document validation: each violation is a 400 naming the field, and is recorded.

use serde_json::{Value, json};

use crate::support::{Harness, ZONE, envelope_error, gpu_instance, request_id};

/// Inserts `body` and returns the error message, after checking the 400 and the record.
async fn refused(h: &Harness, body: &Value) -> String {
    let (status, error) = h
        .post(&format!("zones/{ZONE}/instances?requestId={}", request_id()), body)
        .await;
    assert_eq!(status, 400, "{error}");
    let (reason, message) = envelope_error(400, &error);
    assert_eq!(reason, "invalid");
    assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
    let violations = &error["error"]["details"][0];
    assert_eq!(violations["@type"], "type.googleapis.com/google.rpc.BadRequest");
    assert!(violations["fieldViolations"][0]["field"].is_string(), "{error}");
    let recorded = h.fake.schema_violations();
    assert!(
        recorded.last().is_some_and(|v| v.contains(&message)),
        "{message} not recorded in {recorded:?}"
    );
    assert!(h.fake.instances().is_empty());
    message
}

#[tokio::test]
async fn unknown_field_is_named_with_its_parent() {
    let h = Harness::new().await;
    let mut body = gpu_instance("brk-schema", ZONE, "s");
    body["scheduling"]["provisioningModell"] = json!("SPOT");
    let message = refused(&h, &body).await;
    assert_eq!(
        message,
        "Invalid JSON payload received. Unknown name \"provisioningModell\" at 'resource.scheduling': Cannot find field."
    );
    let mut top = gpu_instance("brk-schema", ZONE, "s");
    top["gpus"] = json!(1);
    assert!(refused(&h, &top).await.contains("Unknown name \"gpus\" at 'resource'"));
}

#[tokio::test]
async fn enum_values_must_be_in_the_schema() {
    let h = Harness::new().await;
    let cases = [
        (
            "provisioningModel",
            "SPOTT",
            "resource.scheduling.provisioning_model",
            "Scheduling.ProvisioningModel",
        ),
        (
            "onHostMaintenance",
            "terminate",
            "resource.scheduling.on_host_maintenance",
            "Scheduling.OnHostMaintenance",
        ),
        (
            "instanceTerminationAction",
            "DESTROY",
            "resource.scheduling.instance_termination_action",
            "Scheduling.InstanceTerminationAction",
        ),
    ];
    for (field, value, path, enum_type) in cases {
        let mut body = gpu_instance("brk-enum", ZONE, "s");
        body["scheduling"][field] = json!(value);
        let message = refused(&h, &body).await;
        assert_eq!(
            message,
            format!("Invalid value at '{path}' (type.googleapis.com/google.cloud.compute.v1.{enum_type}), \"{value}\"")
        );
    }
    assert_eq!(h.fake.schema_violations().len(), 3);
}

#[tokio::test]
async fn int64_fields_must_be_json_strings() {
    let h = Harness::new().await;
    let mut body = gpu_instance("brk-int64", ZONE, "s");
    body["disks"][0]["initializeParams"]["diskSizeGb"] = json!(200);
    let message = refused(&h, &body).await;
    assert_eq!(
        message,
        "Invalid value at 'resource.disks[0].initialize_params.disk_size_gb' (TYPE_INT64), 200"
    );
    let mut not_a_number = gpu_instance("brk-int64", ZONE, "s");
    not_a_number["disks"][0]["initializeParams"]["diskSizeGb"] = json!("200GB");
    assert!(refused(&h, &not_a_number).await.contains("(TYPE_INT64), \"200GB\""));
    let mut duration = gpu_instance("brk-int64", ZONE, "s");
    duration["scheduling"]["maxRunDuration"] = json!({"seconds": 3600});
    assert!(
        refused(&h, &duration)
            .await
            .contains("'resource.scheduling.max_run_duration.seconds' (TYPE_INT64)")
    );
}

#[tokio::test]
async fn json_types_arrays_maps_and_required_fields() {
    let h = Harness::new().await;
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut body = gpu_instance("brk-types", ZONE, "s");
        f(&mut body);
        body
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            edit(&|b| b["guestAccelerators"][0]["acceleratorCount"] = json!("1")),
            "'resource.guest_accelerators[0].accelerator_count' (TYPE_INT32), \"1\"",
        ),
        (
            edit(&|b| b["scheduling"]["automaticRestart"] = json!("false")),
            "'resource.scheduling.automatic_restart' (TYPE_BOOL)",
        ),
        (
            edit(&|b| b["labels"]["broker-managed"] = json!(1)),
            "'resource.labels[broker-managed]' (TYPE_STRING), 1",
        ),
        (
            edit(&|b| b["disks"] = json!({"boot": true})),
            "'resource.disks' (a JSON array (repeated field))",
        ),
        (
            edit(&|b| b["scheduling"] = json!("SPOT")),
            "'resource.scheduling' (type.googleapis.com/google.cloud.compute.v1.Scheduling)",
        ),
        (
            edit(&|b| b["metadata"]["items"][1] = json!({"key": "startup-script"})),
            "Required field 'resource.metadata.items[1].value' not specified",
        ),
        (
            edit(&|b| {
                b.as_object_mut().unwrap().remove("name");
            }),
            "Required field 'resource.name' not specified",
        ),
        (
            edit(&|b| b["name"] = json!("Brk_Bad")),
            "Invalid value for field 'resource.name': 'Brk_Bad'. Must be a match of regex",
        ),
        (
            edit(&|b| b["metadata"]["items"][0]["key"] = json!("ssh keys")),
            "Invalid value for field 'resource.metadata.items[0].key': 'ssh keys'",
        ),
        (
            edit(&|b| b["tags"]["items"][0] = json!("Broker_SSH")),
            "'resource.tags.items[0]': 'Broker_SSH'",
        ),
    ];
    for (body, expected) in cases {
        let message = refused(&h, &body).await;
        assert!(message.contains(expected), "expected `{expected}` in `{message}`");
    }
}

#[tokio::test]
async fn malformed_json_is_a_recorded_400() {
    let h = Harness::new().await;
    let response = h
        .client
        .post(h.url(&format!("zones/{ZONE}/instances")))
        .bearer_auth(&h.token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JSON payload received.")
    );
    assert_eq!(h.fake.schema_violations().len(), 1);
}

#[tokio::test]
async fn query_parameters_are_checked_against_the_method() {
    let h = Harness::new().await;
    let body = gpu_instance("brk-query", ZONE, "s");
    let cases = [
        (
            "requestId=abc",
            "Invalid value for field 'requestId': 'abc'. The request id must be a valid UUID",
        ),
        (
            "requestId=00000000-0000-0000-0000-000000000000",
            "zero UUID is not supported",
        ),
        (
            "requestld=1",
            "Unknown name \"requestld\": Cannot bind query parameter.",
        ),
        ("prettyPrint=yes", "Invalid value at 'prettyPrint' (TYPE_BOOL), \"yes\""),
    ];
    for (query, expected) in cases {
        let (status, error) = h.post(&format!("zones/{ZONE}/instances?{query}"), &body).await;
        assert_eq!(status, 400, "{query}: {error}");
        let message = envelope_error(400, &error).1;
        assert!(message.contains(expected), "{query}: {message}");
    }
    let (status, _) = h.get(&format!("zones/{ZONE}/instances?maxResults=501")).await;
    assert_eq!(status, 400);
    let (status, _) = h.get(&format!("zones/{ZONE}/instances?maxResults=ten")).await;
    assert_eq!(status, 400);
    let (status, _) = h
        .get(&format!("zones/{ZONE}/instances?returnPartialSuccess=true"))
        .await;
    assert_eq!(status, 400, "only aggregatedList takes returnPartialSuccess");
    let (status, error) = h.get(&format!("zones/{ZONE}/instances/Not_A_Name")).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(h.fake.schema_violations().len(), 8);

    // Methods without a request body refuse one.
    h.insert(ZONE, &body).await;
    let (status, error) = h
        .post(
            &format!("zones/{ZONE}/instances/brk-query/stop"),
            &json!({"force": true}),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(h.fake.schema_violations().len(), 9);
    let (status, _) = h.get(&format!("zones/{ZONE}/instances?maxResults=10&alt=json")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn malformed_bodies_are_refused_without_harm() {
    let h = Harness::new().await;
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let bodies = [
        "[]".to_owned(),
        "\"instance\"".to_owned(),
        "null".to_owned(),
        r#"{"name": null}"#.to_owned(),
        r#"{"name": "brk-x", "disks": [null]}"#.to_owned(),
        r#"{"name": "brk-x", "labels": {"a": null}}"#.to_owned(),
        r#"{"name": "brk-x", "scheduling": {"maxRunDuration": {"seconds": "99999999999999999999"}}}"#.to_owned(),
        r#"{"name": "ünïcode"}"#.to_owned(),
        r#"{"name": "brk-x", "guestAccelerators": [{"acceleratorCount": 1e400}]}"#.to_owned(),
        deep,
    ];
    for body in &bodies {
        let response = h
            .client
            .post(h.url(&format!("zones/{ZONE}/instances")))
            .bearer_auth(&h.token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
    let (status, _) = h
        .get(&format!(
            "zones/{ZONE}/instances?pageToken=fake-page-18446744073709551615"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(h.fake.schema_violations().len(), bodies.len());
    assert!(h.fake.instances().is_empty());
}
