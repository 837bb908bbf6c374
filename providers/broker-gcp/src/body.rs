//! Request bodies broker sends: `instances.insert` (../shared/reference/cloud-apis.md §A.3) and
//! the SSH firewall rule (§A.7), plus the names, labels and request ids that make a launch
//! findable and repeatable.
//!
//! Pure functions of the spec, so the exact wire shape is unit-tested here and checked against
//! Google's discovery document by the fake in the integration tests.

use std::collections::BTreeMap;

use broker_provider::{Cloud, LaunchSpec, ProviderError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::accelerators::{self, GpuAttachment};
use crate::labels;

/// GCE's label limits: 63 characters per key and value, 64 labels per resource.
const LABEL_MAX_LEN: usize = 63;
const MAX_LABELS: usize = 64;
/// GCE's minimum boot disk, in GB.
const MIN_DISK_GB: u32 = 10;
/// `maxRunDuration` must be at least 30 s.
const MIN_RUN_SECONDS: u64 = 30;
/// N1 hosts take at most 8 GPUs.
const MAX_ATTACHED_GPUS: u32 = 8;

fn sha256(parts: &[&str]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        // A separator that cannot occur in the parts keeps ("ab","c") and ("a","bc") apart.
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

/// The value of the token label: launch tokens are free text, labels are not, so the label holds
/// 80 bits of a hash of the token, which is as good for finding an attempt again.
pub(crate) fn token_label(token: &str) -> String {
    hex(&sha256(&["broker-token", token])[..10])
}

/// The instance name for `rank` of an attempt: `{cluster}-{rank}-{6 hex of the token}`, at most
/// 40 + 1 + 10 + 1 + 6 = 58 characters and always matching `[a-z]([-a-z0-9]*[a-z0-9])?`,
/// because cluster names start with a letter. The token part keeps a later attempt in the
/// same zone from colliding with a leftover of an earlier one.
pub(crate) fn instance_name(spec: &LaunchSpec, rank: u32) -> String {
    format!("{}-{rank}-{}", spec.cluster, &token_label(&spec.token.0)[..6])
}

/// The `requestId` of the insert for `rank`: a UUID derived from the attempt, so a resend after a
/// timeout carries the same id and GCE answers with the first operation instead of a second VM.
/// Shaped as a version-4 UUID (GCE only requires "a valid UUID", not the zero one).
pub(crate) fn insert_request_id(spec: &LaunchSpec, zone: &str, rank: u32) -> String {
    let digest = sha256(&[
        "broker-insert",
        spec.cluster.as_str(),
        zone,
        &spec.token.0,
        &rank.to_string(),
    ]);
    let mut b: [u8; 16] = [0; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// A label key GCE accepts: lower-case letters, digits, `_` and `-`, starting with a letter, at
/// most 63 characters. `None` when nothing usable is left.
pub(crate) fn sanitize_label_key(key: &str) -> Option<String> {
    let mut out = sanitize_label_value(key);
    if out.is_empty() {
        return None;
    }
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert(0, 'x');
        out.truncate(LABEL_MAX_LEN);
    }
    Some(out)
}

/// A label value GCE accepts: lower-case letters, digits, `_` and `-`, at most 63 characters;
/// anything else becomes `_`.
pub(crate) fn sanitize_label_value(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(LABEL_MAX_LEN)
        .collect()
}

/// broker's own labels for `rank`, then the spec's labels sanitized. A user label never
/// replaces one of broker's (they are how `nodes` and `terminate` find the cluster); when two
/// user keys sanitize alike the first in key order wins, and labels past GCE's 64 are dropped.
pub(crate) fn node_labels(spec: &LaunchSpec, rank: u32, base_rank: u32) -> BTreeMap<String, String> {
    let mut out = BTreeMap::from([
        (labels::MANAGED.to_owned(), "1".to_owned()),
        (labels::CLUSTER.to_owned(), spec.cluster.to_string()),
        (labels::RANK.to_owned(), rank.to_string()),
        (labels::BASE_RANK.to_owned(), base_rank.to_string()),
        (labels::TOKEN.to_owned(), token_label(&spec.token.0)),
    ]);
    for (key, value) in &spec.labels {
        if out.len() >= MAX_LABELS {
            break;
        }
        if let Some(key) = sanitize_label_key(key) {
            out.entry(key).or_insert_with(|| sanitize_label_value(value));
        }
    }
    out
}

/// Where the instance goes and what it is made from, beyond the spec itself.
#[derive(Debug, Clone)]
pub(crate) struct Placement<'a> {
    pub(crate) project: &'a str,
    pub(crate) zone: &'a str,
    /// `sourceImage`: `projects/{p}/global/images/{name}` (or a family path).
    pub(crate) image: &'a str,
    /// The image's own size: a smaller boot disk is refused, so the spec's size is raised to it.
    pub(crate) min_disk_gb: u32,
    /// Network path, relative to the project unless it starts with `projects/` or `https://`.
    pub(crate) network: &'a str,
    pub(crate) ssh_user: &'a str,
    pub(crate) ssh_tag: &'a str,
}

impl Placement<'_> {
    fn zonal(&self, kind: &str, name: &str) -> String {
        format!("projects/{}/zones/{}/{kind}/{name}", self.project, self.zone)
    }

    fn network(&self) -> String {
        if self.network.starts_with("projects/") || self.network.starts_with("https://") {
            self.network.to_owned()
        } else {
            format!("projects/{}/{}", self.project, self.network.trim_start_matches('/'))
        }
    }
}

fn invalid(message: String) -> ProviderError {
    ProviderError::Invalid {
        cloud: Cloud::Gcp,
        message,
    }
}

/// Whether nodes of this spec have GPUs (attached or built in), which decides the default image
/// and forbids live migration.
pub(crate) fn has_gpus(spec: &LaunchSpec) -> bool {
    match accelerators::gpu_attachment(&spec.instance_type) {
        GpuAttachment::BuiltIn => true,
        GpuAttachment::Attachable => spec.accelerator.as_ref().is_some_and(|a| a.count > 0.0),
        GpuAttachment::None => false,
    }
}

/// `guestAccelerators` for an N1 host, empty for every other series (A2/A3/G2 carry theirs);
/// an error when the spec asks for GPUs the machine type cannot take.
fn guest_accelerators(spec: &LaunchSpec, placement: &Placement<'_>) -> Result<Vec<Value>, ProviderError> {
    let Some(accelerator) = spec.accelerator.as_ref().filter(|a| a.count > 0.0) else {
        return Ok(Vec::new());
    };
    match accelerators::gpu_attachment(&spec.instance_type) {
        GpuAttachment::BuiltIn => Ok(Vec::new()),
        GpuAttachment::None => Err(invalid(format!(
            "`{}` cannot carry GPUs: on GCE, {} GPUs attach to N1 machine types only",
            spec.instance_type, accelerator.name
        ))),
        GpuAttachment::Attachable => {
            let gce = accelerators::accelerator_type(&accelerator.name)
                .ok_or_else(|| invalid(format!("GCE has no GPU called `{}`", accelerator.name)))?;
            // `acceleratorCount` is an int32 on the wire: 2, not 2.0.
            let count = (1..=MAX_ATTACHED_GPUS)
                .find(|n| (f64::from(*n) - accelerator.count).abs() < f64::EPSILON)
                .ok_or_else(|| {
                    invalid(format!(
                        "{} x {} cannot be attached: N1 takes 1 to 8 whole GPUs",
                        accelerator.count, accelerator.name
                    ))
                })?;
            Ok(vec![json!({
                "acceleratorType": placement.zonal("acceleratorTypes", &gce),
                "acceleratorCount": count,
            })])
        }
    }
}

/// `scheduling`: GPUs cannot live-migrate (TERMINATE, no automatic restart), spot is `SPOT` and
/// deleted when reclaimed, and a life limit deletes the VM when it runs out, so a node whose
/// watchdog never ran still stops billing.
fn scheduling(spec: &LaunchSpec, gpus: bool) -> Option<Value> {
    if !gpus && !spec.spot && spec.max_run_seconds.is_none() {
        return None;
    }
    let mut scheduling = serde_json::Map::new();
    if gpus || spec.spot {
        scheduling.insert("onHostMaintenance".into(), "TERMINATE".into());
        scheduling.insert("automaticRestart".into(), false.into());
    }
    if spec.spot {
        scheduling.insert("provisioningModel".into(), "SPOT".into());
    }
    if let Some(seconds) = spec.max_run_seconds {
        scheduling.insert(
            "maxRunDuration".into(),
            json!({ "seconds": seconds.max(MIN_RUN_SECONDS).to_string() }),
        );
    }
    if spec.spot || spec.max_run_seconds.is_some() {
        scheduling.insert("instanceTerminationAction".into(), "DELETE".into());
    }
    Some(Value::Object(scheduling))
}

/// The `instances.insert` body for `rank`.
pub(crate) fn insert_body(
    spec: &LaunchSpec,
    placement: &Placement<'_>,
    rank: u32,
    base_rank: u32,
) -> Result<Value, ProviderError> {
    let gpus = has_gpus(spec);
    let mut metadata = Vec::new();
    let key = spec.ssh_public_key.trim();
    if !key.is_empty() {
        if key.contains('\n') {
            return Err(invalid("the SSH public key must be a single line".into()));
        }
        metadata.push(json!({"key": "ssh-keys", "value": format!("{}:{key}", placement.ssh_user)}));
    }
    if gpus {
        // Deep Learning VM images install the NVIDIA driver on first boot only when asked.
        metadata.push(json!({"key": "install-nvidia-driver", "value": "True"}));
    }
    let mut interface = json!({
        "network": placement.network(),
        "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT"}],
    });
    if accelerators::needs_gvnic(&spec.instance_type) {
        interface["nicType"] = "GVNIC".into();
    }
    let mut body = json!({
        "name": instance_name(spec, rank),
        "machineType": placement.zonal("machineTypes", &spec.instance_type),
        "disks": [{
            "boot": true,
            "autoDelete": true,
            "type": "PERSISTENT",
            "initializeParams": {
                "sourceImage": placement.image,
                // int64 fields travel as JSON strings.
                "diskSizeGb": spec.disk_gib.max(placement.min_disk_gb).max(MIN_DISK_GB).to_string(),
                "diskType": placement.zonal("diskTypes", accelerators::boot_disk_type(&spec.instance_type)),
            },
        }],
        "networkInterfaces": [interface],
        "metadata": {"items": metadata},
        "labels": node_labels(spec, rank, base_rank),
        "tags": {"items": [placement.ssh_tag]},
    });
    let accelerators = guest_accelerators(spec, placement)?;
    if !accelerators.is_empty() {
        body["guestAccelerators"] = Value::Array(accelerators);
    }
    if let Some(scheduling) = scheduling(spec, gpus) {
        body["scheduling"] = scheduling;
    }
    Ok(body)
}

