//! The checks `instances.insert` makes beyond the discovery document, worded like the real API's
//! (`Invalid value for field 'resource.…': '…'. …`, field paths in JSON names): machine type and
//! accelerator URLs of the request's zone, GPUs only on N1 and never with live migration, Spot
//! scheduling, label syntax, metadata keys and sizes, boot disk and image, network.
//!
//! These are not schema violations (a test may provoke them on purpose, e.g. a machine type a
//! zone does not offer), so they are answered but not recorded as such.

use std::collections::HashSet;

use serde_json::Value;

use crate::catalog::{self, Image, MachineType};
use crate::envelope::ApiError;
use crate::state::Shared;

/// What the checks resolved, for building the stored instance.
#[derive(Debug)]
pub(crate) struct InsertPlan {
    pub(crate) machine_type: String,
    pub(crate) machine: MachineType,
    /// Per disk: the image it is created from, if any.
    pub(crate) disk_images: Vec<Option<&'static Image>>,
    pub(crate) spot: bool,
    pub(crate) on_host_maintenance: String,
    pub(crate) automatic_restart: bool,
    /// Attached accelerators as (type, count), N1 only.
    pub(crate) accelerators: Vec<(String, u32)>,
}

/// `Invalid value for field 'resource.{field}': '{value}'. {why}`
fn invalid(field: &str, value: &str, why: &str) -> ApiError {
    ApiError::invalid(format!("Invalid value for field 'resource.{field}': '{value}'. {why}"))
}

/// A reference to a resource of the fake's cloud: a full URL (googleapis or the fake's own) or
/// a partial one. Returns the project (if named) and the path after `projects/{project}/`.
pub(crate) fn parse_reference<'a>(shared: &Shared, reference: &'a str) -> Option<(Option<&'a str>, &'a str)> {
    let own = format!("{}/", shared.compute_base());
    let rest = [
        "https://www.googleapis.com/compute/v1/",
        "https://compute.googleapis.com/compute/v1/",
        own.as_str(),
    ]
    .iter()
    .find_map(|prefix| reference.strip_prefix(prefix));
    let full = rest.is_some();
    let rest = rest.unwrap_or(reference);
    if let Some(after) = rest.strip_prefix("projects/") {
        let (project, path) = after.split_once('/')?;
        return Some((Some(project), path));
    }
    if full || rest.contains("://") {
        return None;
    }
    Some((None, rest))
}

/// `zones/{zone}/{collection}/{name}` in the fake's project, or why not.
fn zonal_name<'a>(shared: &Shared, reference: &'a str, collection: &str) -> Result<(&'a str, &'a str), String> {
    let Some((project, path)) = parse_reference(shared, reference) else {
        return Err("Not a Compute Engine resource URL.".to_owned());
    };
    if project.is_some_and(|p| p != shared.options.project) {
        return Err(format!("Project must be '{}'.", shared.options.project));
    }
    match path.split('/').collect::<Vec<_>>().as_slice() {
        ["zones", zone, c, name] if *c == collection && !name.is_empty() => Ok((zone, name)),
        _ => Err(format!(
            "Must be a full or partial URL of the form 'zones/ZONE/{collection}/NAME', not a bare name."
        )),
    }
}

