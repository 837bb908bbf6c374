//! Finding, fetching and loading Google's discovery document for compute v1.
//!
//! The document (5 MB) is not in the repository: `fetch-discovery.sh` takes it from a pinned
//! `google-api-python-client` wheel on `PyPI`. The first test process that needs it runs the script
//! under an exclusive file lock, so parallel test binaries fetch it once; later processes find
//! the file. A parsed copy is kept per process because every [`crate::FakeGce`] uses the same one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

use regex::Regex;
use serde_json::Value;

use crate::FakeError;

/// The environment variable naming the discovery document, overriding the default path.
pub const DISCOVERY_ENV: &str = "BROKER_GCE_DISCOVERY";

/// The fetch script, next to this crate's manifest.
fn fetch_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fetch-discovery.sh")
}

/// `<workspace>/.cache/gce/compute.v1.json`, or `BROKER_GCE_DISCOVERY` when it is set.
pub fn discovery_path() -> PathBuf {
    if let Some(path) = std::env::var_os(DISCOVERY_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    // The crate sits at `<workspace>/providers/broker-gce-fake`.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.cache/gce/compute.v1.json")
        .components()
        .collect()
}

/// The path of the compute v1 discovery document, fetched first if it is missing.
///
/// Blocks (up to the length of one download) while another process fetches it.
pub fn discovery_document() -> Result<PathBuf, FakeError> {
    let path = discovery_path();
    if path.is_file() {
        return Ok(path);
    }
    let script = fetch_script();
    let fetch_error = |reason: String| FakeError::Fetch {
        path: path.clone(),
        script: script.clone(),
        reason,
    };
    let dir = path
        .parent()
        .ok_or_else(|| fetch_error("the path has no parent directory".to_owned()))?;
    std::fs::create_dir_all(dir).map_err(|e| fetch_error(format!("cannot create `{}`: {e}", dir.display())))?;
    let lock_path = dir.join(".fetch.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| fetch_error(format!("cannot open `{}`: {e}", lock_path.display())))?;
    lock.lock()
        .map_err(|e| fetch_error(format!("cannot lock `{}`: {e}", lock_path.display())))?;
    // Whoever held the lock before us may have fetched it already.
    if path.is_file() {
        return Ok(path);
    }
    let output = Command::new("bash")
        .arg(&script)
        .arg(&path)
        .output()
        .map_err(|e| fetch_error(format!("cannot run bash: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(fetch_error(format!(
            "the script {} with:\n{}",
            output.status,
            stderr.trim_end()
        )));
    }
    if path.is_file() {
        Ok(path)
    } else {
        Err(fetch_error("the script succeeded but wrote no file".to_owned()))
    }
    // The lock is released when `lock` is dropped here.
}

/// The parts of the discovery document the fake validates against.
#[derive(Debug)]
pub(crate) struct Discovery {
    revision: String,
    schemas: serde_json::Map<String, Value>,
    resources: serde_json::Map<String, Value>,
    parameters: serde_json::Map<String, Value>,
    patterns: Mutex<HashMap<String, Option<Arc<Regex>>>>,
}

static LOADED: Mutex<Option<Arc<Discovery>>> = Mutex::new(None);

impl Discovery {
    /// The process-wide parsed document, fetched and parsed on first use.
    pub(crate) fn load() -> Result<Arc<Self>, FakeError> {
        let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(discovery) = loaded.as_ref() {
            return Ok(Arc::clone(discovery));
        }
        let path = discovery_document()?;
        let text = std::fs::read(&path).map_err(|e| FakeError::io(format!("cannot read `{}`", path.display()), e))?;
        let discovery = Arc::new(Self::parse(&text).map_err(|reason| FakeError::Discovery {
            path: path.clone(),
            reason,
        })?);
        *loaded = Some(Arc::clone(&discovery));
        Ok(discovery)
    }

    pub(crate) fn parse(text: &[u8]) -> Result<Self, String> {
        let mut doc: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
        if doc.get("name").and_then(Value::as_str) != Some("compute")
            || doc.get("version").and_then(Value::as_str) != Some("v1")
        {
            return Err("its `name`/`version` are not `compute`/`v1`".to_owned());
        }
        let mut take = |key: &str| match doc.get_mut(key).map(Value::take) {
            Some(Value::Object(map)) => Ok(map),
            _ => Err(format!("it has no `{key}` object")),
        };
        let schemas = take("schemas")?;
        let resources = take("resources")?;
        let parameters = take("parameters")?;
        let revision = doc
            .get("revision")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let discovery = Self {
            revision,
            schemas,
            resources,
            parameters,
            patterns: Mutex::new(HashMap::new()),
        };
        for method in crate::routes::METHODS {
            if discovery.method(method).is_none() {
                return Err(format!("it lacks the method `{}`", method.id()));
            }
        }
        Ok(discovery)
    }

    pub(crate) fn revision(&self) -> &str {
        &self.revision
    }

    pub(crate) fn schema(&self, name: &str) -> Option<&Value> {
        self.schemas.get(name)
    }

    /// A method's description: `httpMethod`, `path`, `parameters`, `request`.
    pub(crate) fn method(&self, method: &MethodRef) -> Option<&Value> {
        self.resources.get(method.resource)?.get("methods")?.get(method.method)
    }

    /// Parameters every method accepts (`alt`, `fields`, `prettyPrint`, ...).
    pub(crate) fn global_parameters(&self) -> &serde_json::Map<String, Value> {
        &self.parameters
    }

    /// `pattern` compiled as a whole-string match; `None` when the regex crate cannot compile it
    /// (the patterns are RE2; one that does not compile is not enforced rather than guessed at).
    pub(crate) fn pattern(&self, pattern: &str) -> Option<Arc<Regex>> {
        let mut patterns = self.patterns.lock().unwrap_or_else(PoisonError::into_inner);
        patterns
            .entry(pattern.to_owned())
            .or_insert_with(|| Regex::new(&format!("^(?:{pattern})$")).ok().map(Arc::new))
            .clone()
    }
}

/// A method of the discovery document, as `resources.{resource}.methods.{method}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MethodRef {
    pub(crate) resource: &'static str,
    pub(crate) method: &'static str,
}

