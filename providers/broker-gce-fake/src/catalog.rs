//! What the fake's "cloud" offers: machine types, accelerator types, disk types, public images
//! and the zone names it accepts. Figures follow Google's public machine-type tables
//! (cloud-apis.md §A.8); every zone offers every machine type unless a test hides one.

/// A machine type and the GPUs built into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MachineType {
    pub(crate) cpus: u32,
    pub(crate) memory_mb: u32,
    pub(crate) shared_cpu: bool,
    /// Built-in accelerators (A2, A3, G2): the accelerator type and count.
    pub(crate) accelerators: Option<(&'static str, u32)>,
}

impl MachineType {
    const fn plain(cpus: u32, memory_mb: u32) -> Self {
        Self {
            cpus,
            memory_mb,
            shared_cpu: false,
            accelerators: None,
        }
    }

    const fn gpu(cpus: u32, memory_mb: u32, accelerator: &'static str, count: u32) -> Self {
        Self {
            cpus,
            memory_mb,
            shared_cpu: false,
            accelerators: Some((accelerator, count)),
        }
    }
}

/// The machine type called `name`, if the fake knows it.
pub(crate) fn machine_type(name: &str) -> Option<MachineType> {
    let (family, size) = name.rsplit_once('-')?;
    let cpus_of = |size: &str| size.parse::<u32>().ok();
    Some(match family {
        "n1-standard" => {
            let cpus = cpus_of(size).filter(|c| [1, 2, 4, 8, 16, 32, 64, 96].contains(c))?;
            MachineType::plain(cpus, cpus * 3840)
        }
        "n1-highmem" => {
            let cpus = cpus_of(size).filter(|c| [2, 4, 8, 16, 32, 64, 96].contains(c))?;
            MachineType::plain(cpus, cpus * 6656)
        }
        "n1-highcpu" => {
            let cpus = cpus_of(size).filter(|c| [2, 4, 8, 16, 32, 64, 96].contains(c))?;
            MachineType::plain(cpus, cpus * 922)
        }
        "e2-standard" => {
            let cpus = cpus_of(size).filter(|c| [2, 4, 8, 16, 32].contains(c))?;
            MachineType::plain(cpus, cpus * 4096)
        }
        "e2-highmem" => {
            let cpus = cpus_of(size).filter(|c| [2, 4, 8, 16].contains(c))?;
            MachineType::plain(cpus, cpus * 8192)
        }
        "e2-highcpu" => {
            let cpus = cpus_of(size).filter(|c| [2, 4, 8, 16, 32].contains(c))?;
            MachineType::plain(cpus, cpus * 1024)
        }
        "e2" => {
            let memory_mb = match size {
                "micro" => 1024,
                "small" => 2048,
                "medium" => 4096,
                _ => return None,
            };
            MachineType {
                shared_cpu: true,
                ..MachineType::plain(2, memory_mb)
            }
        }
        "a2-highgpu" => {
            let gpus = gpu_count(size, &[1, 2, 4, 8])?;
            MachineType::gpu(12 * gpus, 87_040 * gpus, "nvidia-tesla-a100", gpus)
        }
        "a2-megagpu" if size == "16g" => MachineType::gpu(96, 1_392_640, "nvidia-tesla-a100", 16),
        "a2-ultragpu" => {
            let gpus = gpu_count(size, &[1, 2, 4, 8])?;
            MachineType::gpu(12 * gpus, 174_080 * gpus, "nvidia-a100-80gb", gpus)
        }
        "a3-highgpu" => {
            let gpus = gpu_count(size, &[1, 2, 4, 8])?;
            MachineType::gpu(26 * gpus, 239_616 * gpus, "nvidia-h100-80gb", gpus)
        }
        "g2-standard" => {
            let cpus = cpus_of(size)?;
            let gpus = match cpus {
                4 | 8 | 12 | 16 | 32 => 1,
                24 => 2,
                48 => 4,
                96 => 8,
                _ => return None,
            };
            MachineType::gpu(cpus, cpus * 4096, "nvidia-l4", gpus)
        }
        _ => return None,
    })
}