/// The firewall rule letting `source_ranges` reach port 22 of instances tagged `tag`.
pub(crate) fn firewall_body(name: &str, project: &str, network: &str, source_ranges: &[String], tag: &str) -> Value {
    let placement = Placement {
        project,
        zone: "",
        image: "",
        min_disk_gb: 0,
        network,
        ssh_user: "",
        ssh_tag: tag,
    };
    json!({
        "name": name,
        "description": "SSH to broker's nodes (created by broker)",
        "network": placement.network(),
        "direction": "INGRESS",
        "priority": 1000,
        "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
        "sourceRanges": source_ranges,
        "targetTags": [tag],
    })
}

#[cfg(test)]
mod tests {
    use broker_provider::{Accelerator, Arch, LaunchToken, Location, Offer};

    use super::*;

    fn spec(instance_type: &str, accelerator: Option<(&'static str, f64)>) -> LaunchSpec {
        let offer = Offer {
            cloud: Cloud::Gcp,
            instance_type: instance_type.to_owned().into(),
            accelerator: accelerator.map(|(name, count)| Accelerator {
                name: name.into(),
                count,
            }),
            vcpus: None,
            memory_gib: None,
            price: Some(1.0),
            spot_price: Some(0.3),
            location: Location {
                region: "us-central1".into(),
                zone: Some("us-central1-a".into()),
            },
            arch: Arch::X86_64,
        };
        LaunchSpec::new("train".parse().unwrap(), LaunchToken("tok-1".into()), &offer, 2, false)
            .with_ssh_public_key("ssh-ed25519 AAAAC3Nza test@host\n")
            .with_disk_gib(200)
    }

    const PLACEMENT: Placement<'static> = Placement {
        project: "proj",
        zone: "us-central1-a",
        image: "projects/debian-cloud/global/images/debian-12-bookworm-v20261001",
        min_disk_gb: 10,
        network: "global/networks/default",
        ssh_user: "broker",
        ssh_tag: "broker-ssh",
    };

