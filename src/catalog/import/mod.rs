//! Converts SkyPilot's v8 price catalogs into broker's catalog schema (`catalogs/README.md`).
//!
//! SkyPilot's files differ from cloud to cloud: column order, `0.00` meaning "no spot offer",
//! regions holding commas, and GCP pricing GPUs apart from the VMs they attach to. All of that is
//! settled here, once, at import time, so that the loader can split lines on commas and start-up
//! stays fast.

mod gcp;

use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::HEADER;

/// Snapshot date and provenance of the catalogs converted for the embedded copy.
///
/// SkyPilot's files carry no date, so this records what is known about the copy in
/// `shared/skypilot-catalog` (see its `SOURCE.md`). A cloud not listed gets an empty date, which
/// the loader shows as "undated" rather than pretending to know.
const SNAPSHOTS: &[(&str, &str, &str)] = &[
    (
        "aws",
        "2026-09-23",
        "skypilot-catalog v8 (official; accelerator families plus c6i/m6i/r6i)",
    ),
    ("azure", "2026-05-20", "skypilot-catalog v8 via anycloud 62ff0a98"),
    ("gcp", "2026-05-20", "skypilot-catalog v8 via anycloud 62ff0a98"),
    ("hyperbolic", "2026-09-23", "skypilot-catalog v8 (official)"),
    ("lambda", "2026-05-20", "skypilot-catalog v8 via anycloud 62ff0a98"),
    ("mithril", "2026-09-23", "skypilot-catalog v8 (official)"),
    ("nebius", "2026-09-23", "skypilot-catalog v8 (official)"),
    ("primeintellect", "2026-09-23", "skypilot-catalog v8 (official)"),
    ("seeweb", "2026-09-23", "skypilot-catalog v8 (official)"),
    ("shadeform", "2026-09-23", "skypilot-catalog v8 (official)"),
    ("vast", "2026-05-20", "skypilot-catalog v8 via anycloud 62ff0a98"),
    ("verda", "2026-09-23", "skypilot-catalog v8 (official)"),
    ("yotta", "2026-09-23", "skypilot-catalog v8 (official)"),
];

/// Why the import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The source directory holds no `<cloud>/vms.csv` at all.
    #[error("no `<cloud>/vms.csv` under `{}`; expected a SkyPilot v8 catalog directory", dir.display())]
    NoTables {
        /// The directory given.
        dir: PathBuf,
    },
    /// A file or directory could not be read or written.
    #[error("cannot access `{}`", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A source file is not valid CSV.
    #[error("`{}` line {line}: malformed CSV", file.display())]
    Csv {
        /// The source `vms.csv`.
        file: PathBuf,
        /// 1-based line.
        line: u64,
        /// What the CSV reader said.
        source: csv::Error,
    },
    /// A source file lacks a column the conversion needs.
    #[error("`{}` has no `{column}` column", file.display())]
    MissingColumn {
        /// The source `vms.csv`.
        file: PathBuf,
        /// The column's SkyPilot name.
        column: &'static str,
    },
}

/// Why a source row (or, for GCP, a host and GPU pairing) did not become a catalog row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Neither an on-demand nor a spot price (after a spot price of 0 counts as none).
    NoPrice,
    /// Empty region, or nothing left of it after sanitising.
    NoRegion,
    /// Empty instance type on a cloud where every row is a VM.
    NoInstanceType,
    /// A number column holds something that is not a non-negative number.
    BadNumber,
    /// An accelerator name with an empty or zero count.
    NoAcceleratorCount,
    /// The same row again.
    Duplicate,
    /// GCP TPU; broker does not support TPUs yet.
    Tpu,
    /// GCP accelerator-optimised host with no GPU row for it in its zone.
    UnpairedHost,
    /// GCP host of an accelerator-optimised family that SkyPilot's map does not name.
    UnmappedHost,
    /// GCP GPU row that no host in its zone can carry.
    UnpairedGpu,
    /// GCP N1 host and GPU pairing over GCP's vCPU limit for that GPU count.
    OverVcpuLimit,
}

