//! broker: run ML jobs on the cheapest GPU that fits, across clouds.
//!
//! The binary in `main.rs` only parses arguments and maps the outcome to an exit code; all
//! behaviour lives here so tests and benchmarks can drive it in-process.

pub mod catalog;
pub mod cli;
pub mod commands;
pub mod config;
pub mod date;
pub mod diagnostics;
pub mod duration;
pub mod env;
pub mod failpoint;
pub mod format;
pub mod ledger;
pub mod optimizer;
pub mod output;
pub mod provision;
pub mod request;
pub mod ssh;
pub mod state;
pub mod task;
pub mod vocabulary;

pub use commands::{ExitStatus, run};