fn gpu_count(size: &str, allowed: &[u32]) -> Option<u32> {
    size.strip_suffix('g')?.parse().ok().filter(|n| allowed.contains(n))
}

/// Whether `name` is an N1 type, the only series GPUs are attached to.
pub(crate) fn is_n1(name: &str) -> bool {
    name.starts_with("n1-")
}

/// An accelerator type: the most cards per VM, and the counts N1 VMs may attach (empty when the
/// type only comes built into its own machine series).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AcceleratorType {
    pub(crate) description: &'static str,
    pub(crate) max_per_instance: u32,
    pub(crate) attachable_counts: &'static [u32],
}

pub(crate) fn accelerator_type(name: &str) -> Option<AcceleratorType> {
    let (description, max_per_instance, attachable_counts): (&str, u32, &[u32]) = match name {
        "nvidia-tesla-t4" => ("NVIDIA T4", 4, &[1, 2, 4]),
        "nvidia-tesla-v100" => ("NVIDIA V100", 8, &[1, 2, 4, 8]),
        "nvidia-tesla-p100" => ("NVIDIA P100", 4, &[1, 2, 4]),
        "nvidia-tesla-p4" => ("NVIDIA P4", 4, &[1, 2, 4]),
        "nvidia-l4" => ("NVIDIA L4", 8, &[]),
        "nvidia-tesla-a100" => ("NVIDIA A100 40GB", 16, &[]),
        "nvidia-a100-80gb" => ("NVIDIA A100 80GB", 8, &[]),
        "nvidia-h100-80gb" => ("NVIDIA H100 80GB", 8, &[]),
        _ => return None,
    };
    Some(AcceleratorType {
        description,
        max_per_instance,
        attachable_counts,
    })
}

pub(crate) fn is_disk_type(name: &str) -> bool {
    matches!(
        name,
        "pd-standard"
            | "pd-balanced"
            | "pd-ssd"
            | "pd-extreme"
            | "hyperdisk-balanced"
            | "hyperdisk-extreme"
            | "local-ssd"
    )
}

/// A public image: its project, family, name, size and description.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Image {
    pub(crate) project: &'static str,
    pub(crate) family: &'static str,
    pub(crate) name: &'static str,
    pub(crate) disk_size_gb: u64,
    pub(crate) description: &'static str,
}

const DLVM: &str = "deeplearning-platform-release";

/// Deep Learning VM families in current use (cloud-apis.md §A.9) and Debian 12.
pub(crate) const IMAGES: &[Image] = &[
    Image {
        project: DLVM,
        family: "common-cu128-ubuntu-2204-nvidia-570",
        name: "common-cu128-ubuntu-2204-nvidia-570-v20261101",
        disk_size_gb: 50,
        description: "Google, Deep Learning VM with CUDA 12.8, M131, Ubuntu 22.04, Driver 570",
    },
    Image {
        project: DLVM,
        family: "common-cu129-ubuntu-2204-nvidia-580",
        name: "common-cu129-ubuntu-2204-nvidia-580-v20261101",
        disk_size_gb: 50,
        description: "Google, Deep Learning VM with CUDA 12.9, M131, Ubuntu 22.04, Driver 580",
    },
    Image {
        project: DLVM,
        family: "pytorch-2-7-cu128-ubuntu-2204-nvidia-570",
        name: "pytorch-2-7-cu128-ubuntu-2204-nvidia-570-v20261101",
        disk_size_gb: 150,
        description: "Google, Deep Learning VM for PyTorch 2.7 with CUDA 12.8, Ubuntu 22.04",
    },
    Image {
        project: DLVM,
        family: "pytorch-2-9-cu129-ubuntu-2204-nvidia-580",
        name: "pytorch-2-9-cu129-ubuntu-2204-nvidia-580-v20261101",
        disk_size_gb: 150,
        description: "Google, Deep Learning VM for PyTorch 2.9 with CUDA 12.9, Ubuntu 22.04",
    },
    Image {
        project: DLVM,
        family: "common-cpu",
        name: "common-cpu-v20261101",
        disk_size_gb: 50,
        description: "Google, Deep Learning VM, CPU only, Debian 11",
    },
    Image {
        project: "debian-cloud",
        family: "debian-12",
        name: "debian-12-bookworm-v20261118",
        disk_size_gb: 10,
        description: "Debian, Debian GNU/Linux, 12 (bookworm), amd64 built on 20261118",
    },
];