pub(crate) fn check_insert(
    shared: &Shared,
    zone: &str,
    body: &Value,
    hidden: &dyn Fn(&str) -> bool,
) -> Result<InsertPlan, ApiError> {
    let (machine_type, machine) = check_machine_type(shared, zone, body, hidden)?;
    check_labels(body)?;
    check_metadata(body)?;
    let disk_images = check_disks(shared, zone, body)?;
    check_network(shared, zone, body)?;
    let accelerators = check_accelerators(shared, zone, body, &machine_type)?;

    let scheduling = body.get("scheduling").unwrap_or(&Value::Null);
    let text = |key: &str| scheduling.get(key).and_then(Value::as_str);
    let spot = text("provisioningModel") == Some("SPOT")
        || scheduling.get("preemptible").and_then(Value::as_bool) == Some(true);
    let on_host_maintenance = text("onHostMaintenance")
        .unwrap_or(if spot { "TERMINATE" } else { "MIGRATE" })
        .to_owned();
    let explicit_restart = scheduling.get("automaticRestart").and_then(Value::as_bool);
    if spot && on_host_maintenance != "TERMINATE" {
        return Err(invalid(
            "scheduling.onHostMaintenance",
            &on_host_maintenance,
            "Scheduling must have preemptible be false when OnHostMaintenance isn't TERMINATE.",
        ));
    }
    if spot && explicit_restart == Some(true) {
        return Err(invalid(
            "scheduling.automaticRestart",
            "true",
            "Scheduling must have preemptible be false when AutomaticRestart is true.",
        ));
    }
    let has_gpus = !accelerators.is_empty() || machine.accelerators.is_some();
    if has_gpus && on_host_maintenance != "TERMINATE" {
        return Err(invalid(
            "scheduling.onHostMaintenance",
            &on_host_maintenance,
            "Instances with guest accelerators do not support live migration.",
        ));
    }
    let bounded = scheduling.get("maxRunDuration").is_some() || scheduling.get("terminationTime").is_some();
    if let Some(action) = text("instanceTerminationAction")
        && action != "INSTANCE_TERMINATION_ACTION_UNSPECIFIED"
        && !spot
        && !bounded
    {
        return Err(invalid(
            "scheduling.instanceTerminationAction",
            action,
            "Instance termination action can only be set for Spot VMs or VMs with a max run duration or \
             termination time.",
        ));
    }
    if let Some(seconds) = scheduling.pointer("/maxRunDuration/seconds").and_then(Value::as_str) {
        let valid = seconds.parse::<i64>().is_ok_and(|s| (30..=120 * 86_400).contains(&s));
        if !valid {
            return Err(invalid(
                "scheduling.maxRunDuration.seconds",
                seconds,
                "Max run duration must be between 30 seconds and 120 days.",
            ));
        }
    }
    Ok(InsertPlan {
        machine_type,
        machine,
        disk_images,
        spot,
        on_host_maintenance,
        automatic_restart: explicit_restart.unwrap_or(!spot),
        accelerators,
    })
}

fn check_machine_type(
    shared: &Shared,
    zone: &str,
    body: &Value,
    hidden: &dyn Fn(&str) -> bool,
) -> Result<(String, MachineType), ApiError> {
    let Some(reference) = body.get("machineType").and_then(Value::as_str) else {
        return Err(ApiError::required(
            "Required field 'resource.machineType' not specified",
        ));
    };
    let (in_zone, name) =
        zonal_name(shared, reference, "machineTypes").map_err(|why| invalid("machineType", reference, &why))?;
    if in_zone != zone {
        return Err(invalid(
            "machineType",
            reference,
            &format!("Machine type zone '{in_zone}' does not match the instance zone '{zone}'."),
        ));
    }
    match catalog::machine_type(name).filter(|_| !hidden(name)) {
        Some(machine) => Ok((name.to_owned(), machine)),
        None => Err(invalid(
            "machineType",
            reference,
            &format!("Machine type with name '{name}' does not exist in zone '{zone}'."),
        )),
    }
}

fn check_labels(body: &Value) -> Result<(), ApiError> {
    let Some(labels) = body.get("labels").and_then(Value::as_object) else {
        return Ok(());
    };
    if labels.len() > 64 {
        return Err(invalid("labels", "", "Too many labels; at most 64 are allowed."));
    }
    for (key, value) in labels {
        let key_ok =
            key.len() <= 63 && key.starts_with(|c: char| c.is_ascii_lowercase()) && key.chars().all(is_label_char);
        if !key_ok {
            return Err(invalid(
                "labels",
                "",
                &format!(
                    "Label key '{key}' violates format constraints. The key must start with a lowercase character, \
                     can only contain lowercase letters, numeric characters, underscores and dashes. The key can be \
                     at most 63 characters long. International characters are allowed."
                ),
            ));
        }
        let value = value.as_str().unwrap_or_default();
        if value.len() > 63 || !value.chars().all(is_label_char) {
            return Err(invalid(
                "labels",
                "",
                &format!(
                    "Label value '{value}' violates format constraints. The value can only contain lowercase \
                     letters, numeric characters, underscores and dashes. The value can be at most 63 characters \
                     long. International characters are allowed."
                ),
            ));
        }
    }
    Ok(())
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
}

