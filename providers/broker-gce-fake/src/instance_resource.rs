//! Turns an accepted `instances.insert` body into the `Instance` the API then returns: server
//! fields added (`kind`, `id`, `selfLink`, `creationTimestamp`, fingerprints), references made full
//! URLs, defaults filled in (scheduling, disk and NIC fields), `initializeParams` replaced by the
//! disk it created, and invented addresses (internal 10.128.0.0/16, external 34.x/35.x).

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::catalog;
use crate::instance_rules::InsertPlan;
use crate::state::{Shared, State, external_ip};

pub(crate) fn build(
    shared: &Shared,
    state: &mut State,
    zone: &str,
    body: &Value,
    plan: &InsertPlan,
    now: Instant,
) -> Value {
    let mut instance = body.as_object().cloned().unwrap_or_default();
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let region = catalog::region_of(zone);
    let id = state.ids.resource_id();
    // Output-only fields a client may have echoed back are the server's to set.
    for key in [
        "id",
        "kind",
        "selfLink",
        "status",
        "statusMessage",
        "zone",
        "creationTimestamp",
        "cpuPlatform",
    ] {
        instance.remove(key);
    }
    let mut set = |key: &str, value: Value| {
        instance.insert(key.to_owned(), value);
    };
    set("kind", json!("compute#instance"));
    set("id", json!(id.to_string()));
    set("creationTimestamp", json!(shared.clock.rfc3339(now)));
    set("name", json!(name));
    set("zone", json!(shared.link(&format!("zones/{zone}"))));
    set(
        "selfLink",
        json!(shared.link(&format!("zones/{zone}/instances/{name}"))),
    );
    set("status", json!("PROVISIONING"));
    set(
        "machineType",
        json!(shared.link(&format!("zones/{zone}/machineTypes/{}", plan.machine_type))),
    );
    set("cpuPlatform", json!("Intel Broadwell"));
    set("startRestricted", json!(false));
    set("satisfiesPzi", json!(false));
    set("fingerprint", json!(state.ids.fingerprint()));
    set("labelFingerprint", json!(state.ids.fingerprint()));
    instance.entry("deletionProtection").or_insert(json!(false));
    instance.entry("canIpForward").or_insert(json!(false));

    let mut tags = body.get("tags").and_then(Value::as_object).cloned().unwrap_or_default();
    tags.insert("fingerprint".to_owned(), json!(state.ids.fingerprint()));
    instance.insert("tags".to_owned(), Value::Object(tags));

    let mut metadata = body
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    metadata.insert("kind".to_owned(), json!("compute#metadata"));
    metadata.insert("fingerprint".to_owned(), json!(state.ids.fingerprint()));
    instance.insert("metadata".to_owned(), Value::Object(metadata));

    instance.insert("scheduling".to_owned(), scheduling(body, plan));
    instance.insert(
        "networkInterfaces".to_owned(),
        network_interfaces(shared, state, region, body),
    );
    instance.insert("disks".to_owned(), disks(shared, zone, &name, body, plan));

    let accelerators: Vec<Value> = match plan.machine.accelerators {
        Some((accelerator, count)) => vec![(accelerator.to_owned(), count)],
        None => plan.accelerators.clone(),
    }
    .into_iter()
    .map(|(accelerator, count)| {
        json!({
            "acceleratorType": shared.link(&format!("zones/{zone}/acceleratorTypes/{accelerator}")),
            "acceleratorCount": count,
        })
    })
    .collect();
    if accelerators.is_empty() {
        instance.remove("guestAccelerators");
    } else {
        instance.insert("guestAccelerators".to_owned(), Value::Array(accelerators));
    }

    if let Some(accounts) = instance.get_mut("serviceAccounts").and_then(Value::as_array_mut) {
        for account in accounts {
            if account
                .get("email")
                .and_then(Value::as_str)
                .is_none_or(|e| e == "default")
            {
                account["email"] = json!(shared.options.service_account_email);
            }
        }
    }
    Value::Object(instance)
}

