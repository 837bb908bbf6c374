//! Images and machine types the fake offers.

use crate::support::{Harness, ZONE, assert_conforms, envelope_error};

#[tokio::test]
async fn deep_learning_image_families_resolve() {
    let h = Harness::new().await;
    assert_eq!(h.fake.discovery_revision(), "20261106");
    assert!(broker_gce_fake::discovery_document().unwrap().is_file());
    let url = format!(
        "{}/projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570",
        h.fake.compute_url()
    );
    let (status, image) = h.call(reqwest::Method::GET, &url, None).await;
    assert_eq!(status, 200, "{image}");
    assert_conforms("Image", &image);
    assert_eq!(image["kind"], "compute#image");
    assert_eq!(image["family"], "common-cu128-ubuntu-2204-nvidia-570");
    let name = image["name"].as_str().unwrap();
    let (status, by_name) = h
        .call(
            reqwest::Method::GET,
            &format!(
                "{}/projects/deeplearning-platform-release/global/images/{name}",
                h.fake.compute_url()
            ),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(by_name["selfLink"], image["selfLink"]);

    let debian = format!(
        "{}/projects/debian-cloud/global/images/family/debian-12",
        h.fake.compute_url()
    );
    assert_eq!(h.call(reqwest::Method::GET, &debian, None).await.0, 200);

    let retired = format!(
        "{}/projects/deeplearning-platform-release/global/images/family/pytorch-latest-gpu",
        h.fake.compute_url()
    );
    let (status, error) = h.call(reqwest::Method::GET, &retired, None).await;
    assert_eq!(status, 404);
    assert_eq!(envelope_error(404, &error).0, "notFound");
}

#[tokio::test]
async fn machine_and_accelerator_types() {
    let h = Harness::new().await;
    let (status, n1) = h.get(&format!("zones/{ZONE}/machineTypes/n1-standard-8")).await;
    assert_eq!(status, 200);
    assert_conforms("MachineType", &n1);
    assert_eq!(
        (n1["guestCpus"].as_u64(), n1["memoryMb"].as_u64()),
        (Some(8), Some(30_720))
    );
    assert!(n1.get("accelerators").is_none());
    let (_, a2) = h.get(&format!("zones/{ZONE}/machineTypes/a2-highgpu-2g")).await;
    assert_eq!(a2["accelerators"][0]["guestAcceleratorType"], "nvidia-tesla-a100");
    assert_eq!(a2["accelerators"][0]["guestAcceleratorCount"], 2);
    let (_, g2) = h.get(&format!("zones/{ZONE}/machineTypes/g2-standard-48")).await;
    assert_eq!(g2["accelerators"][0]["guestAcceleratorCount"], 4);
    let (status, _) = h.get(&format!("zones/{ZONE}/machineTypes/n9-mega-1")).await;
    assert_eq!(status, 404);
    let (status, t4) = h.get(&format!("zones/{ZONE}/acceleratorTypes/nvidia-tesla-t4")).await;
    assert_eq!(status, 200);
    assert_conforms("AcceleratorType", &t4);
    assert_eq!(t4["maximumCardsPerInstance"], 4);
}
