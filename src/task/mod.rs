//! Task files: SkyPilot-compatible YAML read into a [`Task`], with errors that point at
//! `file:line:col`.
//!
//! Parsing checks names against a [`Vocabulary`](crate::vocabulary::Vocabulary) built from the catalogs, so an unknown
//! accelerator, cloud or region is reported where it was written, with the closest real name.

mod error;
mod overrides;
mod parse;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use error::{TaskError, TaskErrorKind};
pub use overrides::{OverrideError, Overrides};
pub use parse::{parse_accelerator_spec, parse_amount, parse_task};

use crate::request::{Preference, Request, Resources};

/// A task file, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Where it was read from (for messages and run records).
    pub path: PathBuf,
    /// `name`.
    pub name: Option<String>,
    /// `workdir`, resolved relative to the task file's directory.
    pub workdir: Option<PathBuf>,
    /// `num_nodes`, at least 1.
    pub num_nodes: u32,
    /// `envs`: passed to `setup` and `run` byte-exact.
    pub envs: BTreeMap<String, String>,
    /// `secrets`: like `envs`, but never printed, logged or stored.
    pub secrets: BTreeMap<String, String>,
    /// `file_mounts`: remote path -> local path.
    pub file_mounts: BTreeMap<String, String>,
    /// `setup` script.
    pub setup: Option<String>,
    /// `run` script.
    pub run: Option<String>,
    /// `resources`.
    pub resources: TaskResources,
}

/// The `resources` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskResources {
    /// Acceptable node shapes, expanded from `accelerators` alternatives, `any_of` and
    /// `ordered`; never empty.
    pub options: Vec<Resources>,
    /// How to pick among them.
    pub preference: Preference,
    /// `disk_size` in GiB.
    pub disk_size: Option<u32>,
    /// `image_id` (`docker:IMAGE` runs the job in that container).
    pub image_id: Option<String>,
    /// `ports` to open, as written (`8080`, `10000-10010`).
    pub ports: Vec<String>,
    /// `labels` put on every resource.
    pub labels: BTreeMap<String, String>,
}

impl Task {
    /// The optimizer's view of the task.
    pub fn request(&self, max_price: Option<f64>) -> Request {
        Request {
            options: self.resources.options.clone(),
            preference: self.resources.preference,
            num_nodes: self.num_nodes,
            max_price,
        }
    }
}
