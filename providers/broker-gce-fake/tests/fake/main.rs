//! The fake against its own contract, over HTTP on loopback: Compute shapes and timelines,
//! discovery-document validation, faults, OAuth and the metadata server.
//!
//! One test binary (one link step); each test starts its own fake on an ephemeral port.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod catalog;
mod compute;
mod faults;
mod metadata;
mod operations;
mod schema;
mod support;
