//! Price catalogs: every cloud's offers, from the tables embedded in the binary or from a
//! user's newer copy under `$BROKER_HOME/catalogs/`.

mod embedded;
pub mod import;
mod table;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use broker_provider::{Cloud, Offer};

use crate::date::Date;
pub use table::HEADER;

/// A catalog that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A file could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A row breaks the schema.
    #[error("{file}:{line}: {message}")]
    Format {
        /// The file (or `embedded catalogs/<cloud>/vms.csv`).
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Where one cloud's table came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Shipped inside the binary.
    Embedded,
    /// A user's file that overrides the shipped one.
    User(PathBuf),
    /// Computed on this machine (the Docker cloud's sizes).
    Host,
}

/// Facts about one cloud's table, for the age line under every price table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// The cloud.
    pub cloud: Cloud,
    /// The day its prices were taken, if known.
    pub snapshot: Option<Date>,
    /// Where it was read from.
    pub origin: Origin,
    /// Offers it holds.
    pub rows: usize,
}

/// All offers of the clouds asked for.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Every offer, in table order.
    pub offers: Vec<Offer>,
    /// One entry per table read.
    pub tables: Vec<TableInfo>,
}

impl Catalog {
    /// Loads the tables of `clouds` (all clouds when empty): the embedded copy, unless
    /// `user_dir/<cloud>/vms.csv` exists, which then wins.
    pub fn load(user_dir: Option<&Path>, clouds: &[Cloud]) -> Result<Self, CatalogError> {
        Self::load_filtered(user_dir, clouds, None)
    }

    /// Like [`Catalog::load`], keeping only offers of one accelerator (name ignoring case).
    /// `TableInfo::rows` then counts the offers kept.
    pub fn load_accelerator(user_dir: Option<&Path>, clouds: &[Cloud], name: &str) -> Result<Self, CatalogError> {
        Self::load_filtered(user_dir, clouds, Some(name))
    }

    fn load_filtered(
        user_dir: Option<&Path>,
        clouds: &[Cloud],
        accelerator: Option<&str>,
    ) -> Result<Self, CatalogError> {
        let mut catalog = Self::default();
        let wanted = |cloud: &Cloud| clouds.is_empty() || clouds.contains(cloud);
        let embedded_index = parse_index(embedded::INDEX);
        let user_index = match user_dir.map(|d| d.join("index.csv")) {
            Some(path) if path.is_file() => parse_index(&fs_err::read_to_string(&path)?),
            _ => Vec::new(),
        };
        for &(cloud, text) in embedded::TABLES.iter().filter(|(c, _)| wanted(c)) {
            let user_file = user_dir.map(|d| d.join(cloud.as_str()).join("vms.csv"));
            let info = match user_file {
                Some(path) if path.is_file() => {
                    let text = fs_err::read_to_string(&path)?;
                    let source = path.display().to_string();
                    let rows = table::parse(
                        cloud,
                        &source,
                        &text,
                        |s| Cow::Owned(s.to_owned()),
                        accelerator,
                        &mut catalog.offers,
                    )?;
                    let snapshot = lookup(&user_index, cloud).or_else(|| modified_date(&path));
                    TableInfo {
                        cloud,
                        snapshot,
                        origin: Origin::User(path),
                        rows,
                    }
                }
                _ => {
                    let source = format!("embedded catalogs/{cloud}/vms.csv");
                    let rows = table::parse(cloud, &source, text, Cow::Borrowed, accelerator, &mut catalog.offers)?;
                    TableInfo {
                        cloud,
                        snapshot: lookup(&embedded_index, cloud),
                        origin: Origin::Embedded,
                        rows,
                    }
                }
            };
            catalog.tables.push(info);
        }
        Ok(catalog)
    }

    /// Adds offers that do not come from a table (the Docker cloud sizes its own from the host).
    pub fn extend(&mut self, info: TableInfo, offers: impl IntoIterator<Item = Offer>) {
        self.offers.extend(offers);
        self.tables.push(info);
    }

    /// The table of `cloud`, if loaded.
    pub fn table(&self, cloud: Cloud) -> Option<&TableInfo> {
        self.tables.iter().find(|t| t.cloud == cloud)
    }
}

fn parse_index(text: &str) -> Vec<(Cloud, Option<Date>)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split(',');
            let cloud = fields.next()?.parse().ok()?;
            Some((cloud, fields.next().and_then(Date::parse)))
        })
        .collect()
}

fn lookup(index: &[(Cloud, Option<Date>)], cloud: Cloud) -> Option<Date> {
    index.iter().find(|(c, _)| *c == cloud).and_then(|(_, d)| *d)
}

fn modified_date(path: &Path) -> Option<Date> {
    let modified = fs_err::metadata(path).ok()?.modified().ok()?;
    Some(Date::from_system_time(modified))
}

/// One line per table saying how old its prices are, for the foot of a price table.
pub fn age_line(tables: &[&TableInfo], today: Date) -> String {
    let parts: Vec<String> = tables
        .iter()
        .map(|t| {
            let origin = match &t.origin {
                Origin::Embedded => "",
                Origin::User(_) => ", user copy",
                Origin::Host => ", this host",
            };
            match t.snapshot {
                Some(date) => {
                    let days = date.days_until(today);
                    let plural = if days == 1 { "" } else { "s" };
                    format!("{} {date} ({days} day{plural} old{origin})", t.cloud)
                }
                None if origin.is_empty() => format!("{} (undated)", t.cloud),
                None => format!("{} (undated{origin})", t.cloud),
            }
        })
        .collect();
    format!("prices from catalogs of {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_tables_override_embedded_ones() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("lambda")).unwrap();
        fs_err::write(
            dir.path().join("lambda/vms.csv"),
            format!("{HEADER}\ngpu_1x_test,A100,1,30,200,0.5,,us-east-1,,x86_64\n"),
        )
        .unwrap();
        fs_err::write(
            dir.path().join("index.csv"),
            "cloud,snapshot_date,source\nlambda,2026-11-01,mine\n",
        )
        .unwrap();
        let catalog = Catalog::load(Some(dir.path()), &[Cloud::Lambda]).unwrap();
        assert_eq!(catalog.offers.len(), 1);
        assert_eq!(catalog.offers[0].instance_type, "gpu_1x_test");
        let table = catalog.table(Cloud::Lambda).unwrap();
        assert_eq!(table.snapshot, Date::parse("2026-11-01"));
        assert!(matches!(table.origin, Origin::User(_)));
    }

    #[test]
    fn a_broken_user_table_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("aws")).unwrap();
        fs_err::write(dir.path().join("aws/vms.csv"), "bad header\n").unwrap();
        let err = Catalog::load(Some(dir.path()), &[Cloud::Aws]).unwrap_err().to_string();
        assert!(err.contains("aws/vms.csv:1: expected header"), "{err}");
    }

    #[test]
    fn age_line_counts_days() {
        let info = TableInfo {
            cloud: Cloud::Gcp,
            snapshot: Date::parse("2026-05-20"),
            origin: Origin::Embedded,
            rows: 1,
        };
        let today = Date::parse("2026-11-29").unwrap();
        assert_eq!(
            age_line(&[&info], today),
            "prices from catalogs of gcp 2026-05-20 (193 days old)"
        );
    }
}
