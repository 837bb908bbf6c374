//! The `broker` binary driven as a user would: exit codes, stdout and stderr, snapshotted.
//!
//! Everything here runs on the embedded catalogs with an empty `$BROKER_HOME`, no network and
//! no cloud, so it is fast and needs nothing installed.

// Helpers outside `#[test]` functions fail the test on setup errors, which is what we want.
#![allow(clippy::unwrap_used)]

mod catalog;
mod common;
mod cost;
mod launch;
mod runs;
mod task_errors;