impl DropReason {
    fn describe(self) -> &'static str {
        match self {
            Self::NoPrice => "no on-demand or spot price",
            Self::NoRegion => "empty region",
            Self::NoInstanceType => "empty instance type",
            Self::BadNumber => "unparseable number",
            Self::NoAcceleratorCount => "accelerator without a count",
            Self::Duplicate => "exact duplicate",
            Self::Tpu => "TPU (not supported)",
            Self::UnpairedHost => "GPU host with no GPU row in its zone",
            Self::UnmappedHost => "GPU host type not in SkyPilot's map",
            Self::UnpairedGpu => "GPU row with no host in its zone",
            Self::OverVcpuLimit => "n1 + GPU pairing over the vCPU limit",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// What happened to one cloud's table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudReport {
    /// The cloud's folder name (`aws`, `gcp`, ...).
    pub cloud: String,
    /// Data rows in the source `vms.csv`.
    pub rows_read: usize,
    /// Rows in the converted `vms.csv`. For GCP this differs from read minus dropped: a host
    /// and a GPU row make one row, and an n1 host makes one row per GPU it can carry.
    pub rows_written: usize,
    /// Dropped rows (for GCP, also pairings) by reason.
    pub dropped: BTreeMap<DropReason, usize>,
}

impl CloudReport {
    /// All dropped rows and pairings.
    #[must_use]
    pub fn rows_dropped(&self) -> usize {
        self.dropped.values().sum()
    }

    fn drop_row(&mut self, reason: DropReason) {
        self.drop_rows(reason, 1);
    }

    fn drop_rows(&mut self, reason: DropReason, n: usize) {
        if n > 0 {
            *self.dropped.entry(reason).or_default() += n;
        }
    }
}

/// The outcome of [`import_skypilot`], one entry per cloud in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Per-cloud results.
    pub clouds: Vec<CloudReport>,
}

impl ImportReport {
    /// Rows written over all clouds.
    #[must_use]
    pub fn rows_written(&self) -> usize {
        self.clouds.iter().map(|c| c.rows_written).sum()
    }
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<16} {:>8} {:>8} {:>8}", "cloud", "read", "written", "dropped")?;
        for c in &self.clouds {
            writeln!(
                f,
                "{:<16} {:>8} {:>8} {:>8}",
                c.cloud,
                c.rows_read,
                c.rows_written,
                c.rows_dropped()
            )?;
            for (reason, n) in &c.dropped {
                writeln!(f, "{:<16} {:>8} {:>8} {n:>8}  {reason}", "", "", "")?;
            }
        }
        let read: usize = self.clouds.iter().map(|c| c.rows_read).sum();
        let dropped: usize = self.clouds.iter().map(CloudReport::rows_dropped).sum();
        write!(f, "{:<16} {read:>8} {:>8} {dropped:>8}", "total", self.rows_written())
    }
}