fn check_metadata(body: &Value) -> Result<(), ApiError> {
    const MAX_VALUE: usize = 256 * 1024;
    const MAX_TOTAL: usize = 512 * 1024;
    let items = body
        .pointer("/metadata/items")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let mut seen = HashSet::new();
    let mut total = 0;
    for (i, item) in items.iter().enumerate() {
        let key = item.get("key").and_then(Value::as_str).unwrap_or_default();
        let value = item.get("value").and_then(Value::as_str).unwrap_or_default();
        if !seen.insert(key) {
            return Err(invalid("metadata", "", &format!("Metadata has duplicate keys: {key}")));
        }
        if value.len() > MAX_VALUE {
            return Err(invalid(
                &format!("metadata.items[{i}].value"),
                &format!("{}...", value.chars().take(20).collect::<String>()),
                &format!("Metadata value for key '{key}' exceeds {MAX_VALUE} bytes."),
            ));
        }
        total += key.len() + value.len();
    }
    if total > MAX_TOTAL {
        return Err(invalid(
            "metadata",
            "",
            &format!("Metadata total size exceeds {MAX_TOTAL} bytes."),
        ));
    }
    Ok(())
}

fn check_disks(shared: &Shared, zone: &str, body: &Value) -> Result<Vec<Option<&'static Image>>, ApiError> {
    let disks = body
        .get("disks")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if disks.is_empty() {
        return Err(invalid(
            "disks",
            "",
            "At least one disk, the boot disk, must be specified.",
        ));
    }
    let boots = disks
        .iter()
        .filter(|d| d.get("boot").and_then(Value::as_bool) == Some(true))
        .count();
    if boots != 1 {
        return Err(invalid(
            "disks",
            "",
            &format!("Exactly one boot disk must be specified, found {boots}."),
        ));
    }
    let mut images = Vec::with_capacity(disks.len());
    for (i, disk) in disks.iter().enumerate() {
        if let Some(source) = disk.get("source").and_then(Value::as_str) {
            // The fake has no standalone disks to attach.
            return Err(ApiError::not_found(&resource_path(shared, source)));
        }
        let Some(params) = disk.get("initializeParams") else {
            return Err(invalid(
                &format!("disks[{i}]"),
                "",
                "A disk must have either a source or initializeParams.",
            ));
        };
        let image = match params.get("sourceImage").and_then(Value::as_str) {
            Some(reference) => Some(
                resolve_image(shared, reference)
                    .ok_or_else(|| ApiError::not_found(&resource_path(shared, reference)))?,
            ),
            None if disk.get("boot").and_then(Value::as_bool) == Some(true) => {
                return Err(invalid(
                    &format!("disks[{i}].initializeParams.sourceImage"),
                    "",
                    "The boot disk must be created from an image or snapshot.",
                ));
            }
            None => None,
        };
        if let Some(size) = params.get("diskSizeGb").and_then(Value::as_str) {
            let size_gb = size.parse::<u64>().unwrap_or(0);
            let minimum = image.map_or(10, |i| i.disk_size_gb.max(10));
            if size_gb < minimum {
                return Err(invalid(
                    &format!("disks[{i}].initializeParams.diskSizeGb"),
                    size,
                    &format!("Requested disk size cannot be smaller than the image size ({minimum} GB)"),
                ));
            }
        }
        if let Some(reference) = params.get("diskType").and_then(Value::as_str) {
            let field = format!("disks[{i}].initializeParams.diskType");
            let (in_zone, name) =
                zonal_name(shared, reference, "diskTypes").map_err(|why| invalid(&field, reference, &why))?;
            if in_zone != zone || !catalog::is_disk_type(name) {
                return Err(invalid(
                    &field,
                    reference,
                    &format!("Disk type '{name}' does not exist in zone '{zone}'."),
                ));
            }
        }
        images.push(image);
    }
    Ok(images)
}

/// An image reference (`projects/P/global/images/family/F`, `.../images/NAME`, or the same
/// relative to the fake's project) to a seeded image.
pub(crate) fn resolve_image(shared: &Shared, reference: &str) -> Option<&'static Image> {
    let (project, path) = parse_reference(shared, reference)?;
    let project = project.unwrap_or(&shared.options.project);
    match path.split('/').collect::<Vec<_>>().as_slice() {
        ["global", "images", "family", family] => catalog::image_by_family(project, family),
        ["global", "images", name] => catalog::image_by_name(project, name),
        _ => None,
    }
}

