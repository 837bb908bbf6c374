//! Time and invented identifiers.
//!
//! State changes are scheduled on `tokio::time::Instant`, so a test that pauses tokio's clock
//! moves the fake's operations along with it. Timestamps shown to clients are that instant mapped
//! onto the wall clock at start-up, printed as Compute does (RFC 3339, milliseconds, Pacific
//! offset; a fixed `-08:00` here, which keeps clients honest about parsing offsets).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base_instant: Instant,
    base_system: SystemTime,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            base_instant: Instant::now(),
            base_system: SystemTime::now(),
        }
    }

    /// Seconds since the Unix epoch at `at`.
    pub(crate) fn unix(&self, at: Instant) -> Duration {
        let since_base = at.saturating_duration_since(self.base_instant);
        (self.base_system + since_base)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }

    /// `2026-11-28T01:17:00.123-08:00`.
    pub(crate) fn rfc3339(&self, at: Instant) -> String {
        rfc3339_pacific(self.unix(at))
    }
}

fn rfc3339_pacific(since_epoch: Duration) -> String {
    const OFFSET_SECS: u64 = 8 * 3600;
    let secs = since_epoch.as_secs().saturating_sub(OFFSET_SECS);
    let millis = since_epoch.subsec_millis();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}-08:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`,
/// restricted to dates after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A deterministic sequence of well-mixed 64-bit numbers (splitmix64), seeded per server so
/// that ids, tokens and addresses differ between fakes in one process.
#[derive(Debug)]
pub(crate) struct Ids {
    state: u64,
}

impl Ids {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A resource id as Compute shows them: a large decimal `uint64`.
    pub(crate) fn resource_id(&mut self) -> u64 {
        // Real ids are 18-19 digits; keep them above 10^18 so none look like small numbers.
        1_000_000_000_000_000_000 + self.next() % 8_000_000_000_000_000_000
    }

    /// `operation-1732785420123-62a1f0c3d4e5b-8f2c1a3d-5e6f7a8b`, the shape of real names.
    pub(crate) fn operation_name(&mut self, unix: Duration) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "operation-{}-{:013x}-{:08x}-{:08x}",
            unix.as_millis(),
            a >> 12,
            b >> 32,
            b & 0xFFFF_FFFF
        )
    }

    /// An opaque bearer token in the `ya29.` style of Google's access tokens.
    pub(crate) fn token(&mut self) -> String {
        format!("ya29.fake-{:016x}{:016x}{:016x}", self.next(), self.next(), self.next())
    }

    /// An 8-byte fingerprint, base64 as Compute sends them.
    pub(crate) fn fingerprint(&mut self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.next().to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_pacific_timestamps() {
        // 2026-11-28T09:17:00.123Z
        let t = Duration::from_millis(1_795_857_420_123);
        assert_eq!(rfc3339_pacific(t), "2026-11-28T01:17:00.123-08:00");
        assert_eq!(
            rfc3339_pacific(Duration::from_hours(264_384)),
            "2000-02-28T16:00:00.000-08:00"
        );
    }

    #[test]
    fn ids_look_like_compute_ids() {
        let mut ids = Ids::new(7);
        let id = ids.resource_id();
        assert!(id.to_string().len() >= 19);
        let name = ids.operation_name(Duration::from_millis(1_795_857_420_123));
        assert!(name.starts_with("operation-1795857420123-"), "{name}");
        assert_eq!(name.split('-').count(), 5);
    }
}
