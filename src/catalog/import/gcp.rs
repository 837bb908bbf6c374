//! GCP's pricing rule: SkyPilot lists GPUs as rows of their own (empty `InstanceType`, price of
//! that many GPUs in one zone), and a VM with GPUs costs its host row plus its GPU row in the same
//! zone. This turns host and GPU rows into priced offers the way SkyPilot's `gcp_catalog` does.

use std::collections::HashMap;

use super::{CloudReport, DropReason, SourceRow, add_prices, number};

/// Machine types with built-in GPUs, after SkyPilot's `_ACC_INSTANCE_TYPE_DICTS`.
const BUILT_IN: &[(&str, &str, &str)] = &[
    ("a2-highgpu-1g", "A100", "1"),
    ("a2-highgpu-2g", "A100", "2"),
    ("a2-highgpu-4g", "A100", "4"),
    ("a2-highgpu-8g", "A100", "8"),
    ("a2-megagpu-16g", "A100", "16"),
    ("a2-ultragpu-1g", "A100-80GB", "1"),
    ("a2-ultragpu-2g", "A100-80GB", "2"),
    ("a2-ultragpu-4g", "A100-80GB", "4"),
    ("a2-ultragpu-8g", "A100-80GB", "8"),
    ("a3-highgpu-1g", "H100", "1"),
    ("a3-highgpu-2g", "H100", "2"),
    ("a3-highgpu-4g", "H100", "4"),
    ("a3-highgpu-8g", "H100", "8"),
    ("a3-edgegpu-8g", "H100", "8"),
    ("a3-megagpu-8g", "H100-MEGA", "8"),
    ("a3-ultragpu-8g", "H200", "8"),
    ("a4-highgpu-8g", "B200", "8"),
    ("g2-standard-4", "L4", "1"),
    ("g2-standard-8", "L4", "1"),
    ("g2-standard-12", "L4", "1"),
    ("g2-standard-16", "L4", "1"),
    ("g2-standard-32", "L4", "1"),
    ("g2-standard-24", "L4", "2"),
    ("g2-standard-48", "L4", "4"),
    ("g2-standard-96", "L4", "8"),
];

/// Families whose price without their built-in GPUs means nothing; a type of these families
/// that `BUILT_IN` does not name (e.g. `a3-ultragpu-8g-nolssd`) is dropped, not sold as a CPU VM.
const GPU_FAMILIES: &[&str] = &["a2", "a3", "a4", "a4x", "g2", "g4"];

/// Most vCPUs an N1 host may have for a GPU count (GCP's GPU documentation).
const N1_LIMITS: &[(&str, &str, f64)] = &[
    ("T4", "1", 48.0),
    ("T4", "2", 48.0),
    ("T4", "4", 96.0),
    ("V100", "1", 12.0),
    ("V100", "2", 24.0),
    ("V100", "4", 48.0),
    ("V100", "8", 96.0),
    ("P100", "1", 16.0),
    ("P100", "2", 32.0),
    ("P100", "4", 96.0),
    ("P4", "1", 24.0),
    ("P4", "2", 48.0),
    ("P4", "4", 96.0),
];

const N1_GPUS: &[&str] = &["T4", "V100", "P100", "P4"];

/// A GPU row, and whether any host in its zone could carry it.
struct Gpu {
    row: SourceRow,
    count: String,
    used: bool,
}

/// Turns GCP's host and GPU rows into one row per offer, for `convert_row` to finish.
pub(super) fn combine(rows: Vec<SourceRow>, report: &mut CloudReport) -> Vec<SourceRow> {
    let (hosts, gpu_rows): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| !r.instance_type.is_empty());

    let mut gpus = Vec::new();
    for row in gpu_rows {
        if row.accelerator.starts_with("tpu-") {
            report.drop_row(DropReason::Tpu);
            continue;
        }
        match number(&row.count) {
            Ok(Some(count)) => gpus.push(Gpu {
                row,
                count,
                used: false,
            }),
            Ok(None) => report.drop_row(DropReason::NoAcceleratorCount),
            Err(reason) => report.drop_row(reason),
        }
    }
    // Owned keys and indices, so that `gpus` can be marked as used while the index is alive.
    let mut by_zone: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (i, gpu) in gpus.iter().enumerate() {
        by_zone
            .entry((gpu.row.region.clone(), gpu.row.zone.clone()))
            .or_default()
            .push(i);
    }

    let mut out = Vec::with_capacity(hosts.len() * 2);
    for host in hosts {
        let zone_gpus = by_zone
            .get(&(host.region.clone(), host.zone.clone()))
            .map_or(&[][..], Vec::as_slice);
        let family = host.instance_type.split('-').next().unwrap_or_default();
        if let Some((_, name, count)) = BUILT_IN.iter().find(|(t, _, _)| *t == host.instance_type) {
            let mut paired = false;
            for &i in zone_gpus {
                let gpu = &mut gpus[i];
                if gpu.row.accelerator == *name && gpu.count == *count {
                    gpu.used = true;
                    paired = true;
                    push_pair(&host, &gpu.row, report, &mut out);
                }
            }
            if !paired {
                report.drop_row(DropReason::UnpairedHost);
            }
        } else if GPU_FAMILIES.contains(&family) {
            report.drop_row(DropReason::UnmappedHost);
        } else if family == "n1" {
            let vcpus = host.vcpus.parse::<f64>().ok();
            for &i in zone_gpus {
                let gpu = &mut gpus[i];
                if !N1_GPUS.contains(&gpu.row.accelerator.as_str()) {
                    continue;
                }
                gpu.used = true;
                let limit = N1_LIMITS
                    .iter()
                    .find(|(n, c, _)| *n == gpu.row.accelerator && *c == gpu.count)
                    .map(|l| l.2);
                match (vcpus, limit) {
                    (Some(v), Some(limit)) if v <= limit => push_pair(&host, &gpu.row, report, &mut out),
                    _ => report.drop_row(DropReason::OverVcpuLimit),
                }
            }
            out.push(host);
        } else {
            out.push(host);
        }
    }
    report.drop_rows(DropReason::UnpairedGpu, gpus.iter().filter(|g| !g.used).count());
    out
}

/// Adds a host with its GPUs: host price plus GPU price, on-demand and spot separately.
fn push_pair(host: &SourceRow, gpu: &SourceRow, report: &mut CloudReport, out: &mut Vec<SourceRow>) {
    let sums = add_prices(&host.price, &gpu.price).and_then(|p| Ok((p, add_prices(&host.spot, &gpu.spot)?)));
    match sums {
        Ok((price, spot)) => out.push(SourceRow {
            accelerator: gpu.accelerator.clone(),
            count: gpu.count.clone(),
            price,
            spot,
            ..host.clone()
        }),
        Err(reason) => report.drop_row(reason),
    }
}