/// Converts every `<src>/<cloud>/vms.csv` into `<dst>/<cloud>/vms.csv` and writes
/// `<dst>/index.csv`.
///
/// Folders without a `vms.csv` (such as `common`) are skipped. Existing files in `dst` are
/// replaced; other files are left alone.
///
/// # Errors
///
/// Fails on the first unreadable directory or file, malformed CSV, source file lacking a needed
/// column, or unwritable output; tables already written by then stay written.
///
/// `snapshot` dates every table (`YYYY-MM-DD`, the day the source was fetched); without it the
/// dates known for the copy shipped with broker are used.
pub fn import_skypilot(src: &Path, dst: &Path, snapshot: Option<&str>) -> Result<ImportReport, ImportError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { path, source }
    };
    let mut clouds = Vec::new();
    for entry in fs::read_dir(src).map_err(io_err(src))? {
        let entry = entry.map_err(io_err(src))?;
        let file = entry.path().join("vms.csv");
        if file.is_file() {
            clouds.push((entry.file_name().to_string_lossy().into_owned(), file));
        }
    }
    clouds.sort();
    if clouds.is_empty() {
        return Err(ImportError::NoTables { dir: src.to_path_buf() });
    }

    let mut report = ImportReport::default();
    let mut index = String::from("cloud,snapshot_date,source\n");
    for (cloud, file) in clouds {
        let (text, cloud_report) = convert_file(&cloud, &file)?;
        let dir = dst.join(&cloud);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        write_replacing(&dir.join("vms.csv"), &text)?;
        let (date, source) = SNAPSHOTS
            .iter()
            .find(|(name, _, _)| *name == cloud)
            .map_or(("", "skypilot-catalog v8"), |(_, date, source)| (*date, *source));
        let date = snapshot.unwrap_or(date);
        // Writing to a String cannot fail.
        let _ = writeln!(index, "{},{date},{source}", token(&cloud));
        report.clouds.push(cloud_report);
    }
    fs::create_dir_all(dst).map_err(io_err(dst))?;
    write_replacing(&dst.join("index.csv"), &index)?;
    Ok(report)
}

/// Writes through a temporary file so a reader never sees half a catalog.
fn write_replacing(path: &Path, text: &str) -> Result<(), ImportError> {
    let tmp = path.with_extension("csv.tmp");
    fs::write(&tmp, text).map_err(|source| ImportError::Io {
        path: tmp.clone(),
        source,
    })?;
    fs::rename(&tmp, path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// One source row, by meaning rather than position; fields are trimmed but otherwise raw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct SourceRow {
    instance_type: String,
    accelerator: String,
    count: String,
    vcpus: String,
    memory: String,
    price: String,
    spot: String,
    region: String,
    zone: String,
    arch: String,
}

/// One row of broker's schema, every field already safe to write unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    instance_type: String,
    accelerator: String,
    count: String,
    vcpus: String,
    memory: String,
    price: String,
    spot: String,
    region: String,
    zone: String,
    arch: &'static str,
}

impl Row {
    fn line(&self) -> String {
        [
            self.instance_type.as_str(),
            &self.accelerator,
            &self.count,
            &self.vcpus,
            &self.memory,
            &self.price,
            &self.spot,
            &self.region,
            &self.zone,
            self.arch,
        ]
        .join(",")
    }
}

/// Reads, converts, sorts and renders one cloud's table.
fn convert_file(cloud: &str, file: &Path) -> Result<(String, CloudReport), ImportError> {
    let source = read_source(file)?;
    let mut report = CloudReport {
        cloud: cloud.to_owned(),
        rows_read: source.len(),
        ..CloudReport::default()
    };

    // Repeated source rows would otherwise multiply through GCP's pairing; drop them up front.
    let mut seen = HashSet::new();
    let mut unique = Vec::with_capacity(source.len());
    for row in source {
        if seen.insert(row.clone()) {
            unique.push(row);
        } else {
            report.drop_row(DropReason::Duplicate);
        }
    }

    let candidates = if cloud == "gcp" {
        gcp::combine(unique, &mut report)
    } else {
        unique
    };
    let mut rows = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        if cloud != "gcp" && candidate.instance_type.is_empty() {
            report.drop_row(DropReason::NoInstanceType);
            continue;
        }
        match convert_row(cloud, &candidate) {
            Ok(row) => rows.push(row),
            Err(reason) => report.drop_row(reason),
        }
    }

    let mut keyed: Vec<(f64, String, Row)> = rows
        .into_iter()
        .map(|row| (row.count.parse().unwrap_or(0.0), row.line(), row))
        .collect();
    keyed.sort_by(|(count_a, line_a, a), (count_b, line_b, b)| {
        a.accelerator
            .cmp(&b.accelerator)
            .then(count_a.total_cmp(count_b))
            .then_with(|| a.instance_type.cmp(&b.instance_type))
            .then_with(|| a.region.cmp(&b.region))
            .then_with(|| a.zone.cmp(&b.zone))
            .then_with(|| line_a.cmp(line_b))
    });
    let mut text = String::with_capacity(HEADER.len() + 1 + keyed.len() * 64);
    text.push_str(HEADER);
    text.push('\n');
    let mut previous: Option<String> = None;
    for (_, line, _) in keyed {
        if previous.as_deref() == Some(line.as_str()) {
            report.drop_row(DropReason::Duplicate);
            continue;
        }
        text.push_str(&line);
        text.push('\n');
        report.rows_written += 1;
        previous = Some(line);
    }
    Ok((text, report))
}

