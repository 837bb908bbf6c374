//! Operation polling: `get` and `wait`, zonal and global.

use std::time::{Duration, Instant};

use broker_gce_fake::FakeOptions;
use reqwest::Method;
use serde_json::json;

use crate::support::{Harness, ZONE, cpu_instance, envelope_error};

#[tokio::test]
async fn wait_returns_when_done() {
    let h = Harness::with(FakeOptions {
        operation_delay: Duration::from_millis(300),
        ..FakeOptions::default()
    })
    .await;
    let op = h.insert(ZONE, &cpu_instance("brk-wait", ZONE, &json!({}))).await;
    let name = op["name"].as_str().unwrap();
    let (_, polled) = h.get(&format!("zones/{ZONE}/operations/{name}")).await;
    assert_eq!(polled["status"], "RUNNING");
    let started = Instant::now();
    let (status, done) = h
        .call(
            Method::POST,
            &h.url(&format!("zones/{ZONE}/operations/{name}/wait")),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(done["status"], "DONE");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "wait returned as soon as the operation was done"
    );
    let (_, polled) = h.get(&format!("zones/{ZONE}/operations/{name}")).await;
    assert_eq!(polled["status"], "DONE");
}

#[tokio::test]
async fn wait_gives_up_before_a_slow_operation_finishes() {
    let h = Harness::with(FakeOptions {
        operation_delay: Duration::from_secs(30),
        wait_timeout: Duration::from_millis(100),
        ..FakeOptions::default()
    })
    .await;
    let op = h.insert(ZONE, &cpu_instance("brk-slow", ZONE, &json!({}))).await;
    let (status, still) = h
        .call(
            Method::POST,
            &format!("{}/wait", op["selfLink"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(still["status"], "RUNNING");
    let (_, instance) = h.get(&format!("zones/{ZONE}/instances/brk-slow")).await;
    assert_eq!(instance["status"], "PROVISIONING");
}

#[tokio::test]
async fn unknown_or_misplaced_operations_are_404() {
    let h = Harness::new().await;
    let op = h.insert(ZONE, &cpu_instance("brk-op", ZONE, &json!({}))).await;
    let name = op["name"].as_str().unwrap();
    let (status, error) = h.get(&format!("zones/us-east1-b/operations/{name}")).await;
    assert_eq!(status, 404);
    assert_eq!(envelope_error(404, &error).0, "notFound");
    let (status, _) = h.get("zones/us-central1-a/operations/operation-1-2-3-4").await;
    assert_eq!(status, 404);
    let (status, _) = h.get(&format!("global/operations/{name}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn dropping_the_fake_stops_the_server() {
    let h = Harness::new().await;
    assert_eq!(h.get(&format!("zones/{ZONE}/instances")).await.0, 200);
    let addr = h.fake.addr();
    drop(h);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "{addr} still accepts connections");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
