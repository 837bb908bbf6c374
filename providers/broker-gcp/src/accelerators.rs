//! What a machine type implies: its GPUs (built in or attached), boot disk type and NIC.
//!
//! GCE attaches GPUs in two ways (../shared/reference/cloud-apis.md §A.8): accelerator-optimised
//! families (A2, A3, A4, G2, G4) carry theirs and refuse `guestAccelerators`, while N1 hosts take
//! attached GPUs and nothing else does. The catalogs spell GPUs the way SkyPilot does (`T4`,
//! `A100-80GB`), GCE by accelerator type (`nvidia-tesla-t4`, `nvidia-a100-80gb`).

/// Catalog name (upper-cased) → GCE accelerator type, as SkyPilot's GCP catalog maps them.
const ACCELERATOR_TYPES: &[(&str, &str)] = &[
    ("K80", "nvidia-tesla-k80"),
    ("P4", "nvidia-tesla-p4"),
    ("P100", "nvidia-tesla-p100"),
    ("V100", "nvidia-tesla-v100"),
    ("T4", "nvidia-tesla-t4"),
    ("A100", "nvidia-tesla-a100"),
    ("A100-80GB", "nvidia-a100-80gb"),
    ("L4", "nvidia-l4"),
    ("H100", "nvidia-h100-80gb"),
    ("H100-MEGA", "nvidia-h100-mega-80gb"),
    ("H200", "nvidia-h200-141gb"),
    ("B200", "nvidia-b200"),
    ("GB200", "nvidia-gb200"),
];

/// Families whose machine types come with their GPUs attached by GCE.
const BUILT_IN_GPU_FAMILIES: &[&str] = &["a2", "a3", "a4", "a4x", "g2", "g4"];

/// Series that boot only from Hyperdisk; every other series takes `pd-balanced`.
const HYPERDISK_ONLY: &[&str] = &["c4", "c4a", "c4d", "n4", "a4", "a4x", "x4", "m4"];

/// The GCE accelerator type for a catalog GPU name, case-insensitively; a name that is already
/// a GCE type (`nvidia-...`) passes through.
pub(crate) fn accelerator_type(name: &str) -> Option<String> {
    if name.to_ascii_lowercase().starts_with("nvidia-") {
        return Some(name.to_ascii_lowercase());
    }
    ACCELERATOR_TYPES
        .iter()
        .find(|(catalog, _)| catalog.eq_ignore_ascii_case(name))
        .map(|(_, gce)| (*gce).to_owned())
}

/// The series of a machine type: `n1` for `n1-standard-8`, `a3` for `a3-highgpu-8g`.
fn series(machine_type: &str) -> &str {
    machine_type.split('-').next().unwrap_or(machine_type)
}

/// How a machine type relates to GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GpuAttachment {
    /// N1: GPUs, if any, must be attached with `guestAccelerators`.
    Attachable,
    /// A2/A3/A4/G2/G4: the machine type carries its GPUs.
    BuiltIn,
    /// Every other series: no GPUs possible.
    None,
}

pub(crate) fn gpu_attachment(machine_type: &str) -> GpuAttachment {
    let series = series(machine_type);
    if series == "n1" {
        GpuAttachment::Attachable
    } else if BUILT_IN_GPU_FAMILIES.contains(&series) {
        GpuAttachment::BuiltIn
    } else {
        GpuAttachment::None
    }
}

/// The boot disk type for a machine type: newer series refuse persistent disks.
pub(crate) fn boot_disk_type(machine_type: &str) -> &'static str {
    let series = series(machine_type);
    // A3 Ultra (H200) is Hyperdisk-only although A3 High and Mega are not.
    if HYPERDISK_ONLY.contains(&series) || machine_type.starts_with("a3-ultragpu") {
        "hyperdisk-balanced"
    } else {
        "pd-balanced"
    }
}

/// Whether the machine type needs the gVNIC driver: A3 and A4 types refuse `VIRTIO_NET`.
pub(crate) fn needs_gvnic(machine_type: &str) -> bool {
    matches!(series(machine_type), "a3" | "a4" | "a4x")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_map_to_gce_accelerator_types() {
        for (name, gce) in [
            ("T4", "nvidia-tesla-t4"),
            ("t4", "nvidia-tesla-t4"),
            ("V100", "nvidia-tesla-v100"),
            ("P100", "nvidia-tesla-p100"),
            ("P4", "nvidia-tesla-p4"),
            ("K80", "nvidia-tesla-k80"),
            ("L4", "nvidia-l4"),
            ("A100", "nvidia-tesla-a100"),
            ("A100-80GB", "nvidia-a100-80gb"),
            ("H100", "nvidia-h100-80gb"),
            ("H100-MEGA", "nvidia-h100-mega-80gb"),
            ("H200", "nvidia-h200-141gb"),
            ("nvidia-tesla-t4", "nvidia-tesla-t4"),
        ] {
            assert_eq!(accelerator_type(name).as_deref(), Some(gce), "{name}");
        }
        assert_eq!(accelerator_type("A10G"), None, "an AWS GPU is not on GCE");
    }

    #[test]
    fn families_decide_how_gpus_attach() {
        assert_eq!(gpu_attachment("n1-standard-8"), GpuAttachment::Attachable);
        for built_in in [
            "a2-highgpu-1g",
            "a2-ultragpu-8g",
            "a3-highgpu-8g",
            "a3-megagpu-8g",
            "g2-standard-4",
        ] {
            assert_eq!(gpu_attachment(built_in), GpuAttachment::BuiltIn, "{built_in}");
        }
        for cpu in ["e2-standard-2", "n2-standard-8", "c3-highcpu-4", "n1x-weird"] {
            assert_eq!(gpu_attachment(cpu), GpuAttachment::None, "{cpu}");
        }
    }

    #[test]
    fn disk_type_and_nic_follow_the_series() {
        assert_eq!(boot_disk_type("n1-standard-8"), "pd-balanced");
        assert_eq!(boot_disk_type("a3-highgpu-8g"), "pd-balanced");
        assert_eq!(boot_disk_type("a3-ultragpu-8g"), "hyperdisk-balanced");
        assert_eq!(boot_disk_type("c4-standard-8"), "hyperdisk-balanced");
        assert!(needs_gvnic("a3-highgpu-8g"));
        assert!(!needs_gvnic("g2-standard-4"));
    }
}