pub(crate) fn image_by_family(project: &str, family: &str) -> Option<&'static Image> {
    IMAGES.iter().find(|i| i.project == project && i.family == family)
}

pub(crate) fn image_by_name(project: &str, name: &str) -> Option<&'static Image> {
    IMAGES.iter().find(|i| i.project == project && i.name == name)
}

/// Projects whose images anyone may read.
pub(crate) fn is_public_image_project(project: &str) -> bool {
    IMAGES.iter().any(|i| i.project == project)
}

/// Zones listed with `NO_RESULTS_ON_PAGE` in aggregated lists even when empty.
pub(crate) const LISTED_ZONES: &[&str] = &[
    "asia-east1-a",
    "europe-west4-a",
    "us-central1-a",
    "us-central1-b",
    "us-central1-c",
    "us-central1-f",
    "us-east1-b",
    "us-east1-c",
    "us-east4-a",
    "us-west1-a",
    "us-west1-b",
];

/// A zone name of the shape `us-central1-a`: any such zone exists in the fake.
pub(crate) fn is_zone(zone: &str) -> bool {
    let Some((region, suffix)) = zone.rsplit_once('-') else {
        return false;
    };
    suffix.len() == 1 && suffix.chars().all(|c| c.is_ascii_lowercase()) && is_region(region)
}

/// `us-central1`: letters, a dash, letters ending in digits.
pub(crate) fn is_region(region: &str) -> bool {
    let Some((geo, area)) = region.split_once('-') else {
        return false;
    };
    let letters = area.trim_end_matches(|c: char| c.is_ascii_digit());
    !geo.is_empty()
        && geo.chars().all(|c| c.is_ascii_lowercase())
        && !letters.is_empty()
        && letters.len() < area.len()
        && letters.chars().all(|c| c.is_ascii_lowercase())
}

/// `us-central1-a` → `us-central1`.
pub(crate) fn region_of(zone: &str) -> &str {
    zone.rsplit_once('-').map_or(zone, |(region, _)| region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_gpu_machine_types() {
        assert_eq!(
            machine_type("a2-highgpu-8g").and_then(|m| m.accelerators),
            Some(("nvidia-tesla-a100", 8))
        );
        assert_eq!(
            machine_type("g2-standard-24").and_then(|m| m.accelerators),
            Some(("nvidia-l4", 2))
        );
        assert_eq!(
            machine_type("n1-standard-8").map(|m| (m.cpus, m.memory_mb)),
            Some((8, 30_720))
        );
        assert!(machine_type("n1-standard-3").is_none());
        assert!(machine_type("z9-mega-1").is_none());
        assert!(machine_type("e2-medium").is_some_and(|m| m.shared_cpu));
    }

    #[test]
    fn recognises_zone_names() {
        assert!(is_zone("us-central1-a"));
        assert!(is_zone("europe-west4-b"));
        assert!(is_zone("northamerica-northeast1-a"));
        assert!(!is_zone("us-central1"));
        assert!(!is_zone("mars-1-a"));
        assert!(!is_zone("US-central1-a"));
        assert_eq!(region_of("us-central1-a"), "us-central1");
    }
}