impl MethodRef {
    /// The id used in `annotations.required`, e.g. `compute.instances.insert`.
    pub(crate) fn id(self) -> String {
        format!("compute.{}.{}", self.resource, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_documents_that_are_not_compute_v1() {
        let storage = br#"{"name": "storage", "version": "v1", "schemas": {}, "resources": {}, "parameters": {}}"#;
        assert!(Discovery::parse(storage).unwrap_err().contains("`compute`/`v1`"));
        let empty = br#"{"name": "compute", "version": "v1", "schemas": {}, "resources": {}, "parameters": {}}"#;
        assert!(
            Discovery::parse(empty)
                .unwrap_err()
                .contains("compute.instances.insert")
        );
        assert!(Discovery::parse(b"<html>").unwrap_err().starts_with("not JSON"));
    }

    #[test]
    fn patterns_match_whole_values() {
        let discovery = Discovery {
            revision: String::new(),
            schemas: serde_json::Map::new(),
            resources: serde_json::Map::new(),
            parameters: serde_json::Map::new(),
            patterns: Mutex::new(HashMap::new()),
        };
        let name = discovery.pattern("[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?").unwrap();
        assert!(name.is_match("brk-1") && !name.is_match("brk-") && !name.is_match("x Brk"));
        // The metadata key pattern puts `-` between a range and `_`: RE2 and regex read it alike.
        let key = discovery.pattern("[a-zA-Z0-9-_]{1,128}").unwrap();
        assert!(key.is_match("ssh-keys") && key.is_match("startup_script") && !key.is_match("ssh keys"));
        assert!(discovery.pattern("(unclosed").is_none());
    }
}