fn scheduling(body: &Value, plan: &InsertPlan) -> Value {
    let mut scheduling = body
        .get("scheduling")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    scheduling.insert("onHostMaintenance".to_owned(), json!(plan.on_host_maintenance));
    scheduling.insert("automaticRestart".to_owned(), json!(plan.automatic_restart));
    scheduling.insert("preemptible".to_owned(), json!(plan.spot));
    scheduling
        .entry("provisioningModel")
        .or_insert_with(|| json!(if plan.spot { "SPOT" } else { "STANDARD" }));
    if plan.spot {
        scheduling.entry("instanceTerminationAction").or_insert(json!("STOP"));
    }
    Value::Object(scheduling)
}

fn network_interfaces(shared: &Shared, state: &mut State, region: &str, body: &Value) -> Value {
    let nics = body
        .get("networkInterfaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let nics: Vec<Value> = nics
        .into_iter()
        .enumerate()
        .map(|(i, nic)| {
            let mut nic = nic.as_object().cloned().unwrap_or_default();
            nic.insert("kind".to_owned(), json!("compute#networkInterface"));
            nic.insert("network".to_owned(), json!(shared.link("global/networks/default")));
            nic.insert(
                "subnetwork".to_owned(),
                json!(shared.link(&format!("regions/{region}/subnetworks/default"))),
            );
            nic.entry("networkIP").or_insert_with(|| json!(state.internal_ip()));
            nic.insert("name".to_owned(), json!(format!("nic{i}")));
            nic.insert("fingerprint".to_owned(), json!(state.ids.fingerprint()));
            nic.entry("stackType").or_insert(json!("IPV4_ONLY"));
            if let Some(configs) = nic.get_mut("accessConfigs").and_then(Value::as_array_mut) {
                for config in configs {
                    let Some(config) = config.as_object_mut() else { continue };
                    config.insert("kind".to_owned(), json!("compute#accessConfig"));
                    config.entry("type").or_insert(json!("ONE_TO_ONE_NAT"));
                    config.entry("name").or_insert(json!("External NAT"));
                    config.entry("networkTier").or_insert(json!("PREMIUM"));
                    config
                        .entry("natIP")
                        .or_insert_with(|| json!(external_ip(&mut state.ids)));
                }
            }
            Value::Object(nic)
        })
        .collect();
    Value::Array(nics)
}

fn disks(shared: &Shared, zone: &str, instance: &str, body: &Value, plan: &InsertPlan) -> Value {
    let disks = body.get("disks").and_then(Value::as_array).cloned().unwrap_or_default();
    let disks: Vec<Value> = disks
        .into_iter()
        .enumerate()
        .map(|(i, disk)| {
            let mut disk: Map<String, Value> = disk.as_object().cloned().unwrap_or_default();
            let params = disk.remove("initializeParams").unwrap_or(Value::Null);
            let boot = disk.get("boot").and_then(Value::as_bool) == Some(true);
            let image = plan.disk_images.get(i).copied().flatten();
            let disk_name = params.get("diskName").and_then(Value::as_str).map_or_else(
                || {
                    if boot {
                        instance.to_owned()
                    } else {
                        format!("{instance}-{i}")
                    }
                },
                str::to_owned,
            );
            let size = params.get("diskSizeGb").and_then(Value::as_str).map_or_else(
                || image.map_or(10, |image| image.disk_size_gb).to_string(),
                str::to_owned,
            );
            disk.insert("kind".to_owned(), json!("compute#attachedDisk"));
            disk.entry("type").or_insert(json!("PERSISTENT"));
            disk.entry("mode").or_insert(json!("READ_WRITE"));
            disk.insert(
                "source".to_owned(),
                json!(shared.link(&format!("zones/{zone}/disks/{disk_name}"))),
            );
            disk.entry("deviceName")
                .or_insert_with(|| json!(format!("persistent-disk-{i}")));
            disk.insert("index".to_owned(), json!(i));
            disk.insert("boot".to_owned(), json!(boot));
            disk.entry("autoDelete").or_insert(json!(false));
            disk.entry("interface").or_insert(json!("SCSI"));
            disk.insert("diskSizeGb".to_owned(), json!(size));
            disk.insert("architecture".to_owned(), json!("X86_64"));
            Value::Object(disk)
        })
        .collect();
    Value::Array(disks)
}