/// The SkyPilot columns read, by name; the rest (`GpuInfo`, `Generation`, ...) are not needed.
const REQUIRED: [&str; 8] = [
    "InstanceType",
    "AcceleratorName",
    "AcceleratorCount",
    "vCPUs",
    "MemoryGiB",
    "Price",
    "SpotPrice",
    "Region",
];

fn read_source(file: &Path) -> Result<Vec<SourceRow>, ImportError> {
    let csv_err = |source: csv::Error, fallback: u64| ImportError::Csv {
        file: file.to_path_buf(),
        line: source.position().map_or(fallback, csv::Position::line),
        source,
    };
    let handle = fs::File::open(file).map_err(|source| ImportError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(io::BufReader::new(handle));
    let headers = reader.headers().map_err(|e| csv_err(e, 1))?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let mut required = [0; REQUIRED.len()];
    for (slot, name) in required.iter_mut().zip(REQUIRED) {
        *slot = column(name).ok_or_else(|| ImportError::MissingColumn {
            file: file.to_path_buf(),
            column: name,
        })?;
    }
    let [instance_type, accelerator, count, vcpus, memory, price, spot, region] = required;
    let zone = column("AvailabilityZone");
    let arch = column("Arch");

    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_err(e, line)),
        }
        let get = |i: usize| record.get(i).unwrap_or_default().to_owned();
        rows.push(SourceRow {
            instance_type: get(instance_type),
            accelerator: get(accelerator),
            count: get(count),
            vcpus: get(vcpus),
            memory: get(memory),
            price: get(price),
            spot: get(spot),
            region: get(region),
            zone: zone.map(get).unwrap_or_default(),
            arch: arch.map(get).unwrap_or_default(),
        });
    }
    Ok(rows)
}

/// Applies the schema's rules to one row (see `catalogs/README.md`).
fn convert_row(cloud: &str, source: &SourceRow) -> Result<Row, DropReason> {
    let region = token(&source.region);
    if region.is_empty() {
        return Err(DropReason::NoRegion);
    }
    let accelerator = plain(&source.accelerator);
    let count = if accelerator.is_empty() {
        String::new()
    } else {
        match number(&source.count)? {
            Some(count) if count != "0" => count,
            _ => return Err(DropReason::NoAcceleratorCount),
        }
    };
    let price = number(&source.price)?.unwrap_or_default();
    // Vast writes `0.00` for "no spot offer"; no cloud sells spot capacity for free.
    let spot = number(&source.spot)?
        .filter(|s| s.parse::<f64>().is_ok_and(|v| v != 0.0))
        .unwrap_or_default();
    if price.is_empty() && spot.is_empty() {
        return Err(DropReason::NoPrice);
    }
    let arch = match source.arch.to_ascii_lowercase().as_str() {
        "arm64" | "aarch64" => "arm64",
        "x86_64" | "amd64" => "x86_64",
        _ => infer_arch(cloud, &source.instance_type, &accelerator),
    };
    Ok(Row {
        instance_type: plain(&source.instance_type),
        accelerator,
        count,
        vcpus: number(&source.vcpus)?.unwrap_or_default(),
        memory: number(&source.memory)?.unwrap_or_default(),
        price,
        spot,
        region,
        zone: token(&source.zone),
        arch,
    })
}

