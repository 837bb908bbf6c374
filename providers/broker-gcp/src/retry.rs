//! Jittered exponential backoff for calls that met a transient failure.
//!
//! A uniform pause between a quarter of the exponential cap and the cap spreads the retries of
//! many nodes launched at once (exactly when GCE answers 429), and unlike full jitter never
//! retries at once into the same overload. The randomness only needs
//! to differ between callers, not to be unpredictable, so a hash of the clock and a counter does
//! and no RNG crate is pulled in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// First cap; doubled per attempt up to [`MAX`].
const BASE: Duration = Duration::from_millis(250);
const MAX: Duration = Duration::from_secs(16);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The pause before retry number `attempt` (1 for the first retry).
pub(crate) fn delay(attempt: u32) -> Duration {
    let cap = BASE.saturating_mul(1 << attempt.saturating_sub(1).min(10)).min(MAX);
    let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(cap_ms / 4 + noise() % (cap_ms - cap_ms / 4).max(1))
}

/// splitmix64 of the clock and a process-wide counter.
fn noise() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()) ^ d.as_secs());
    let mut z = nanos ^ COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_capped_and_vary() {
        for attempt in 1..=20 {
            let d = delay(attempt);
            let cap = BASE.saturating_mul(1 << (attempt - 1).min(10)).min(MAX);
            assert!(
                d >= cap / 4 && d <= cap,
                "attempt {attempt}: {d:?} outside [{:?}, {cap:?}]",
                cap / 4
            );
        }
        let samples: std::collections::BTreeSet<Duration> = (0..20).map(|_| delay(6)).collect();
        assert!(samples.len() > 1, "jittered: {samples:?}");
    }
}