    #[test]
    fn a_cpu_node_has_disk_network_key_labels_and_no_scheduling() {
        let body = insert_body(&spec("e2-standard-4", None), &PLACEMENT, 1, 0).unwrap();
        let token = token_label("tok-1");
        assert_eq!(
            body,
            json!({
                "name": format!("train-1-{}", &token[..6]),
                "machineType": "projects/proj/zones/us-central1-a/machineTypes/e2-standard-4",
                "disks": [{
                    "boot": true, "autoDelete": true, "type": "PERSISTENT",
                    "initializeParams": {
                        "sourceImage": "projects/debian-cloud/global/images/debian-12-bookworm-v20261001",
                        "diskSizeGb": "200",
                        "diskType": "projects/proj/zones/us-central1-a/diskTypes/pd-balanced",
                    },
                }],
                "networkInterfaces": [{
                    "network": "projects/proj/global/networks/default",
                    "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT"}],
                }],
                "metadata": {"items": [{"key": "ssh-keys", "value": "broker:ssh-ed25519 AAAAC3Nza test@host"}]},
                "labels": {
                    "broker-managed": "1", "broker-cluster": "train", "broker-rank": "1",
                    "broker-base-rank": "0", "broker-token": token,
                },
                "tags": {"items": ["broker-ssh"]},
            })
        );
    }

    #[test]
    fn the_disk_is_at_least_as_large_as_the_image() {
        let placement = Placement {
            min_disk_gb: 50,
            ..PLACEMENT
        };
        let small = spec("n1-standard-8", Some(("T4", 1.0))).with_disk_gib(20);
        let body = insert_body(&small, &placement, 0, 0).unwrap();
        assert_eq!(body["disks"][0]["initializeParams"]["diskSizeGb"], "50");
    }

    #[test]
    fn n1_with_t4_attaches_the_gpu_and_terminates_on_maintenance() {
        let body = insert_body(&spec("n1-standard-8", Some(("T4", 2.0))), &PLACEMENT, 0, 0).unwrap();
        assert_eq!(
            body["guestAccelerators"],
            json!([{
                "acceleratorType": "projects/proj/zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4",
                "acceleratorCount": 2,
            }])
        );
        assert_eq!(
            body["scheduling"],
            json!({"onHostMaintenance": "TERMINATE", "automaticRestart": false})
        );
        assert_eq!(
            body["metadata"]["items"][1],
            json!({"key": "install-nvidia-driver", "value": "True"})
        );
    }

    #[test]
    fn built_in_gpu_families_get_no_guest_accelerators_but_still_terminate() {
        for (machine, gpu) in [
            ("a2-highgpu-1g", "A100"),
            ("g2-standard-4", "L4"),
            ("a3-highgpu-8g", "H100"),
        ] {
            let body = insert_body(&spec(machine, Some((gpu, 1.0))), &PLACEMENT, 0, 0).unwrap();
            assert!(body.get("guestAccelerators").is_none(), "{machine}: {body}");
            assert_eq!(body["scheduling"]["onHostMaintenance"], "TERMINATE", "{machine}");
        }
        let a3 = insert_body(&spec("a3-highgpu-8g", Some(("H100", 8.0))), &PLACEMENT, 0, 0).unwrap();
        assert_eq!(a3["networkInterfaces"][0]["nicType"], "GVNIC");
    }

    #[test]
    fn spot_and_life_limits_reach_scheduling() {
        let mut spot = spec("n1-standard-8", Some(("T4", 1.0)));
        spot.spot = true;
        let spot = spot.with_max_run_seconds(Some(3600));
        let body = insert_body(&spot, &PLACEMENT, 0, 0).unwrap();
        assert_eq!(
            body["scheduling"],
            json!({
                "onHostMaintenance": "TERMINATE", "automaticRestart": false,
                "provisioningModel": "SPOT", "instanceTerminationAction": "DELETE",
                "maxRunDuration": {"seconds": "3600"},
            })
        );
        let limited = spec("e2-standard-2", None).with_max_run_seconds(Some(5));
        let body = insert_body(&limited, &PLACEMENT, 0, 0).unwrap();
        assert_eq!(
            body["scheduling"],
            json!({"maxRunDuration": {"seconds": "30"}, "instanceTerminationAction": "DELETE"}),
            "a limit under GCE's minimum is raised to it"
        );
    }

    #[test]
    fn impossible_gpu_requests_are_invalid() {
        for (machine, accelerator) in [
            ("e2-standard-8", ("T4", 1.0)),
            ("n1-standard-8", ("A10G", 1.0)),
            ("n1-standard-8", ("T4", 0.5)),
            ("n1-standard-96", ("V100", 16.0)),
        ] {
            let err = insert_body(&spec(machine, Some(accelerator)), &PLACEMENT, 0, 0).unwrap_err();
            assert_eq!(
                err.class(),
                broker_provider::ErrorClass::Invalid,
                "{machine} {accelerator:?}: {err}"
            );
        }
    }

    #[test]
    fn labels_are_sanitized_and_never_replace_brokers() {
        assert_eq!(sanitize_label_key("Team Name"), Some("team_name".into()));
        assert_eq!(sanitize_label_key("9lives"), Some("x9lives".into()));
        assert_eq!(sanitize_label_key("_x"), Some("x_x".into()));
        assert_eq!(sanitize_label_key(""), None);
        assert_eq!(sanitize_label_key(&"k".repeat(80)).map(|k| k.len()), Some(63));
        assert_eq!(sanitize_label_key(&"9".repeat(80)).map(|k| k.len()), Some(63));
        assert_eq!(sanitize_label_value("Ünïcode/Path.v1"), "_n_code_path_v1");
        assert_eq!(sanitize_label_value(""), "");
        let mut s = spec("e2-standard-2", None);
        s.labels = BTreeMap::from([
            ("broker-cluster".to_owned(), "evil".to_owned()),
            ("Owner".to_owned(), "Ada@Example.com".to_owned()),
            ("owner".to_owned(), "second".to_owned()),
        ]);
        let labels = node_labels(&s, 0, 0);
        assert_eq!(labels["broker-cluster"], "train");
        assert_eq!(labels["owner"], "ada_example_com");
        for (i, key) in (0..100).map(|i| (i, format!("k{i}"))) {
            s.labels.insert(key, i.to_string());
        }
        assert_eq!(node_labels(&s, 0, 0).len(), 64);
    }

    #[test]
    fn names_and_request_ids_are_stable_per_attempt_and_rank() {
        let s = spec("e2-standard-2", None);
        let name = instance_name(&s, 12);
        assert!(
            name.starts_with("train-12-") && name.len() == "train-12-".len() + 6,
            "{name}"
        );
        let id = insert_request_id(&s, "us-central1-a", 0);
        assert_eq!(id, insert_request_id(&s, "us-central1-a", 0), "a resend reuses the id");
        assert_ne!(id, insert_request_id(&s, "us-central1-a", 1));
        assert_ne!(id, insert_request_id(&s, "us-central1-b", 0));
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12],
            "{id}"
        );
        assert!(parts[2].starts_with('4'), "version 4: {id}");
        assert!(
            matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
            "RFC variant: {id}"
        );
        let long: broker_provider::ClusterName = "a".repeat(40).parse().unwrap();
        let mut long_spec = s.clone();
        long_spec.cluster = long;
        assert!(instance_name(&long_spec, u32::MAX).len() <= 63);
    }

    #[test]
    fn the_firewall_rule_opens_port_22_to_the_tag() {
        let body = firewall_body(
            "broker-allow-ssh",
            "proj",
            "global/networks/default",
            &["0.0.0.0/0".to_owned()],
            "broker-ssh",
        );
        assert_eq!(body["network"], "projects/proj/global/networks/default");
        assert_eq!(body["allowed"], json!([{"IPProtocol": "tcp", "ports": ["22"]}]));
        assert_eq!(body["sourceRanges"], json!(["0.0.0.0/0"]));
        assert_eq!(body["targetTags"], json!(["broker-ssh"]));
    }
}
