//! Read-only catalog calls: `images.getFromFamily`, `images.get` (public image projects such as
//! `deeplearning-platform-release`), `machineTypes.get` and `acceleratorTypes.get`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, Uri};
use axum::response::Json;
use serde_json::{Value, json};

use crate::call::Call;
use crate::catalog::{self, Image};
use crate::compute::check_zone;
use crate::envelope::ApiError;
use crate::routes;
use crate::state::Shared;

/// Stable per-name numbers, so repeated reads of one catalog entry agree.
fn stable_id(name: &str) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    1_000_000_000_000_000_000 + hash % 8_000_000_000_000_000_000
}

fn image_json(shared: &Shared, image: &Image) -> Value {
    json!({
        "kind": "compute#image",
        "id": stable_id(image.name).to_string(),
        "creationTimestamp": "2026-11-01T10:21:43.000-08:00",
        "name": image.name,
        "description": image.description,
        "family": image.family,
        "sourceType": "RAW",
        "status": "READY",
        "archiveSizeBytes": (image.disk_size_gb * 1_073_741_824 / 4).to_string(),
        "diskSizeGb": image.disk_size_gb.to_string(),
        "architecture": "X86_64",
        "storageLocations": ["us", "eu", "asia"],
        "guestOsFeatures": [{"type": "VIRTIO_SCSI_MULTIQUEUE"}, {"type": "UEFI_COMPATIBLE"}, {"type": "GVNIC"}],
        "labelFingerprint": "42WmSpB8rSM=",
        "selfLink": format!("{}/projects/{}/global/images/{}", shared.compute_base(), image.project, image.name),
    })
}

/// Public image projects are readable by everyone; the fake's own project has no images.
fn image_project(shared: &Shared, project: &str) -> Result<(), ApiError> {
    if project == shared.options.project || catalog::is_public_image_project(project) {
        Ok(())
    } else {
        Err(ApiError::not_found(&format!("projects/{project}")))
    }
}

pub(crate) async fn get_from_family(
    State(shared): State<Arc<Shared>>,
    Path((project, family)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::IMAGES_GET_FROM_FAMILY, &method, &uri);
    call.params(&[("project", &project), ("family", &family)], query.as_deref())?;
    call.no_body(&bytes)?;
    image_project(&shared, &project)?;
    catalog::image_by_family(&project, &family)
        .map(|image| Json(image_json(&shared, image)))
        .ok_or_else(|| ApiError::not_found(&format!("projects/{project}/global/images/family/{family}")))
}

pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path((project, image)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::IMAGES_GET, &method, &uri);
    call.params(&[("project", &project), ("image", &image)], query.as_deref())?;
    call.no_body(&bytes)?;
    image_project(&shared, &project)?;
    catalog::image_by_name(&project, &image)
        .map(|found| Json(image_json(&shared, found)))
        .ok_or_else(|| ApiError::not_found(&format!("projects/{project}/global/images/{image}")))
}

pub(crate) async fn machine_type(
    State(shared): State<Arc<Shared>>,
    Path((project, zone, name)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::MACHINE_TYPES_GET, &method, &uri);
    call.params(
        &[("project", &project), ("zone", &zone), ("machineType", &name)],
        query.as_deref(),
    )?;
    call.no_body(&bytes)?;
    call.own_project(&project)?;
    check_zone(&shared, &zone)?;
    let hidden = shared
        .state()
        .hidden_machine_types
        .contains(&(zone.clone(), name.clone()));
    let Some(machine) = catalog::machine_type(&name).filter(|_| !hidden) else {
        return Err(ApiError::not_found(&format!(
            "projects/{project}/zones/{zone}/machineTypes/{name}"
        )));
    };
    let memory_gb = f64::from(machine.memory_mb) / 1024.0;
    let mut body = json!({
        "kind": "compute#machineType",
        "id": stable_id(&name).to_string(),
        "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
        "name": name,
        "description": format!("{} vCPUs, {memory_gb} GB RAM", machine.cpus),
        "guestCpus": machine.cpus,
        "memoryMb": machine.memory_mb,
        "imageSpaceGb": 0,
        "maximumPersistentDisks": 128,
        "maximumPersistentDisksSizeGb": "263168",
        "zone": zone,
        "selfLink": shared.link(&format!("zones/{zone}/machineTypes/{name}")),
        "isSharedCpu": machine.shared_cpu,
        "architecture": "X86_64",
    });
    if let Some((accelerator, count)) = machine.accelerators {
        body["accelerators"] = json!([{"guestAcceleratorType": accelerator, "guestAcceleratorCount": count}]);
    }
    Ok(Json(body))
}

pub(crate) async fn accelerator_type(
    State(shared): State<Arc<Shared>>,
    Path((project, zone, name)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let call = Call::new(&shared, routes::ACCELERATOR_TYPES_GET, &method, &uri);
    call.params(
        &[("project", &project), ("zone", &zone), ("acceleratorType", &name)],
        query.as_deref(),
    )?;
    call.no_body(&bytes)?;
    call.own_project(&project)?;
    check_zone(&shared, &zone)?;
    let Some(accelerator) = catalog::accelerator_type(&name) else {
        return Err(ApiError::not_found(&format!(
            "projects/{project}/zones/{zone}/acceleratorTypes/{name}"
        )));
    };
    Ok(Json(json!({
        "kind": "compute#acceleratorType",
        "id": stable_id(&name).to_string(),
        "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
        "name": name,
        "description": accelerator.description,
        "zone": shared.link(&format!("zones/{zone}")),
        "selfLink": shared.link(&format!("zones/{zone}/acceleratorTypes/{name}")),
        "maximumCardsPerInstance": accelerator.max_per_instance,
    })))
}