/// Canonical text of a non-negative number: a source's own digits, minus a fraction of only
/// zeros (`8.0` becomes `8`), so that prices are never re-rounded.
fn number(text: &str) -> Result<Option<String>, DropReason> {
    if text.is_empty() {
        return Ok(None);
    }
    let value: f64 = text.parse().map_err(|_| DropReason::BadNumber)?;
    if !value.is_finite() || value < 0.0 {
        return Err(DropReason::BadNumber);
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        // Exponents, signs or `.5`: rare enough that going through f64 loses nothing that matters.
        return Ok(Some(value.to_string()));
    }
    if fraction.bytes().all(|b| b == b'0') {
        return Ok(Some(whole.to_owned()));
    }
    Ok(Some(text.to_owned()))
}

/// Region and zone values: only `[A-Za-z0-9._-]`. Comma lists such as Vast's
/// `"British Columbia, CA, NA"` become `British-Columbia-CA-NA`.
fn token(text: &str) -> String {
    let joined = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Instance type and accelerator names: anything goes except what would break comma splitting.
fn plain(text: &str) -> String {
    text.chars()
        .map(|c| if matches!(c, ',' | '"' | '\n' | '\r') { '-' } else { c })
        .collect()
}

/// CPU architecture for clouds whose catalog has no `Arch` column.
fn infer_arch(cloud: &str, instance_type: &str, accelerator: &str) -> &'static str {
    // Grace Hopper pairs the GPU with an Arm CPU wherever it is sold.
    let arm = accelerator == "GH200"
        || match cloud {
            "gcp" => instance_type.starts_with("t2a-") || instance_type.starts_with("c4a-"),
            "azure" => azure_is_arm(instance_type),
            _ => false,
        };
    if arm { "arm64" } else { "x86_64" }
}

/// Azure marks Arm CPUs with the lower-case `p` feature letter after the vCPU count:
/// `Standard_D2ps_v5`, `Standard_E4pds_v5`, `Standard_B2pls_v2`.
fn azure_is_arm(instance_type: &str) -> bool {
    let size = instance_type.strip_prefix("Standard_").unwrap_or(instance_type);
    let size = size.split('_').next().unwrap_or_default();
    let features = size.trim_start_matches(|c: char| c.is_ascii_uppercase());
    let features = features.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-');
    !features.is_empty() && features.bytes().all(|b| b.is_ascii_lowercase()) && features.contains('p')
}