/// `projects/P/...` for a not-found message.
fn resource_path(shared: &Shared, reference: &str) -> String {
    match parse_reference(shared, reference) {
        Some((Some(project), path)) => format!("projects/{project}/{path}"),
        Some((None, path)) => format!("projects/{}/{path}", shared.options.project),
        None => reference.to_owned(),
    }
}

fn check_network(shared: &Shared, zone: &str, body: &Value) -> Result<(), ApiError> {
    let nics = body
        .get("networkInterfaces")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if nics.is_empty() {
        return Err(invalid(
            "networkInterfaces",
            "",
            "At least one network interface must be specified.",
        ));
    }
    if nics.len() > 1 {
        return Err(invalid(
            "networkInterfaces",
            "",
            "Networks must be distinct for NICs attached to a VM.",
        ));
    }
    let nic = &nics[0];
    if let Some(network) = nic.get("network").and_then(Value::as_str) {
        let known = parse_reference(shared, network).is_some_and(|(project, path)| {
            project.is_none_or(|p| p == shared.options.project) && path == "global/networks/default"
        });
        if !known {
            return Err(ApiError::not_found(&resource_path(shared, network)));
        }
    }
    if let Some(subnetwork) = nic.get("subnetwork").and_then(Value::as_str) {
        let expected = format!("regions/{}/subnetworks/default", catalog::region_of(zone));
        let known = parse_reference(shared, subnetwork)
            .is_some_and(|(project, path)| project.is_none_or(|p| p == shared.options.project) && path == expected);
        if !known {
            return Err(ApiError::not_found(&resource_path(shared, subnetwork)));
        }
    }
    let configs = nic
        .get("accessConfigs")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if configs.len() > 1 {
        return Err(invalid(
            "networkInterfaces[0].accessConfigs",
            "",
            "At most one access config currently supported.",
        ));
    }
    Ok(())
}

fn check_accelerators(
    shared: &Shared,
    zone: &str,
    body: &Value,
    machine_type: &str,
) -> Result<Vec<(String, u32)>, ApiError> {
    let configs = body
        .get("guestAccelerators")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let mut accelerators = Vec::with_capacity(configs.len());
    for (i, config) in configs.iter().enumerate() {
        let type_field = format!("guestAccelerators[{i}].acceleratorType");
        let Some(reference) = config.get("acceleratorType").and_then(Value::as_str) else {
            return Err(ApiError::required(format!(
                "Required field 'resource.{type_field}' not specified"
            )));
        };
        let (in_zone, name) =
            zonal_name(shared, reference, "acceleratorTypes").map_err(|why| invalid(&type_field, reference, &why))?;
        if in_zone != zone {
            return Err(invalid(
                &type_field,
                reference,
                &format!("Accelerator type zone '{in_zone}' does not match the instance zone '{zone}'."),
            ));
        }
        let Some(accelerator) = catalog::accelerator_type(name) else {
            return Err(invalid(
                &type_field,
                reference,
                &format!("Accelerator type '{name}' does not exist in zone '{zone}'."),
            ));
        };
        if !catalog::is_n1(machine_type) || accelerator.attachable_counts.is_empty() {
            return Err(invalid(
                &type_field,
                reference,
                &format!(
                    "Accelerator type '{name}' cannot be attached to machine type '{machine_type}': GPUs are \
                     attached only to N1 machine types, other GPU series carry their GPUs built in."
                ),
            ));
        }
        let count = config.get("acceleratorCount").and_then(Value::as_u64).unwrap_or(0);
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        if !accelerator.attachable_counts.contains(&count) {
            return Err(invalid(
                &format!("guestAccelerators[{i}].acceleratorCount"),
                &count.to_string(),
                &format!(
                    "Accelerator count for '{name}' must be one of {:?}.",
                    accelerator.attachable_counts
                ),
            ));
        }
        accelerators.push((name.to_owned(), count));
    }
    Ok(accelerators)
}
