//! Every environment variable broker reads, documented once.

use std::path::PathBuf;

/// Names of the environment variables broker reads.
#[derive(Debug)]
pub struct EnvVars;

impl EnvVars {
    /// Broker's home: state database, keys, user catalogs. Default `~/.broker`.
    pub const BROKER_HOME: &'static str = "BROKER_HOME";
    /// Set to any value to hide progress bars and spinners (tests set it).
    pub const BROKER_NO_PROGRESS: &'static str = "BROKER_NO_PROGRESS";
    /// Pretend today is this date (`YYYY-MM-DD`) when computing catalog ages; for reproducible
    /// snapshots in tests and docs.
    pub const BROKER_TODAY: &'static str = "BROKER_TODAY";
    /// Standard: disables colour.
    pub const NO_COLOR: &'static str = "NO_COLOR";
}

/// Broker's home directory: `$BROKER_HOME`, else `~/.broker`.
pub fn broker_home() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(EnvVars::BROKER_HOME).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::home_dir().map(|home| home.join(".broker"))
}

/// The user's catalog directory, which overrides the embedded catalogs cloud by cloud.
pub fn user_catalog_dir() -> Option<PathBuf> {
    broker_home().map(|home| home.join("catalogs"))
}

/// Today, or `$BROKER_TODAY` when set.
pub fn today() -> crate::date::Date {
    std::env::var(EnvVars::BROKER_TODAY)
        .ok()
        .and_then(|s| crate::date::Date::parse(&s))
        .unwrap_or_else(crate::date::Date::today)
}