/// Formats the sum of two prices, rounded to 5 decimals with trailing zeros trimmed.
fn add_prices(a: &str, b: &str) -> Result<String, DropReason> {
    if a.is_empty() || b.is_empty() {
        return Ok(String::new());
    }
    let parse = |s: &str| s.parse::<f64>().map_err(|_| DropReason::BadNumber);
    let text = format!("{:.5}", parse(a)? + parse(b)?);
    Ok(text.trim_end_matches('0').trim_end_matches('.').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GCP_HEADER: &str =
        "InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice";

    /// Imports `files` (cloud, `vms.csv` text) and returns the report and the output directory.
    fn import(files: &[(&str, &str)]) -> (tempfile::TempDir, ImportReport) {
        let dir = tempfile::tempdir().unwrap();
        for (cloud, text) in files {
            let folder = dir.path().join("src").join(cloud);
            fs::create_dir_all(&folder).unwrap();
            fs::write(folder.join("vms.csv"), text).unwrap();
        }
        let report = import_skypilot(&dir.path().join("src"), &dir.path().join("dst"), None).unwrap();
        (dir, report)
    }

    /// The data lines of one converted table, after checking its header.
    fn rows(dir: &tempfile::TempDir, cloud: &str) -> Vec<String> {
        let text = fs::read_to_string(dir.path().join("dst").join(cloud).join("vms.csv")).unwrap();
        let mut lines = text.lines().map(str::to_owned);
        assert_eq!(lines.next().as_deref(), Some(HEADER));
        lines.collect()
    }

    fn dropped(report: &ImportReport, reason: DropReason) -> usize {
        report.clouds[0].dropped.get(&reason).copied().unwrap_or(0)
    }

    #[test]
    fn gcp_n1_host_pairs_with_a_t4_in_the_same_zone_only() {
        let text = format!(
            "{GCP_HEADER}\n\
             n1-standard-8,8.0,30.0,,,,us-central1,us-central1-a,0.38,0.13954\n\
             n1-standard-8,8.0,30.0,,,,us-central1,us-central1-b,0.40,0.15\n\
             ,,,T4,1,\"{{'Gpus': [{{'MemoryInfo': {{'SizeInMiB': 16384}}}}]}}\",us-central1,us-central1-a,0.35,0.1654\n"
        );
        let (dir, report) = import(&[("gcp", &text)]);
        assert_eq!(
            rows(&dir, "gcp"),
            [
                "n1-standard-8,,,8,30,0.38,0.13954,us-central1,us-central1-a,x86_64",
                "n1-standard-8,,,8,30,0.40,0.15,us-central1,us-central1-b,x86_64",
                "n1-standard-8,T4,1,8,30,0.73,0.30494,us-central1,us-central1-a,x86_64",
            ]
        );
        assert_eq!((report.clouds[0].rows_read, report.clouds[0].rows_written), (3, 3));
        assert_eq!(report.clouds[0].rows_dropped(), 0);
    }

    #[test]
    fn gcp_a2_price_is_host_plus_built_in_gpus() {
        let text = format!(
            "{GCP_HEADER}\n\
             a2-highgpu-1g,12.0,85.0,,,,us-central1,us-central1-a,0.73948,0.36975\n\
             a2-highgpu-1g,12.0,85.0,,,,us-central1,us-central1-b,0.73948,0.36975\n\
             a3-ultragpu-8g-nolssd,224.0,2952.0,,,,us-central1,us-central1-a,12.266,5.0093\n\
             ,,,A100,1,,us-central1,us-central1-a,2.93391,\n\
             ,,,A100,2,,us-central1,us-central1-a,5.86782,2.8682\n\
             ,,,tpu-v5p-8,1,,us-central1,us-central1-a,4.2,2.1\n"
        );
        let (dir, report) = import(&[("gcp", &text)]);
        // The GPU half has no spot price, so the pair has none either.
        assert_eq!(
            rows(&dir, "gcp"),
            ["a2-highgpu-1g,A100,1,12,85,3.67339,,us-central1,us-central1-a,x86_64"]
        );
        assert_eq!(dropped(&report, DropReason::UnpairedHost), 1);
        assert_eq!(dropped(&report, DropReason::UnmappedHost), 1);
        assert_eq!(dropped(&report, DropReason::UnpairedGpu), 1);
        assert_eq!(dropped(&report, DropReason::Tpu), 1);
    }

    #[test]
    fn gcp_n1_pairs_over_the_vcpu_limit_are_left_out() {
        let text = format!(
            "{GCP_HEADER}\n\
             n1-standard-16,16.0,60.0,,,,us-west1,us-west1-b,0.76,0.2\n\
             ,,,V100,1,,us-west1,us-west1-b,2.48,0.99\n\
             ,,,V100,2,,us-west1,us-west1-b,4.96,1.98\n\
             ,,,L4,1,,us-west1,us-west1-b,0.56,0.2\n"
        );
        let (dir, report) = import(&[("gcp", &text)]);
        assert_eq!(
            rows(&dir, "gcp"),
            [
                "n1-standard-16,,,16,60,0.76,0.2,us-west1,us-west1-b,x86_64",
                "n1-standard-16,V100,2,16,60,5.72,2.18,us-west1,us-west1-b,x86_64",
            ]
        );
        assert_eq!(dropped(&report, DropReason::OverVcpuLimit), 1);
        // L4 only comes built into g2 hosts, so an n1 does not take it.
        assert_eq!(dropped(&report, DropReason::UnpairedGpu), 1);
    }

    #[test]
    fn gcp_arm_families_are_arm64() {
        let text = format!("{GCP_HEADER}\nt2a-standard-1,1.0,4.0,,,,us-central1,us-central1-a,0.0385,0.0116\n");
        let (dir, _) = import(&[("gcp", &text)]);
        assert_eq!(
            rows(&dir, "gcp"),
            ["t2a-standard-1,,,1,4,0.0385,0.0116,us-central1,us-central1-a,arm64"]
        );
    }

    #[test]
    fn vast_regions_become_tokens_and_zero_spot_means_none() {
        let text = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region\n\
             1x-RTX_5090-32-65536,RTX5090,1,32,64.0,\"{'Gpus': [{'Name': 'RTX5090', 'Count': 1}]}\",0.44,0.00,\"Denmark, DK, EU\"\n\
             1x-RTX_5090-32-65536,RTX5090,1,32,64.0,,0.45,0.00,\", CA, NA\"\n\
             1x-RTX_5090-32-65536,RTX5090,1,32,64.0,,0.46,0.00,\"British Columbia, CA, NA\"\n";
        let (dir, _) = import(&[("vast", text)]);
        assert_eq!(
            rows(&dir, "vast"),
            [
                "1x-RTX_5090-32-65536,RTX5090,1,32,64,0.46,,British-Columbia-CA-NA,,x86_64",
                "1x-RTX_5090-32-65536,RTX5090,1,32,64,0.45,,CA-NA,,x86_64",
                "1x-RTX_5090-32-65536,RTX5090,1,32,64,0.44,,Denmark-DK-EU,,x86_64",
            ]
        );
        assert_eq!(token("São Paulo / BR"), "S-o-Paulo---BR");
    }

    #[test]
    fn rows_without_price_or_region_are_dropped_and_counted() {
        let text = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,GpuInfo,SpotPrice\r\n\
             a,,,1,1.0,0.019,it-fr2,,\r\n\
             b,,,1,1.0,,it-fr2,,\r\n\
             c,L4,1,8,32,1.5,,,\r\n\
             d,,,1,1.0,,it-fr2,,0.01\r\n\
             a,,,1,1.0,0.019,it-fr2,,\r\n";
        let (dir, report) = import(&[("seeweb", text)]);
        assert_eq!(
            rows(&dir, "seeweb"),
            ["a,,,1,1,0.019,,it-fr2,,x86_64", "d,,,1,1,,0.01,it-fr2,,x86_64"]
        );
        let cloud = &report.clouds[0];
        assert_eq!((cloud.rows_read, cloud.rows_written, cloud.rows_dropped()), (5, 2, 3));
        assert_eq!(dropped(&report, DropReason::NoPrice), 1);
        assert_eq!(dropped(&report, DropReason::NoRegion), 1);
        assert_eq!(dropped(&report, DropReason::Duplicate), 1);
    }

    #[test]
    fn columns_are_read_by_name() {
        let one = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone,Arch\n\
             g6f.large,L4,0.125,2.0,8.0,,0.2,0.08,us-east-1,use1-az1,x86_64\n\
             g5g.xlarge,T4G,1.0,4.0,8.0,,0.42,,us-east-1,use1-az2,arm64\n";
        let two = "Arch,Region,SpotPrice,Price,AvailabilityZone,MemoryGiB,vCPUs,AcceleratorCount,AcceleratorName,InstanceType\n\
             arm64,us-east-1,,0.42,use1-az2,8.0,4.0,1.0,T4G,g5g.xlarge\n\
             x86_64,us-east-1,0.08,0.2,use1-az1,8.0,2.0,0.125,L4,g6f.large\n";
        let (dir, _) = import(&[("aws", one), ("other", two)]);
        let expected = [
            "g6f.large,L4,0.125,2,8,0.2,0.08,us-east-1,use1-az1,x86_64",
            "g5g.xlarge,T4G,1,4,8,0.42,,us-east-1,use1-az2,arm64",
        ];
        assert_eq!(rows(&dir, "aws"), expected);
        assert_eq!(rows(&dir, "other"), expected);
    }

    #[test]
    fn index_lists_every_cloud_with_its_snapshot() {
        let text = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,GpuInfo,SpotPrice\n\
                    gpu_1x_gh200,GH200,1.0,64.0,432.0,2.29,us-east-3,,\n";
        let (dir, _) = import(&[("lambda", text), ("newcloud", text)]);
        assert_eq!(
            rows(&dir, "lambda"),
            ["gpu_1x_gh200,GH200,1,64,432,2.29,,us-east-3,,arm64"]
        );
        let index = fs::read_to_string(dir.path().join("dst/index.csv")).unwrap();
        assert_eq!(
            index,
            "cloud,snapshot_date,source\n\
             lambda,2026-05-20,skypilot-catalog v8 via anycloud 62ff0a98\n\
             newcloud,,skypilot-catalog v8\n"
        );
    }

    #[test]
    fn missing_column_names_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("src/aws")).unwrap();
        fs::write(
            dir.path().join("src/aws/vms.csv"),
            "InstanceType,Price\nm6i.large,0.1\n",
        )
        .unwrap();
        let err = import_skypilot(&dir.path().join("src"), &dir.path().join("dst"), None).unwrap_err();
        assert!(
            matches!(
                err,
                ImportError::MissingColumn {
                    column: "AcceleratorName",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().ends_with("has no `AcceleratorName` column"));
    }

    #[test]
    fn malformed_csv_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("src/aws")).unwrap();
        let text = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region\n\
                    m6i.large,,,2,8,0.1,,us-east-1\n\
                    m6i.xlarge,,,4\n";
        fs::write(dir.path().join("src/aws/vms.csv"), text).unwrap();
        let err = import_skypilot(&dir.path().join("src"), &dir.path().join("dst"), None).unwrap_err();
        assert!(matches!(err, ImportError::Csv { line: 3, .. }), "{err:?}");
    }

    #[test]
    fn numbers_keep_their_digits_but_lose_a_zero_fraction() {
        assert_eq!(number("8.0"), Ok(Some("8".to_owned())));
        assert_eq!(number("0.125"), Ok(Some("0.125".to_owned())));
        assert_eq!(number("0.282500"), Ok(Some("0.282500".to_owned())));
        assert_eq!(number("0.00"), Ok(Some("0".to_owned())));
        assert_eq!(number(""), Ok(None));
        assert_eq!(number("-1"), Err(DropReason::BadNumber));
        assert_eq!(number("n/a"), Err(DropReason::BadNumber));
        assert_eq!(add_prices("0.38", "0.35"), Ok("0.73".to_owned()));
        assert_eq!(add_prices("0.0", "64.44"), Ok("64.44".to_owned()));
        assert_eq!(add_prices("0.1", ""), Ok(String::new()));
    }

    #[test]
    fn azure_arm_sizes_have_the_p_feature_letter() {
        for arm in [
            "Standard_D2ps_v5",
            "Standard_E4pds_v5",
            "Standard_D16plds_v6",
            "Standard_B2pls_v2",
        ] {
            assert!(azure_is_arm(arm), "{arm}");
        }
        for x86 in [
            "Standard_D2s_v5",
            "Standard_NP10s",
            "Standard_HB120-16rs_v3",
            "Standard_NC24ads_A100_v4",
        ] {
            assert!(!azure_is_arm(x86), "{x86}");
        }
    }

    #[test]
    fn report_shows_counts_and_reasons() {
        let text = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,GpuInfo,SpotPrice\n\
                    a,,,1,1,0.1,r1,,\n\
                    b,,,1,1,,r1,,\n";
        let (_dir, report) = import(&[("seeweb", text)]);
        let shown = report.to_string();
        assert!(shown.contains("no on-demand or spot price"), "{shown}");
        assert!(
            shown
                .lines()
                .last()
                .is_some_and(|l| l.split_whitespace().eq(["total", "2", "1", "1"])),
            "{shown}"
        );
    }
}
