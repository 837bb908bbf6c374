//! What the local cloud sells: CPU-only sizes `docker-cpu-N` that fit on this host, for free.
//!
//! The size is enforced with `--cpus` and `--memory`, so a job tried out locally meets the same
//! limits it would on the matching cloud machine instead of taking the whole laptop.

use std::borrow::Cow;

use broker_provider::{Arch, Cloud, Offer};

use crate::local_location;

/// Prefix of every instance type name.
pub(crate) const PREFIX: &str = "docker-cpu-";

/// Memory given per vCPU, as on general-purpose cloud machines.
const MIB_PER_CPU: u64 = 4 * 1024;

/// What the host has to share out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Host {
    pub(crate) cpus: u32,
    /// `None` when /proc/meminfo cannot be read (not Linux): sizes then get 4 GiB per vCPU.
    pub(crate) memory_mib: Option<u64>,
}

impl Host {
    pub(crate) fn detect() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .as_deref()
            .and_then(meminfo_mib);
        Self { cpus, memory_mib }
    }
}

/// `MemTotal` of /proc/meminfo, in MiB.
fn meminfo_mib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// The limits one instance type stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size {
    pub(crate) cpus: u32,
    pub(crate) memory_mib: u64,
}

/// The size behind `docker-cpu-N`, if N is between 1 and the host's CPU count.
pub(crate) fn size(instance_type: &str, host: Host) -> Option<Size> {
    let cpus: u32 = instance_type.strip_prefix(PREFIX)?.parse().ok()?;
    if cpus == 0 || cpus > host.cpus {
        return None;
    }
    let wanted = u64::from(cpus) * MIB_PER_CPU;
    let memory_mib = host.memory_mib.map_or(wanted, |host_mib| host_mib.min(wanted));
    Some(Size { cpus, memory_mib })
}

/// One offer per power-of-two size up to the host's CPU count.
pub(crate) fn offers(host: Host) -> Vec<Offer> {
    let arch = if std::env::consts::ARCH == "aarch64" {
        Arch::Arm64
    } else {
        Arch::X86_64
    };
    std::iter::successors(Some(1_u32), |n| n.checked_mul(2))
        .take_while(|n| *n <= host.cpus)
        .filter_map(|n| {
            let name = format!("{PREFIX}{n}");
            let size = size(&name, host)?;
            Some(Offer {
                cloud: Cloud::Docker,
                instance_type: Cow::Owned(name),
                accelerator: None,
                vcpus: Some(f64::from(size.cpus)),
                memory_gib: Some(size.memory_mib as f64 / 1024.0),
                price: Some(0.0),
                spot_price: None,
                location: local_location(),
                arch,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Host = Host {
        cpus: 6,
        memory_mib: Some(10 * 1024),
    };

    #[test]
    fn sizes_are_powers_of_two_up_to_the_cpu_count() {
        let names: Vec<_> = offers(HOST).into_iter().map(|o| o.instance_type.into_owned()).collect();
        assert_eq!(names, ["docker-cpu-1", "docker-cpu-2", "docker-cpu-4"]);
        let one = &offers(HOST)[0];
        assert_eq!(one.price, Some(0.0));
        assert_eq!(one.spot_price, None);
        assert_eq!(one.location.region, "local");
        assert_eq!(one.location.zone, None);
        assert_eq!(one.cloud, Cloud::Docker);
    }

    #[test]
    fn memory_is_four_gib_per_cpu_capped_by_the_host() {
        assert_eq!(
            size("docker-cpu-1", HOST),
            Some(Size {
                cpus: 1,
                memory_mib: 4096
            })
        );
        assert_eq!(size("docker-cpu-4", HOST).map(|s| s.memory_mib), Some(10 * 1024));
        assert_eq!(size("docker-cpu-6", HOST).map(|s| s.cpus), Some(6));
        assert_eq!(size("docker-cpu-7", HOST), None);
        assert_eq!(size("docker-cpu-0", HOST), None);
        assert_eq!(size("g5.xlarge", HOST), None);
        let unknown_memory = Host {
            cpus: 2,
            memory_mib: None,
        };
        assert_eq!(size("docker-cpu-2", unknown_memory).map(|s| s.memory_mib), Some(8192));
    }

    #[test]
    fn meminfo_is_read_in_mib() {
        let text = "MemTotal:       24684092 kB\nMemFree:        1 kB\n";
        assert_eq!(meminfo_mib(text), Some(24_105));
        assert_eq!(meminfo_mib("nothing"), None);
    }
}
