//! Crash injection for the money-safety tests.
//!
//! Built with the `failpoints` feature, `BROKER_FAILPOINT=<name>` aborts the process at the named
//! point, exactly as `kill -9` would: no destructor, no teardown, no flush. The tests then check
//! that `broker status --refresh` and `broker down` still find and remove everything. Without
//! the feature every point compiles to nothing.
//!
//! Points, in launch order: `after-intent` (intent recorded, cloud not yet asked),
//! `after-create` (the cloud created nodes, their ids not yet recorded), `after-record` (ids
//! recorded), `after-ssh` (nodes reachable), `after-submit` (the job started on every node).

/// Aborts the process if `BROKER_FAILPOINT` names this point.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if std::env::var("BROKER_FAILPOINT").is_ok_and(|wanted| wanted == name) {
        std::process::abort();
    }
}

/// Does nothing: this build has no failpoints.
#[cfg(not(feature = "failpoints"))]
#[inline]
pub fn hit(_name: &str) {}
