//! End-to-end runs of the `broker` binary on the local Docker cloud: real containers, real sshd,
//! loopback only. Each test has its own `$BROKER_HOME` and cluster name, and a guard that
//! removes the cluster's containers even when the test fails, so a failure never leaks nodes.
//!
//! Needs the Docker engine and the node image (`docker/node/build.sh`, run by `.ci/run`); a
//! missing part makes these tests fail with a hint, never skip.

// Helpers outside `#[test]` functions fail the test on setup errors, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "aws")]
mod aws;
mod burst;
mod check;
mod crash;
#[cfg(feature = "gcp")]
mod gcp;
mod harness;
mod image;
mod jobs;
mod ledger;
mod lifecycle;
mod mapped;
mod mounts;
mod power;
