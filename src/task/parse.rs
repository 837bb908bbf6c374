//! Reading a task file: YAML with positions, checked field by field against the catalogs.
//!
//! The YAML is loaded with `saphyr` into nodes that remember where they start and end, so every
//! error can point at the key or value that caused it. Fields are read strictly: a field broker
//! does not know is a typo until proven otherwise, and a SkyPilot field broker does not
//! implement yet is an error rather than something silently dropped.

// `TaskError`'s public shape is fixed by the CLI that renders it, and it is returned at most
// once per run, so its size costs nothing worth boxing it for.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use broker_provider::Cloud;
use saphyr::{AnnotatedMapping, LoadableYamlNode, MarkedYaml, Scalar, ScanError, YamlData};

use super::error::{TaskError, TaskErrorKind};
use super::{Task, TaskResources};
use crate::request::{AcceleratorRequest, Amount, Preference, Resources};
use crate::vocabulary::{Unknown, Vocabulary, closest};

/// Top-level fields broker reads.
const TOP_LEVEL: &[&str] = &[
    "name",
    "workdir",
    "num_nodes",
    "envs",
    "secrets",
    "file_mounts",
    "setup",
    "run",
    "resources",
];
/// Top-level SkyPilot fields broker recognises but does not implement yet.
const TOP_LEVEL_UNSUPPORTED: &[&str] = &["config", "service", "volumes", "inputs", "outputs", "event_callback"];
/// `resources` fields that say where and on what a node runs; the only ones `any_of` and
/// `ordered` items may set.
const PLACEMENT: &[&str] = &[
    "cloud",
    "infra",
    "region",
    "zone",
    "accelerators",
    "cpus",
    "memory",
    "instance_type",
    "use_spot",
];
/// The other `resources` fields broker reads.
const RESOURCES_OTHER: &[&str] = &["disk_size", "image_id", "ports", "labels", "any_of", "ordered"];
/// `resources` fields of SkyPilot broker recognises but does not implement yet.
const RESOURCES_UNSUPPORTED: &[&str] = &["accelerator_args", "job_recovery", "spot_recovery", "autostop"];

type Node<'i> = MarkedYaml<'i>;
type Data<'i> = YamlData<'i, MarkedYaml<'i>>;
type Mapping<'i> = AnnotatedMapping<'i, MarkedYaml<'i>>;

/// Parses and checks a task file.
///
/// `envs` and `secrets` entries whose value is `null` must be supplied at launch, as in
/// SkyPilot; this function takes them from the process environment and reports the ones that
/// are not set there. [`super::Overrides::parse_task`] also lets `--env` supply them.
pub fn parse_task(path: &Path, bytes: &[u8], vocab: &Vocabulary) -> Result<Task, TaskError> {
    parse_task_with_env(path, bytes, vocab, &|key| std::env::var(key).ok())
}

/// [`parse_task`] with the source of values for `null` envs and secrets given by the caller.
pub(crate) fn parse_task_with_env(
    path: &Path,
    bytes: &[u8],
    vocab: &Vocabulary,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Task, TaskError> {
    let text = std::str::from_utf8(bytes).map_err(|e| not_utf8(path, bytes, e.valid_up_to()))?;
    // saphyr skips a byte-order mark but would still count it as a column of line 1; dropping it
    // first keeps columns and snippets in step.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let source = Source {
        path,
        text,
        vocab,
        lookup,
    };
    let docs = MarkedYaml::load_from_str(text).map_err(|e| source.scan_error(&e))?;
    let Some(doc) = docs.first() else {
        return Err(source.empty(Loc {
            line: 1,
            col: 1,
            width: 1,
        }));
    };
    // A trailing `---` leaves an empty document behind; only a second real one is an error.
    let is_blank = |doc: &Node<'_>| matches!(data(doc), YamlData::Value(Scalar::Null) | YamlData::BadValue);
    if let Some(second) = docs.iter().skip(1).find(|doc| !is_blank(doc)) {
        return Err(source
            .error(Loc::of(second), TaskErrorKind::MultipleDocuments)
            .with_hint("a task file holds one task; remove the `---` line and what follows, or split the file"));
    }
    match data(doc) {
        YamlData::Mapping(map) => source.task(map),
        YamlData::Value(Scalar::Null) | YamlData::BadValue => Err(source.empty(Loc::of(doc))),
        _ => Err(source
            .error(
                Loc::of(doc),
                TaskErrorKind::NotAMapping {
                    found: source.describe(doc),
                },
            )
            .with_hint("start with fields such as `run: echo hello`")),
    }
}

/// Parses `A100`, `A100:8` or `A100:0.5` (a count of 1 when none is given). The name is not
/// checked against the catalogs here. Errors do not repeat `text`, so callers can prefix it.
pub fn parse_accelerator_spec(text: &str) -> Result<AcceleratorRequest, String> {
    let text = text.trim();
    let (name, count) = match text.split_once(':') {
        Some((name, count)) => (name.trim(), Some(count.trim())),
        None => (text, None),
    };
    if name.is_empty() {
        return Err("the accelerator name is missing".to_owned());
    }
    let count = match count {
        None => 1.0,
        Some("") => return Err("the count after `:` is missing".to_owned()),
        Some(count) => {
            let n: f64 = count.parse().map_err(|_| format!("count `{count}` is not a number"))?;
            check_count(n, count)?
        }
    };
    Ok(AcceleratorRequest {
        name: name.to_owned(),
        count,
    })
}

/// Parses `8` (exactly) or `8+` (at least); the number must be positive.
pub fn parse_amount(text: &str) -> Result<Amount, String> {
    let trimmed = text.trim();
    let (number, at_least) = match trimmed.strip_suffix('+') {
        Some(number) => (number.trim_end(), true),
        None => (trimmed, false),
    };
    if number.is_empty() {
        return Err("a number is missing (write `8` or `8+`)".to_owned());
    }
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a number (write `8` or `8+`)"))?;
    if !n.is_finite() || n <= 0.0 {
        return Err(format!("must be a positive number, found `{trimmed}`"));
    }
    Ok(if at_least { Amount::AtLeast(n) } else { Amount::Exact(n) })
}

fn check_count(n: f64, as_written: &str) -> Result<f64, String> {
    if !n.is_finite() {
        return Err(format!("count `{as_written}` is not a finite number"));
    }
    if n <= 0.0 {
        return Err(format!("count must be positive, found `{as_written}`"));
    }
    Ok(n)
}

/// Whether `name` can be a shell variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn not_utf8(path: &Path, bytes: &[u8], valid_up_to: usize) -> TaskError {
    let valid = String::from_utf8_lossy(bytes.get(..valid_up_to).unwrap_or_default());
    let line = valid.matches('\n').count() + 1;
    let col = valid.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let hint = match bytes.get(valid_up_to) {
        Some(byte) => format!("byte 0x{byte:02x} is not UTF-8; save the file as UTF-8"),
        None => "save the file as UTF-8".to_owned(),
    };
    TaskError::new(
        path,
        &String::from_utf8_lossy(bytes),
        line,
        col,
        1,
        TaskErrorKind::NotUtf8,
    )
    .with_hint(hint)
}

/// Where a node is: 1-based line and column, and how many characters to underline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loc {
    line: usize,
    col: usize,
    width: usize,
}

impl Loc {
    fn of(node: &Node<'_>) -> Self {
        let (start, end) = (node.span.start, node.span.end);
        // A block collection or a multi-line scalar ends on a later line; underline its first
        // character only.
        let width = if start.line() == end.line() {
            end.col().saturating_sub(start.col())
        } else {
            1
        };
        Self {
            line: start.line(),
            col: start.col() + 1,
            width: width.max(1),
        }
    }

    /// `len` characters starting `offset` characters into this location.
    fn shifted(self, offset: usize, len: usize) -> Self {
        Self {
            line: self.line,
            col: self.col + offset,
            width: len.max(1),
        }
    }
}

/// The value of a node, looking through user-defined tags (`!secret foo` is read as `foo`).
///
/// Spans must be taken from the outer node: saphyr gives the inner node of a tagged scalar an
/// empty span.
fn data<'n, 'i>(node: &'n Node<'i>) -> &'n Data<'i> {
    let mut node = node;
    while let YamlData::Tagged(_, inner) = &node.data {
        node = inner;
    }
    &node.data
}

/// Accelerator alternatives and how to choose among them.
#[derive(Debug, Clone)]
struct Accelerators {
    list: Vec<AcceleratorRequest>,
    preference: Preference,
}

/// The fields of `resources` (or of an `any_of`/`ordered` item) that say where and on what a
/// node runs, each name with where it was written so a later check can point at it.
#[derive(Debug, Clone, Default)]
struct Placement {
    cloud: Option<(Cloud, Loc)>,
    region: Option<(String, Loc)>,
    zone: Option<(String, Loc)>,
    /// Set when `infra` was given: it sets cloud, region and zone together.
    infra: Option<Loc>,
    /// The first of `cloud`, `region`, `zone` given explicitly, to reject mixing with `infra`.
    explicit_location: Option<Loc>,
    accelerators: Option<Accelerators>,
    cpus: Option<Amount>,
    memory: Option<Amount>,
    instance_type: Option<(String, Loc)>,
    use_spot: Option<bool>,
}

impl Placement {
    /// `item` on top of `self`: each field the item sets wins, the others are inherited.
    /// `infra` in the item replaces cloud, region and zone as a unit, since its parts belong together.
    fn overridden_by(&self, item: &Self) -> Self {
        let (cloud, region, zone) = if item.infra.is_some() {
            (item.cloud, item.region.clone(), item.zone.clone())
        } else {
            (
                item.cloud.or(self.cloud),
                item.region.clone().or_else(|| self.region.clone()),
                item.zone.clone().or_else(|| self.zone.clone()),
            )
        };
        Self {
            cloud,
            region,
            zone,
            infra: item.infra.or(self.infra),
            explicit_location: item.explicit_location.or(self.explicit_location),
            accelerators: item.accelerators.clone().or_else(|| self.accelerators.clone()),
            cpus: item.cpus.or(self.cpus),
            memory: item.memory.or(self.memory),
            instance_type: item.instance_type.clone().or_else(|| self.instance_type.clone()),
            use_spot: item.use_spot.or(self.use_spot),
        }
    }
}

/// The task file being read.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
    vocab: &'a Vocabulary,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Source<'_> {
    fn error(&self, loc: Loc, kind: TaskErrorKind) -> TaskError {
        TaskError::new(self.path, self.text, loc.line, loc.col, loc.width, kind)
    }

    fn empty(&self, loc: Loc) -> TaskError {
        self.error(loc, TaskErrorKind::Empty)
            .with_hint("a task needs at least a command, e.g. `run: echo hello`")
    }

    fn wrong_type(&self, node: &Node<'_>, field: &str, expected: &str) -> TaskError {
        let err = self.error(
            Loc::of(node),
            TaskErrorKind::WrongType {
                field: field.to_owned(),
                expected: expected.to_owned(),
                found: self.describe(node),
            },
        );
        let scalar = matches!(
            data(node),
            YamlData::Value(Scalar::Boolean(_) | Scalar::Integer(_) | Scalar::FloatingPoint(_))
        );
        if scalar && expected.contains("string") {
            err.with_hint(format!("quote it to make it text: `\"{}\"`", self.scalar_text(node)))
        } else {
            err
        }
    }

    fn invalid(&self, loc: Loc, field: &str, message: String) -> TaskError {
        self.error(
            loc,
            TaskErrorKind::InvalidValue {
                field: field.to_owned(),
                message,
            },
        )
    }

    fn unknown(&self, loc: Loc, unknown: Unknown) -> TaskError {
        self.error(loc, TaskErrorKind::Unknown(unknown))
    }

    /// A saphyr error, with its duplicate-key case made specific.
    fn scan_error(&self, err: &ScanError) -> TaskError {
        let marker = err.marker();
        let line = marker.line();
        let col = marker.col() + 1;
        if err.info() == "duplicated key in mapping" {
            // saphyr points at the second occurrence of the key but does not name it.
            let rest: String = self.line_text(line).chars().skip(marker.col()).collect();
            let key = key_at_start(&rest);
            let width = key.chars().count();
            return TaskError::new(
                self.path,
                self.text,
                line,
                col,
                width,
                TaskErrorKind::DuplicateKey { key },
            )
            .with_hint("a key may appear only once in a mapping; remove one of them");
        }
        let syntax = TaskError::new(
            self.path,
            self.text,
            line,
            col,
            1,
            TaskErrorKind::Syntax(err.info().to_owned()),
        );
        match syntax_hint(err.info()) {
            Some(hint) => syntax.with_hint(hint),
            None => syntax,
        }
    }

    fn line_text(&self, line: usize) -> &str {
        self.text
            .split('\n')
            .nth(line.saturating_sub(1))
            .unwrap_or_default()
            .trim_end_matches('\r')
    }

    /// The source text of a one-line node, as written (including quotes for quoted scalars).
    fn source_of(&self, node: &Node<'_>) -> Option<&str> {
        let (start, end) = (node.span.start, node.span.end);
        if start.line() != end.line() || end.col() <= start.col() {
            return None;
        }
        let line = self.line_text(start.line());
        let from = line.char_indices().nth(start.col()).map(|(i, _)| i)?;
        let to = line.char_indices().nth(end.col()).map_or(line.len(), |(i, _)| i);
        line.get(from..to)
    }

    /// A scalar as text: strings as they are, numbers and booleans as written in the file
    /// (`1.50` stays `1.50`, `0x1F` stays `0x1F`), so env values are what the user typed.
    fn scalar_text(&self, node: &Node<'_>) -> String {
        match data(node) {
            YamlData::Value(Scalar::String(s)) => s.to_string(),
            YamlData::Value(scalar) => {
                // The span of an anchored or tagged scalar also covers `&anchor` / `!tag`;
                // an alias (`*a`) has no text of its own. Fall back to the parsed value then.
                let written = self
                    .source_of(node)
                    .map(str::trim)
                    .filter(|t| !t.starts_with(['&', '!', '*']));
                written.map_or_else(|| scalar_display(scalar), str::to_owned)
            }
            _ => String::new(),
        }
    }

    /// `a list`, `a string "maybe"`, ``an integer `3` ``: what a value is, for type errors.
    fn describe(&self, node: &Node<'_>) -> String {
        match data(node) {
            YamlData::Value(Scalar::Null) => "no value".to_owned(),
            YamlData::Value(Scalar::Boolean(b)) => format!("a boolean `{b}`"),
            YamlData::Value(Scalar::Integer(_)) => format!("an integer `{}`", self.scalar_text(node)),
            YamlData::Value(Scalar::FloatingPoint(_)) => format!("a number `{}`", self.scalar_text(node)),
            YamlData::Value(Scalar::String(s)) => {
                let shown: String = if s.chars().count() > 40 {
                    s.chars().take(37).chain("...".chars()).collect()
                } else {
                    s.to_string()
                };
                format!("a string {shown:?}")
            }
            YamlData::Sequence(_) => "a list".to_owned(),
            YamlData::Mapping(_) => "a mapping".to_owned(),
            _ => "a value that does not match its tag".to_owned(),
        }
    }

    /// A mapping key as text; keys such as `123` or `true` are taken as written.
    fn key_text(&self, key: &Node<'_>, section: &str) -> Result<String, TaskError> {
        match data(key) {
            YamlData::Value(_) => Ok(self.scalar_text(key)),
            _ => Err(self.invalid(
                Loc::of(key),
                section,
                format!("keys in `{section}` must be plain names, found {}", self.describe(key)),
            )),
        }
    }

    /// A string field; `null` means not set.
    fn string(&self, node: &Node<'_>, field: &str) -> Result<Option<String>, TaskError> {
        match data(node) {
            YamlData::Value(Scalar::Null) => Ok(None),
            YamlData::Value(Scalar::String(s)) => Ok(Some(s.to_string())),
            _ => Err(self.wrong_type(node, field, "a string")),
        }
    }

    fn boolean(&self, node: &Node<'_>, field: &str) -> Result<Option<bool>, TaskError> {
        match data(node) {
            YamlData::Value(Scalar::Null) => Ok(None),
            YamlData::Value(Scalar::Boolean(b)) => Ok(Some(*b)),
            _ => Err(self.wrong_type(node, field, "`true` or `false`")),
        }
    }

    /// A mapping field; `null` reads as an empty mapping.
    fn mapping<'n, 'i>(&self, node: &'n Node<'i>, field: &str) -> Result<Option<&'n Mapping<'i>>, TaskError> {
        match data(node) {
            YamlData::Value(Scalar::Null) => Ok(None),
            YamlData::Mapping(map) => Ok(Some(map)),
            _ => Err(self.wrong_type(node, field, "a mapping")),
        }
    }

    /// A positive whole number that fits in `u32` (`num_nodes`, `disk_size`).
    fn positive_u32(&self, node: &Node<'_>, field: &str) -> Result<Option<u32>, TaskError> {
        let loc = Loc::of(node);
        let short = field.rsplit('.').next().unwrap_or(field);
        match data(node) {
            YamlData::Value(Scalar::Null) => Ok(None),
            YamlData::Value(Scalar::Integer(n)) if *n < 1 => {
                Err(self.invalid(loc, field, format!("`{short}` must be at least 1, found `{n}`")))
            }
            YamlData::Value(Scalar::Integer(n)) => u32::try_from(*n)
                .map(Some)
                .map_err(|_| self.invalid(loc, field, format!("`{short}` is too large, found `{n}`"))),
            YamlData::Value(Scalar::FloatingPoint(_)) => Err(self.invalid(
                loc,
                field,
                format!("`{short}` must be a whole number, found `{}`", self.scalar_text(node)),
            )),
            _ => Err(self.wrong_type(node, field, "a whole number")),
        }
    }

    fn task(&self, map: &Mapping<'_>) -> Result<Task, TaskError> {
        let mut task = Task {
            path: self.path.to_owned(),
            name: None,
            workdir: None,
            num_nodes: 1,
            envs: BTreeMap::new(),
            secrets: BTreeMap::new(),
            file_mounts: BTreeMap::new(),
            setup: None,
            run: None,
            resources: TaskResources {
                options: vec![Resources::default()],
                ..TaskResources::default()
            },
        };
        for (key, value) in map {
            let field = self.key_text(key, "task")?;
            match field.as_str() {
                "name" => task.name = self.string(value, "name")?,
                "workdir" => task.workdir = self.string(value, "workdir")?.map(|w| self.resolve(&w)),
                "num_nodes" => task.num_nodes = self.positive_u32(value, "num_nodes")?.unwrap_or(1),
                "envs" => task.envs = self.env_map(value, "envs")?,
                "secrets" => task.secrets = self.env_map(value, "secrets")?,
                "file_mounts" => task.file_mounts = self.file_mounts(value)?,
                "setup" => task.setup = self.string(value, "setup")?,
                "run" => task.run = self.string(value, "run")?,
                "resources" => task.resources = self.resources(value)?,
                other if TOP_LEVEL_UNSUPPORTED.contains(&other) => {
                    return Err(self.error(
                        Loc::of(key),
                        TaskErrorKind::Unsupported {
                            what: format!("`{other}`"),
                        },
                    ));
                }
                other => {
                    let known = TOP_LEVEL.iter().chain(TOP_LEVEL_UNSUPPORTED);
                    return Err(self.error(
                        Loc::of(key),
                        TaskErrorKind::UnknownField {
                            field: other.to_owned(),
                            section: None,
                            suggestions: closest(other, known.copied()),
                        },
                    ));
                }
            }
        }
        Ok(task)
    }

    /// `workdir` relative to the task file's directory, as SkyPilot resolves it. A `~` path is
    /// left alone: expanding it is the launcher's business, and joining it would break it.
    fn resolve(&self, workdir: &str) -> PathBuf {
        match self.path.parent() {
            Some(dir) if !workdir.starts_with('~') => dir.join(workdir),
            _ => PathBuf::from(workdir),
        }
    }

    /// `envs` or `secrets`: shell-safe keys, values kept byte-exact.
    ///
    /// A `null` value must be supplied at launch (SkyPilot's rule too). The value comes from
    /// `self.lookup` (the process environment, or `--env` through `Overrides::parse_task`), so
    /// the resulting `Task` is complete and nothing downstream has to remember pending keys.
    fn env_map(&self, node: &Node<'_>, section: &str) -> Result<BTreeMap<String, String>, TaskError> {
        let noun = if section == "secrets" { "secret" } else { "env" };
        let mut out = BTreeMap::new();
        let Some(map) = self.mapping(node, section)? else {
            return Ok(out);
        };
        for (key_node, value) in map {
            let key = self.key_text(key_node, section)?;
            if !is_shell_name(&key) {
                return Err(self
                    .invalid(
                        Loc::of(key_node),
                        section,
                        format!("{noun} key `{key}` is not a valid shell variable name"),
                    )
                    .with_hint("use letters, digits and `_`, not starting with a digit"));
            }
            let text = match data(value) {
                YamlData::Value(Scalar::String(s)) => s.to_string(),
                YamlData::Value(Scalar::Null) => (self.lookup)(&key).ok_or_else(|| {
                    self.invalid(
                        Loc::of(key_node),
                        section,
                        format!("{noun} `{key}` has no value in the file and `{key}` is not set in the environment"),
                    )
                    .with_hint(format!(
                        "give it a value in the file, set `{key}` in the environment, or pass `--env {key}=VALUE`"
                    ))
                })?,
                YamlData::Value(_) => self.scalar_text(value),
                _ => return Err(self.wrong_type(value, &format!("{section}.{key}"), "a string, number or boolean")),
            };
            out.insert(key, text);
        }
        Ok(out)
    }

    /// `file_mounts`: remote path -> local path. SkyPilot's bucket mounts are mappings.
    fn file_mounts(&self, node: &Node<'_>) -> Result<BTreeMap<String, String>, TaskError> {
        let mut out = BTreeMap::new();
        let Some(map) = self.mapping(node, "file_mounts")? else {
            return Ok(out);
        };
        for (key, value) in map {
            let remote = self.key_text(key, "file_mounts")?;
            match data(value) {
                YamlData::Value(Scalar::String(local)) => {
                    out.insert(remote, local.to_string());
                }
                YamlData::Mapping(_) => {
                    return Err(self
                        .error(
                            Loc::of(key),
                            TaskErrorKind::Unsupported {
                                what: "bucket mounts in `file_mounts`".into(),
                            },
                        )
                        .with_hint("mount a local path instead: `/remote/path: ./local/path`"));
                }
                _ => return Err(self.wrong_type(value, &format!("file_mounts.{remote}"), "a local path")),
            }
        }
        Ok(out)
    }

    fn resources(&self, node: &Node<'_>) -> Result<TaskResources, TaskError> {
        let mut out = TaskResources::default();
        let Some(map) = self.mapping(node, "resources")? else {
            out.options.push(Resources::default());
            return Ok(out);
        };
        let mut outer = Placement::default();
        // The `any_of` / `ordered` items, whether they are ordered, and which key gave them.
        let mut items: Option<(Vec<Placement>, bool, &str)> = None;
        for (key, value) in map {
            let field = self.key_text(key, "resources")?;
            if self.placement_field(&mut outer, &field, value)? {
                continue;
            }
            match field.as_str() {
                "disk_size" => out.disk_size = self.positive_u32(value, "resources.disk_size")?,
                "image_id" => out.image_id = self.string(value, "resources.image_id")?,
                "ports" => out.ports = self.ports(value)?,
                "labels" => out.labels = self.labels(value)?,
                "any_of" | "ordered" => {
                    if let Some((_, _, first)) = &items {
                        return Err(self
                            .invalid(
                                Loc::of(key),
                                "resources",
                                format!("`{field}` cannot be combined with `{first}`"),
                            )
                            .with_hint("use one: `any_of` takes the cheapest option, `ordered` tries them in order"));
                    }
                    let name = if field == "any_of" { "any_of" } else { "ordered" };
                    items = Some((self.items(value, name)?, name == "ordered", name));
                }
                other if RESOURCES_UNSUPPORTED.contains(&other) => {
                    return Err(self.error(
                        Loc::of(key),
                        TaskErrorKind::Unsupported {
                            what: format!("`{other}` in `resources`"),
                        },
                    ));
                }
                other => {
                    let known = PLACEMENT.iter().chain(RESOURCES_OTHER).chain(RESOURCES_UNSUPPORTED);
                    return Err(self.error(
                        Loc::of(key),
                        TaskErrorKind::UnknownField {
                            field: other.to_owned(),
                            section: Some("resources".to_owned()),
                            suggestions: closest(other, known.copied()),
                        },
                    ));
                }
            }
        }
        self.check_infra_mix(&outer)?;
        let (bases, ordered_items) = match items {
            Some((items, ordered, _)) => (items.iter().map(|item| outer.overridden_by(item)).collect(), ordered),
            None => (vec![outer], false),
        };
        let (options, preference) = self.expand(&bases, ordered_items)?;
        out.options = options;
        out.preference = preference;
        Ok(out)
    }

    /// Reads one placement field into `p`; `false` when `field` is not one.
    fn placement_field(&self, p: &mut Placement, field: &str, value: &Node<'_>) -> Result<bool, TaskError> {
        let loc = Loc::of(value);
        let path = format!("resources.{field}");
        match field {
            "cloud" => {
                p.explicit_location = p.explicit_location.or(Some(loc));
                p.cloud = match self.string(value, &path)? {
                    Some(name) => Some((Vocabulary::cloud(&name).map_err(|u| self.unknown(loc, u))?, loc)),
                    None => None,
                };
            }
            "region" => {
                p.explicit_location = p.explicit_location.or(Some(loc));
                p.region = self.string(value, &path)?.map(|r| (r, loc));
            }
            "zone" => {
                p.explicit_location = p.explicit_location.or(Some(loc));
                p.zone = self.string(value, &path)?.map(|z| (z, loc));
            }
            "infra" => {
                if let Some(infra) = self.string(value, &path)? {
                    self.infra(p, &infra, value)?;
                }
            }
            "accelerators" => p.accelerators = self.accelerators(value)?,
            "cpus" => p.cpus = self.amount(value, &path)?,
            "memory" => p.memory = self.amount(value, &path)?,
            "instance_type" => p.instance_type = self.string(value, &path)?.map(|t| (t, loc)),
            "use_spot" => p.use_spot = self.boolean(value, &path)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn check_infra_mix(&self, p: &Placement) -> Result<(), TaskError> {
        match (p.infra, p.explicit_location) {
            (Some(infra), Some(_)) => Err(self
                .invalid(
                    infra,
                    "resources.infra",
                    "`infra` cannot be combined with `cloud`, `region` or `zone`".to_owned(),
                )
                .with_hint("use either `infra` or `cloud`/`region`/`zone`")),
            _ => Ok(()),
        }
    }

    /// `infra: cloud[/region[/zone]]`, where `*` in a part means any. The cloud is checked here;
    /// region and zone later, with the rest of the placement. Each part keeps its own column
    /// so the caret points at the bad part.
    fn infra(&self, p: &mut Placement, infra: &str, node: &Node<'_>) -> Result<(), TaskError> {
        let loc = Loc::of(node);
        let parts: Vec<&str> = infra.split('/').collect();
        if parts.len() > 3 || parts.iter().any(|part| part.trim().is_empty()) {
            return Err(self
                .invalid(
                    loc,
                    "resources.infra",
                    format!("`infra` must be `cloud[/region[/zone]]`, found `{infra}`"),
                )
                .with_hint("for example `aws`, `gcp/us-central1` or `aws/us-east-1/use1-az1`; `*` means any"));
        }
        // Columns of each part inside the value, when it is written on one line as is (plain
        // or quoted); otherwise the whole value is underlined.
        let written = self.source_of(node).unwrap_or_default();
        let base = if written.starts_with(infra) {
            Some(0)
        } else if written.starts_with(['"', '\'']) && written.get(1..).is_some_and(|w| w.starts_with(infra)) {
            Some(1)
        } else {
            None
        };
        let mut offset = 0;
        let mut part_locs = Vec::new();
        for part in &parts {
            part_locs.push(base.map_or(loc, |b| loc.shifted(b + offset, part.chars().count())));
            offset += part.chars().count() + 1;
        }
        let part = |i: usize| -> Option<(String, Loc)> {
            let text = parts.get(i)?.trim();
            (text != "*").then(|| (text.to_owned(), part_locs.get(i).copied().unwrap_or(loc)))
        };
        p.cloud = match part(0) {
            Some((name, at)) => Some((Vocabulary::cloud(&name).map_err(|u| self.unknown(at, u))?, at)),
            None => None,
        };
        p.region = part(1);
        p.zone = part(2);
        p.infra = Some(loc);
        Ok(())
    }

    /// `accelerators`: `A100:8`; `{L4: 1, A10G: 1}` (any of them, cheapest wins);
    /// `[V100:1, T4:1]` (in order of preference).
    fn accelerators(&self, node: &Node<'_>) -> Result<Option<Accelerators>, TaskError> {
        let path = "resources.accelerators";
        let empty = || {
            self.invalid(Loc::of(node), path, "`accelerators` is empty".to_owned())
                .with_hint("name at least one, e.g. `accelerators: A100:8`, or remove the field for a CPU node")
        };
        let (list, preference) = match data(node) {
            YamlData::Value(Scalar::Null) => return Ok(None),
            YamlData::Value(Scalar::String(spec)) => (vec![self.accelerator_spec(spec, node)?], Preference::Cheapest),
            YamlData::Mapping(map) if map.is_empty() => return Err(empty()),
            YamlData::Mapping(map) => {
                let list = map
                    .iter()
                    .map(|(k, v)| self.accelerator_entry(k, v))
                    .collect::<Result<_, _>>()?;
                (list, Preference::Cheapest)
            }
            YamlData::Sequence(items) if items.is_empty() => return Err(empty()),
            YamlData::Sequence(items) => {
                let mut list = Vec::new();
                for item in items {
                    list.push(match data(item) {
                        YamlData::Value(Scalar::String(spec)) => self.accelerator_spec(spec, item)?,
                        // `- V100: 1` is a one-entry mapping; read it like `V100:1`.
                        YamlData::Mapping(map) if map.len() == 1 => {
                            let mut entries = map.iter().map(|(k, v)| self.accelerator_entry(k, v));
                            entries.next().unwrap_or_else(|| Err(empty()))?
                        }
                        _ => return Err(self.wrong_type(item, path, "an accelerator such as `A100:8`")),
                    });
                }
                (list, Preference::Ordered)
            }
            _ => {
                return Err(self
                    .wrong_type(node, path, "an accelerator such as `A100:8`, a list or a mapping of them")
                    .with_hint(
                        "write `accelerators: A100:8`, `accelerators: {L4: 1, A10G: 1}` or `accelerators: [V100:1, T4:1]`",
                    ));
            }
        };
        Ok(Some(Accelerators { list, preference }))
    }

    /// One `NAME[:COUNT]` string, with the name in the catalogs' spelling.
    fn accelerator_spec(&self, spec: &str, node: &Node<'_>) -> Result<AcceleratorRequest, TaskError> {
        let loc = Loc::of(node);
        let mut request = parse_accelerator_spec(spec).map_err(|e| {
            self.invalid(
                loc,
                "resources.accelerators",
                format!("invalid accelerator `{spec}`: {e}"),
            )
            .with_hint("write NAME or NAME:COUNT, e.g. `A100:8`")
        })?;
        request.name = self
            .vocab
            .accelerator(&request.name)
            .map_err(|u| self.unknown(loc, u))?
            .to_owned();
        Ok(request)
    }

    /// `NAME: COUNT` in a mapping of alternatives; a `null` count means the one in the name, or 1.
    fn accelerator_entry(&self, key: &Node<'_>, value: &Node<'_>) -> Result<AcceleratorRequest, TaskError> {
        let path = "resources.accelerators";
        let name = self.key_text(key, path)?;
        let mut request = self.accelerator_spec(&name, key)?;
        let count = match data(value) {
            YamlData::Value(Scalar::Null) => return Ok(request),
            YamlData::Value(Scalar::Integer(n)) => *n as f64,
            YamlData::Value(Scalar::FloatingPoint(f)) => f.0,
            _ => return Err(self.wrong_type(value, &format!("{path}.{name}"), "a count such as `1` or `0.5`")),
        };
        if name.contains(':') {
            return Err(self
                .invalid(Loc::of(value), path, format!("`{name}` already gives a count"))
                .with_hint(format!("write `{}: {}`", request.name, self.scalar_text(value))));
        }
        request.count = check_count(count, &self.scalar_text(value))
            .map_err(|e| self.invalid(Loc::of(value), path, format!("invalid accelerator `{name}`: {e}")))?;
        Ok(request)
    }

    /// `cpus` / `memory`: `8`, `0.5`, `8+`.
    fn amount(&self, node: &Node<'_>, field: &str) -> Result<Option<Amount>, TaskError> {
        let loc = Loc::of(node);
        let short = field.rsplit('.').next().unwrap_or(field);
        let invalid = |e: String| {
            self.invalid(loc, field, format!("invalid `{short}`: {e}"))
                .with_hint("write a number such as `8`, or `8+` for at least 8")
        };
        match data(node) {
            YamlData::Value(Scalar::Null) => Ok(None),
            YamlData::Value(Scalar::Integer(_) | Scalar::FloatingPoint(_) | Scalar::String(_)) => {
                parse_amount(&self.scalar_text(node)).map(Some).map_err(invalid)
            }
            _ => Err(self.wrong_type(node, field, "a number such as `8` or `8+`")),
        }
    }

    /// `ports`: `8080`, `"10000-10010"`, or a list of those; kept as written.
    fn ports(&self, node: &Node<'_>) -> Result<Vec<String>, TaskError> {
        match data(node) {
            YamlData::Value(Scalar::Null) => Ok(Vec::new()),
            YamlData::Sequence(items) => items.iter().map(|item| self.port(item)).collect(),
            _ => Ok(vec![self.port(node)?]),
        }
    }

    fn port(&self, node: &Node<'_>) -> Result<String, TaskError> {
        let path = "resources.ports";
        let text = match data(node) {
            YamlData::Value(Scalar::Integer(_) | Scalar::String(_)) => self.scalar_text(node).trim().to_owned(),
            _ => return Err(self.wrong_type(node, path, "a port such as `8080` or a range such as `\"10000-10010\"`")),
        };
        let invalid = |message: String| {
            self.invalid(Loc::of(node), path, message)
                .with_hint("ports are 1 to 65535; write `8080` or `\"10000-10010\"`")
        };
        let number = |part: &str| -> Result<u16, TaskError> {
            match part.trim().parse::<u32>() {
                Ok(n @ 1..=65535) => u16::try_from(n).map_err(|_| invalid(format!("port `{n}` is out of range"))),
                Ok(n) => Err(invalid(format!("port `{n}` is out of range"))),
                Err(_) => Err(invalid(format!("`{text}` is not a port or a port range"))),
            }
        };
        match text.split_once('-') {
            Some((lo, hi)) => {
                if number(lo)? > number(hi)? {
                    return Err(invalid(format!("port range `{text}` ends before it starts")));
                }
            }
            None => {
                number(&text)?;
            }
        }
        Ok(text)
    }

    fn labels(&self, node: &Node<'_>) -> Result<BTreeMap<String, String>, TaskError> {
        let mut out = BTreeMap::new();
        let Some(map) = self.mapping(node, "resources.labels")? else {
            return Ok(out);
        };
        for (key, value) in map {
            let name = self.key_text(key, "resources.labels")?;
            match data(value) {
                YamlData::Value(Scalar::Null) | YamlData::Sequence(_) | YamlData::Mapping(_) => {
                    return Err(self.wrong_type(value, &format!("resources.labels.{name}"), "a string"));
                }
                _ => {
                    out.insert(name, self.scalar_text(value));
                }
            }
        }
        Ok(out)
    }

    /// The items of `any_of` / `ordered`: placement fields only.
    fn items(&self, node: &Node<'_>, name: &str) -> Result<Vec<Placement>, TaskError> {
        let path = format!("resources.{name}");
        let YamlData::Sequence(items) = data(node) else {
            return Err(self.wrong_type(node, &path, "a list of mappings"));
        };
        if items.is_empty() {
            return Err(self
                .invalid(Loc::of(node), &path, format!("`{name}` is empty"))
                .with_hint(format!(
                    "list at least one option, e.g. `{name}: [{{accelerators: A100:8}}, {{accelerators: H100:8}}]`"
                )));
        }
        let mut out = Vec::new();
        for item in items {
            let YamlData::Mapping(map) = data(item) else {
                return Err(self.wrong_type(item, &path, "a mapping of resources fields"));
            };
            let mut placement = Placement::default();
            for (key, value) in map {
                let field = self.key_text(key, &path)?;
                if self.placement_field(&mut placement, &field, value)? {
                    continue;
                }
                let known_elsewhere = RESOURCES_OTHER.iter().chain(RESOURCES_UNSUPPORTED).any(|f| *f == field);
                if known_elsewhere {
                    return Err(self
                        .invalid(
                            Loc::of(key),
                            &path,
                            format!("`{field}` is not supported inside `{name}`"),
                        )
                        .with_hint("put it in `resources`; it applies to every option"));
                }
                let suggestions = closest(&field, PLACEMENT.iter().copied());
                return Err(self.error(
                    Loc::of(key),
                    TaskErrorKind::UnknownField {
                        field,
                        section: Some(path.clone()),
                        suggestions,
                    },
                ));
            }
            self.check_infra_mix(&placement)?;
            out.push(placement);
        }
        Ok(out)
    }

    /// Checks the names of a placement against the catalogs, knowing its final cloud.
    fn check_names(&self, p: &Placement) -> Result<(), TaskError> {
        let cloud = p.cloud.map(|(c, _)| c);
        if let Some((region, loc)) = &p.region {
            self.vocab.region(cloud, region).map_err(|u| self.unknown(*loc, u))?;
        }
        if let Some((zone, loc)) = &p.zone {
            self.vocab.zone(cloud, zone).map_err(|u| self.unknown(*loc, u))?;
        }
        if let Some((instance_type, loc)) = &p.instance_type {
            self.vocab
                .instance_type_known(cloud, instance_type)
                .map_err(|u| self.unknown(*loc, u))?;
        }
        Ok(())
    }

    /// The options: each base placement (the `any_of`/`ordered` items, or `resources` itself)
    /// times each of its accelerator alternatives.
    ///
    /// With `ordered`, options follow the items, then each item's accelerators. Otherwise an
    /// ordered accelerator list makes the whole request ordered, accelerator first: all
    /// options with the first accelerator, then all with the second, and so on (`any_of` items
    /// keep their order within a rank, so among them the first listed is preferred, not the
    /// cheapest). Identical options are kept once.
    fn expand(&self, bases: &[Placement], ordered_items: bool) -> Result<(Vec<Resources>, Preference), TaskError> {
        let mut ranked: Vec<(usize, Resources)> = Vec::new();
        let mut ordered_accelerators = false;
        for base in bases {
            self.check_names(base)?;
            let alternatives: Vec<Option<AcceleratorRequest>> = match &base.accelerators {
                Some(acc) => {
                    ordered_accelerators |= acc.preference == Preference::Ordered && acc.list.len() > 1;
                    acc.list.iter().cloned().map(Some).collect()
                }
                None => vec![None],
            };
            for (rank, accelerator) in alternatives.into_iter().enumerate() {
                let option = Resources {
                    accelerator,
                    cpus: base.cpus,
                    memory: base.memory,
                    cloud: base.cloud.map(|(c, _)| c),
                    region: base.region.as_ref().map(|(r, _)| r.clone()),
                    zone: base.zone.as_ref().map(|(z, _)| z.clone()),
                    instance_type: base.instance_type.as_ref().map(|(t, _)| t.clone()),
                    use_spot: base.use_spot.unwrap_or(false),
                    arch: None,
                };
                if let (Some(why), Some((_, loc))) = (self.vocab.contradiction(&option), &base.instance_type) {
                    return Err(self
                        .error(*loc, TaskErrorKind::Contradiction(why))
                        .with_hint("remove `instance_type`, or the constraints it contradicts"));
                }
                ranked.push((rank, option));
            }
        }
        if !ordered_items && ordered_accelerators {
            // Stable, so items keep their order within one accelerator rank.
            ranked.sort_by_key(|(rank, _)| *rank);
        }
        let mut options: Vec<Resources> = Vec::new();
        for (_, option) in ranked {
            if !options.contains(&option) {
                options.push(option);
            }
        }
        if options.is_empty() {
            options.push(Resources::default());
        }
        let preference = if ordered_items || ordered_accelerators {
            Preference::Ordered
        } else {
            Preference::Cheapest
        };
        Ok((options, preference))
    }
}

fn scalar_display(scalar: &Scalar<'_>) -> String {
    match scalar {
        Scalar::Null => String::new(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::Integer(n) => n.to_string(),
        Scalar::FloatingPoint(f) => f.0.to_string(),
        Scalar::String(s) => s.to_string(),
    }
}

/// Advice for the scanner messages whose cause is not where they point.
fn syntax_hint(message: &str) -> Option<&'static str> {
    if message.contains("tab") {
        Some("indent with spaces; YAML does not allow tabs there")
    } else if message.contains("flow mapping") || message.contains("flow sequence") {
        // The scanner notices an unclosed `{` or `[` only where the next line starts.
        Some("check that every `{` and `[` before this point is closed")
    } else {
        None
    }
}

/// The mapping key at the start of `rest`: a quoted string, or text up to `: ` / end of line.
fn key_at_start(rest: &str) -> String {
    let mut chars = rest.char_indices();
    if let Some((_, quote @ ('"' | '\''))) = chars.next()
        && let Some((end, _)) = chars.find(|(_, c)| *c == quote)
    {
        return rest.get(..=end).unwrap_or(rest).to_owned();
    }
    let end = rest
        .char_indices()
        .find(|(i, c)| {
            *c == ':'
                && rest
                    .get(i + 1..)
                    .is_none_or(|after| after.is_empty() || after.starts_with([' ', '\t']))
        })
        .map_or(rest.len(), |(i, _)| i);
    rest.get(..end).unwrap_or(rest).trim_end().to_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vocabulary::test_offer as offer;

    pub(crate) fn vocab() -> Vocabulary {
        Vocabulary::from_offers(&[
            offer(Cloud::Aws, "m6i.2xlarge", None, 8.0, "us-east-1", "use1-az1"),
            offer(
                Cloud::Aws,
                "p4d.24xlarge",
                Some(("A100", 8.0)),
                96.0,
                "us-east-1",
                "use1-az1",
            ),
            offer(
                Cloud::Aws,
                "p5.48xlarge",
                Some(("H100", 8.0)),
                192.0,
                "us-east-1",
                "use1-az2",
            ),
            offer(
                Cloud::Aws,
                "p3.2xlarge",
                Some(("V100", 1.0)),
                8.0,
                "us-east-1",
                "use1-az1",
            ),
            offer(Cloud::Aws, "g6.xlarge", Some(("L4", 1.0)), 4.0, "us-west-2", "usw2-az1"),
            offer(
                Cloud::Aws,
                "g5.xlarge",
                Some(("A10G", 1.0)),
                4.0,
                "us-west-2",
                "usw2-az1",
            ),
            offer(
                Cloud::Gcp,
                "a2-highgpu-8g",
                Some(("A100", 8.0)),
                96.0,
                "us-central1",
                "us-central1-a",
            ),
            offer(
                Cloud::Gcp,
                "n1-standard-4",
                Some(("T4", 1.0)),
                4.0,
                "us-central1",
                "us-central1-b",
            ),
            offer(
                Cloud::Gcp,
                "g2-standard-4",
                Some(("L4", 1.0)),
                4.0,
                "us-central1",
                "us-central1-a",
            ),
        ])
    }

    #[allow(clippy::unnecessary_wraps)] // has the signature of an environment lookup
    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(yaml: &str) -> Result<Task, TaskError> {
        parse_task_with_env(Path::new("t.yaml"), yaml.as_bytes(), &vocab(), &no_env)
    }

    fn ok(yaml: &str) -> Task {
        parse(yaml).unwrap_or_else(|e| panic!("{}", e.render()))
    }

    /// The one-line message of the error `yaml` must produce.
    fn err(yaml: &str) -> String {
        match parse(yaml) {
            Ok(task) => panic!("expected an error, parsed {task:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[allow(clippy::unnecessary_wraps)] // compared with `Resources::accelerator`
    fn acc(name: &str, count: f64) -> Option<AcceleratorRequest> {
        Some(AcceleratorRequest {
            name: name.into(),
            count,
        })
    }

    fn accelerators(task: &Task) -> Vec<String> {
        task.resources
            .options
            .iter()
            .map(|o| o.accelerator.as_ref().map_or("-".into(), ToString::to_string))
            .collect()
    }

    #[test]
    fn a_minimal_task_gets_defaults() {
        let task = ok("run: echo hello\n");
        assert_eq!(task.run.as_deref(), Some("echo hello"));
        assert_eq!(task.num_nodes, 1);
        assert_eq!(task.resources.options, vec![Resources::default()]);
        assert_eq!(task.resources.preference, Preference::Cheapest);
        let task = ok("run: x\nresources:\n");
        assert_eq!(task.resources.options, vec![Resources::default()]);
    }

    #[test]
    fn every_top_level_field_is_read() {
        let yaml = "\
name: train
workdir: src
num_nodes: 2
envs:
  A: text
  B: 1.50
  C: 0x1F
  D: true
secrets:
  TOKEN: abc
file_mounts:
  /data: ./data
setup: |
  pip install x
run: |
  python train.py
  echo done
resources:
  disk_size: 256
  image_id: docker:pytorch/pytorch
  ports: [8080, \"10000-10010\"]
  labels: {team: ml, tier: 1}
";
        let task = parse_task_with_env(Path::new("jobs/t.yaml"), yaml.as_bytes(), &vocab(), &no_env).unwrap();
        assert_eq!(task.name.as_deref(), Some("train"));
        assert_eq!(task.workdir, Some(PathBuf::from("jobs/src")));
        assert_eq!(task.num_nodes, 2);
        let envs: Vec<(&str, &str)> = task.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(envs, vec![("A", "text"), ("B", "1.50"), ("C", "0x1F"), ("D", "true")]);
        assert_eq!(task.secrets.get("TOKEN").map(String::as_str), Some("abc"));
        assert_eq!(task.file_mounts.get("/data").map(String::as_str), Some("./data"));
        assert_eq!(task.setup.as_deref(), Some("pip install x\n"));
        assert_eq!(task.run.as_deref(), Some("python train.py\necho done\n"));
        assert_eq!(task.resources.disk_size, Some(256));
        assert_eq!(task.resources.image_id.as_deref(), Some("docker:pytorch/pytorch"));
        assert_eq!(task.resources.ports, vec!["8080".to_owned(), "10000-10010".to_owned()]);
        assert_eq!(task.resources.labels.get("tier").map(String::as_str), Some("1"));
        assert_eq!(task.path, PathBuf::from("jobs/t.yaml"));
    }

    #[test]
    fn env_values_round_trip_byte_exact() {
        let value = r#"it's "x" $(whoami) ; rm -rf /"#;
        let task = ok(r#"envs:
  TRICKY: "it's \"x\" $(whoami) ; rm -rf /"
  SINGLE: 'it''s "x" $(whoami) ; rm -rf /'
"#);
        assert_eq!(task.envs.get("TRICKY").map(String::as_str), Some(value));
        assert_eq!(task.envs.get("SINGLE").map(String::as_str), Some(value));
    }

    #[test]
    fn null_envs_come_from_the_lookup_or_are_reported() {
        let yaml = "run: x\nenvs:\n  HF_TOKEN:\n";
        let lookup = |key: &str| (key == "HF_TOKEN").then(|| "secret".to_owned());
        let task = parse_task_with_env(Path::new("t.yaml"), yaml.as_bytes(), &vocab(), &lookup).unwrap();
        assert_eq!(task.envs.get("HF_TOKEN").map(String::as_str), Some("secret"));
        let e = parse(yaml).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.yaml:3:3: env `HF_TOKEN` has no value in the file and `HF_TOKEN` is not set in the environment"
        );
        assert!(e.hint.unwrap().contains("--env HF_TOKEN=VALUE"));
    }

    #[test]
    fn accelerator_strings() {
        let one = |spec: &str| {
            ok(&format!("resources:\n  accelerators: {spec}\n")).resources.options[0]
                .accelerator
                .clone()
        };
        assert_eq!(one("A100:8"), acc("A100", 8.0));
        assert_eq!(one("a100"), acc("A100", 1.0), "catalog spelling, count 1");
        assert_eq!(one("L4:0.5"), acc("L4", 0.5));
        assert_eq!(one("'H100: 8'"), acc("H100", 8.0));
    }

    #[test]
    fn accelerator_mappings_are_alternatives_and_lists_are_ordered() {
        let task = ok("resources:\n  accelerators: {L4: 1, A10G: 2}\n");
        assert_eq!(accelerators(&task), vec!["L4:1", "A10G:2"]);
        assert_eq!(task.resources.preference, Preference::Cheapest);

        let task = ok("resources:\n  accelerators:\n    L4:\n    A100: 8\n");
        assert_eq!(accelerators(&task), vec!["L4:1", "A100:8"], "a null count is 1");

        let task = ok("resources:\n  accelerators: {A100:8, H100:8}\n");
        assert_eq!(
            accelerators(&task),
            vec!["A100:8", "H100:8"],
            "counts written into the keys"
        );

        let task = ok("resources:\n  accelerators: [V100:1, T4:1]\n");
        assert_eq!(accelerators(&task), vec!["V100:1", "T4:1"]);
        assert_eq!(task.resources.preference, Preference::Ordered);

        let task = ok("resources:\n  accelerators:\n    - V100: 1\n    - T4\n");
        assert_eq!(accelerators(&task), vec!["V100:1", "T4:1"]);
        assert_eq!(task.resources.preference, Preference::Ordered);
    }

    #[test]
    fn bad_accelerators_point_at_the_value() {
        assert_eq!(
            err("run: x\nresources:\n  accelerators: A100:eight\n"),
            "t.yaml:3:17: invalid accelerator `A100:eight`: count `eight` is not a number"
        );
        assert_eq!(
            err("resources:\n  accelerators: A100:0\n"),
            "t.yaml:2:17: invalid accelerator `A100:0`: count must be positive, found `0`"
        );
        assert_eq!(
            err("resources:\n  accelerators: A100:-1\n"),
            "t.yaml:2:17: invalid accelerator `A100:-1`: count must be positive, found `-1`"
        );
        assert_eq!(
            err("resources:\n  accelerators: A1000:8\n"),
            "t.yaml:2:17: unknown accelerator `A1000`; did you mean `A100`?"
        );
        assert_eq!(
            err("resources:\n  accelerators: {L4: 0}\n"),
            "t.yaml:2:22: invalid accelerator `L4`: count must be positive, found `0`"
        );
        assert_eq!(
            err("resources:\n  accelerators: []\n"),
            "t.yaml:2:17: `accelerators` is empty"
        );
        assert_eq!(
            err("resources:\n  accelerators: 8\n"),
            "t.yaml:2:17: `resources.accelerators` must be an accelerator such as `A100:8`, a list or a mapping of them, found an integer `8`"
        );
    }

    #[test]
    fn any_of_items_inherit_and_override_the_outer_fields() {
        let task = ok("\
resources:
  cpus: 4+
  use_spot: true
  any_of:
    - {cloud: aws, accelerators: L4:1}
    - {cloud: gcp, accelerators: L4:1, use_spot: false}
");
        let options = &task.resources.options;
        assert_eq!(options.len(), 2);
        assert_eq!(options[0].cloud, Some(Cloud::Aws));
        assert_eq!(options[1].cloud, Some(Cloud::Gcp));
        assert!(
            options
                .iter()
                .all(|o| o.cpus == Some(Amount::AtLeast(4.0)) && o.accelerator == acc("L4", 1.0))
        );
        assert!(options[0].use_spot);
        assert!(!options[1].use_spot);
        assert_eq!(task.resources.preference, Preference::Cheapest);
    }

    #[test]
    fn ordered_items_keep_their_order_times_accelerator_alternatives() {
        let task = ok("\
resources:
  ordered:
    - {infra: gcp, accelerators: {A100: 8}}
    - {infra: aws/us-east-1, accelerators: {A100: 8, H100: 8}}
");
        let shown: Vec<String> = task.resources.options.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec!["A100:8, gcp", "A100:8, aws/us-east-1", "H100:8, aws/us-east-1"]
        );
        assert_eq!(task.resources.preference, Preference::Ordered);
    }

    #[test]
    fn an_ordered_accelerator_list_with_any_of_orders_by_accelerator_first() {
        let task = ok("\
resources:
  accelerators: [H100:8, A100:8]
  any_of:
    - cloud: aws
    - cloud: gcp
");
        let shown: Vec<String> = task.resources.options.iter().map(ToString::to_string).collect();
        assert_eq!(shown, vec!["H100:8, aws", "H100:8, gcp", "A100:8, aws", "A100:8, gcp"]);
        assert_eq!(task.resources.preference, Preference::Ordered);
    }

    #[test]
    fn any_of_rejects_what_it_cannot_hold() {
        assert_eq!(
            err("resources:\n  any_of:\n    - disk_size: 100\n"),
            "t.yaml:3:7: `disk_size` is not supported inside `any_of`"
        );
        assert_eq!(
            err("resources:\n  any_of:\n    - clod: aws\n"),
            "t.yaml:3:7: unknown field `clod` in `resources.any_of`; did you mean `cloud`?"
        );
        assert_eq!(
            err("resources:\n  any_of: [{cloud: aws}]\n  ordered: [{cloud: gcp}]\n"),
            "t.yaml:3:3: `ordered` cannot be combined with `any_of`"
        );
        assert_eq!(err("resources:\n  any_of: []\n"), "t.yaml:2:11: `any_of` is empty");
    }

    #[test]
    fn infra_sets_cloud_region_and_zone() {
        let one = |infra: &str| ok(&format!("resources:\n  infra: {infra}\n")).resources.options[0].clone();
        let full = one("aws/us-east-1/use1-az1");
        assert_eq!(
            (full.cloud, full.region.as_deref(), full.zone.as_deref()),
            (Some(Cloud::Aws), Some("us-east-1"), Some("use1-az1"))
        );
        let region = one("gcp/us-central1");
        assert_eq!(
            (region.cloud, region.region.as_deref(), region.zone),
            (Some(Cloud::Gcp), Some("us-central1"), None)
        );
        let any_cloud = one("'*/us-west-2'");
        assert_eq!(
            (any_cloud.cloud, any_cloud.region.as_deref()),
            (None, Some("us-west-2"))
        );
        assert_eq!(one("AWS").cloud, Some(Cloud::Aws));
    }

    #[test]
    fn infra_errors_point_at_the_bad_part() {
        assert_eq!(
            err("resources:\n  infra: aws/us-east-9\n"),
            "t.yaml:2:14: unknown region of aws `us-east-9`; did you mean `us-east-1`?"
        );
        assert_eq!(
            err("resources:\n  infra: \"awz/us-east-1\"\n"),
            "t.yaml:2:11: unknown cloud `awz`; did you mean `aws`?"
        );
        assert_eq!(
            err("resources:\n  infra: aws/us-east-1/use1-az9\n"),
            "t.yaml:2:24: unknown zone of aws `use1-az9`; did you mean one of `use1-az1`, `use1-az2`?"
        );
        assert_eq!(
            err("resources:\n  infra: aws/a/b/c\n"),
            "t.yaml:2:10: `infra` must be `cloud[/region[/zone]]`, found `aws/a/b/c`"
        );
        assert_eq!(
            err("resources:\n  cloud: aws\n  infra: aws\n"),
            "t.yaml:3:10: `infra` cannot be combined with `cloud`, `region` or `zone`"
        );
    }

    #[test]
    fn cloud_region_zone_and_instance_type_are_checked() {
        assert_eq!(
            err("resources:\n  cloud: awz\n"),
            "t.yaml:2:10: unknown cloud `awz`; did you mean `aws`?"
        );
        assert_eq!(
            err("resources:\n  cloud: aws\n  region: us-east-9\n"),
            "t.yaml:3:11: unknown region of aws `us-east-9`; did you mean `us-east-1`?"
        );
        assert_eq!(
            err("resources:\n  cloud: gcp\n  region: us-east-1\n"),
            "t.yaml:3:11: unknown region of gcp `us-east-1`"
        );
        let task = ok("resources:\n  region: us-central1\n  zone: us-central1-a\n");
        assert_eq!(task.resources.options[0].zone.as_deref(), Some("us-central1-a"));
        assert_eq!(
            err("resources:\n  instance_type: m6i.2xlarg\n"),
            "t.yaml:2:18: unknown instance type `m6i.2xlarg`; did you mean `m6i.2xlarge`?"
        );
    }

    #[test]
    fn an_instance_type_that_contradicts_the_rest_is_an_error() {
        let e = parse("resources:\n  cpus: 4\n  instance_type: m6i.2xlarge\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.yaml:3:18: `instance_type` contradicts the other resources: `m6i.2xlarge` on aws has 8 vCPUs, but cpus: 4 was asked"
        );
        assert_eq!(e.width, "m6i.2xlarge".len());
        let fine = ok("resources:\n  cpus: 8\n  instance_type: m6i.2xlarge\n");
        assert_eq!(fine.resources.options[0].instance_type.as_deref(), Some("m6i.2xlarge"));
    }

    #[test]
    fn num_nodes_must_be_a_positive_whole_number() {
        assert_eq!(
            err("run: x\nnum_nodes: -2\n"),
            "t.yaml:2:12: `num_nodes` must be at least 1, found `-2`"
        );
        assert_eq!(
            err("num_nodes: 2.5\n"),
            "t.yaml:1:12: `num_nodes` must be a whole number, found `2.5`"
        );
        assert_eq!(
            err("num_nodes: two\n"),
            "t.yaml:1:12: `num_nodes` must be a whole number, found a string \"two\""
        );
        assert_eq!(
            err("num_nodes: [1]\n"),
            "t.yaml:1:12: `num_nodes` must be a whole number, found a list"
        );
        assert_eq!(ok("num_nodes: 4\n").num_nodes, 4);
    }

    #[test]
    fn wrong_types_say_what_was_found() {
        assert_eq!(
            err("envs: 3\n"),
            "t.yaml:1:7: `envs` must be a mapping, found an integer `3`"
        );
        assert_eq!(
            err("resources:\n  use_spot: \"maybe\"\n"),
            "t.yaml:2:13: `resources.use_spot` must be `true` or `false`, found a string \"maybe\""
        );
        let e = parse("name: 2024\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.yaml:1:7: `name` must be a string, found an integer `2024`"
        );
        assert_eq!(e.hint.as_deref(), Some("quote it to make it text: `\"2024\"`"));
        assert_eq!(
            err("resources:\n  cpus: {a: 1}\n"),
            "t.yaml:2:9: `resources.cpus` must be a number such as `8` or `8+`, found a mapping"
        );
        assert_eq!(
            err("resources:\n  cpus: 0\n"),
            "t.yaml:2:9: invalid `cpus`: must be a positive number, found `0`"
        );
        let task = ok("resources:\n  cpus: 8+\n  memory: 0.5\n");
        assert_eq!(task.resources.options[0].cpus, Some(Amount::AtLeast(8.0)));
        assert_eq!(task.resources.options[0].memory, Some(Amount::Exact(0.5)));
    }

    #[test]
    fn unknown_and_unsupported_fields() {
        assert_eq!(
            err("run: x\nrnu: y\n"),
            "t.yaml:2:1: unknown field `rnu`; did you mean `run`?"
        );
        assert_eq!(
            err("resources:\n  acelerators: A100:8\n"),
            "t.yaml:2:3: unknown field `acelerators` in `resources`; did you mean `accelerators`?"
        );
        assert_eq!(
            err("run: x\nservice:\n  replicas: 2\n"),
            "t.yaml:2:1: broker does not support `service` yet"
        );
        assert_eq!(
            err("resources:\n  autostop: 10\n"),
            "t.yaml:2:3: broker does not support `autostop` in `resources` yet"
        );
        assert_eq!(
            err("file_mounts:\n  /data:\n    source: s3://bucket\n"),
            "t.yaml:2:3: broker does not support bucket mounts in `file_mounts` yet"
        );
    }

    #[test]
    fn env_keys_must_be_shell_names() {
        assert_eq!(
            err("envs:\n  OK: 1\n  1BAD: x\n"),
            "t.yaml:3:3: env key `1BAD` is not a valid shell variable name"
        );
        assert_eq!(
            err("secrets:\n  my-token: x\n"),
            "t.yaml:2:3: secret key `my-token` is not a valid shell variable name"
        );
        assert_eq!(
            err("envs:\n  A: [1]\n"),
            "t.yaml:2:6: `envs.A` must be a string, number or boolean, found a list"
        );
    }

    #[test]
    fn ports_are_checked() {
        assert_eq!(
            ok("resources:\n  ports: 8080\n").resources.ports,
            vec!["8080".to_owned()]
        );
        assert_eq!(
            err("resources:\n  ports: 70000\n"),
            "t.yaml:2:10: port `70000` is out of range"
        );
        assert_eq!(
            err("resources:\n  ports: \"20-10\"\n"),
            "t.yaml:2:10: port range `20-10` ends before it starts"
        );
        assert_eq!(
            err("resources:\n  ports: [80, http]\n"),
            "t.yaml:2:15: `http` is not a port or a port range"
        );
    }

    #[test]
    fn yaml_problems_are_located() {
        assert_eq!(err("run: x\nrun: y\n"), "t.yaml:2:1: duplicate key `run`");
        let e = parse("resources:\n  cpus: 4\n  cpus: 8\n").unwrap_err();
        assert_eq!((e.line, e.col, e.width), (3, 3, 4));
        assert_eq!(
            err("run: [x\n"),
            "t.yaml:2:1: invalid YAML: while parsing a flow sequence, expected ',' or ']'"
        );
        assert_eq!(
            err("a: b: c\n"),
            "t.yaml:1:5: invalid YAML: mapping values are not allowed in this context"
        );
        assert_eq!(err(""), "t.yaml:1:1: task file is empty");
        assert_eq!(err("# nothing\n"), "t.yaml:1:1: task file is empty");
        assert_eq!(err("null\n"), "t.yaml:1:1: task file is empty");
        assert_eq!(
            err("\n- run\n- x\n"),
            "t.yaml:2:1: a task file must be a mapping of fields (`run`, `resources`, ...), found a list"
        );
        assert_eq!(
            err("run: x\n---\nrun: y\n"),
            "t.yaml:3:1: task file holds more than one YAML document"
        );
    }

    #[test]
    fn crlf_bom_and_a_trailing_document_marker_are_fine() {
        assert_eq!(
            err("\u{feff}run: x\r\nnum_nodes: -2\r\n"),
            "t.yaml:2:12: `num_nodes` must be at least 1, found `-2`"
        );
        let e = parse("run: x\r\nnum_nodes: -2\r\n").unwrap_err();
        assert_eq!(e.snippet.as_deref(), Some("num_nodes: -2"));
        assert_eq!(ok("run: x\n---\n").run.as_deref(), Some("x"));
    }

    #[test]
    fn an_unclosed_bracket_gets_a_hint() {
        let e = parse("name: x\nresources: {cpus: 4\nrun: y\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(
            e.hint.as_deref(),
            Some("check that every `{` and `[` before this point is closed")
        );
        let tabs = parse("resources:\n\tcpus: 4\n").unwrap_err();
        assert!(tabs.hint.unwrap().contains("indent with spaces"));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_located() {
        let e = parse_task_with_env(Path::new("t.yaml"), b"run: x\nname: caf\xe9\n", &vocab(), &no_env).unwrap_err();
        assert_eq!(e.to_string(), "t.yaml:2:10: task file is not valid UTF-8");
        assert_eq!(
            e.hint.as_deref(),
            Some("byte 0xe9 is not UTF-8; save the file as UTF-8")
        );
        assert_eq!(e.snippet.as_deref(), Some("name: caf\u{fffd}"));
    }

    #[test]
    fn render_underlines_the_token() {
        let e = parse("run: x\nresources:\n  accelerators: A1000:8\n").unwrap_err();
        assert_eq!(
            e.render(),
            "t.yaml:3:17: unknown accelerator `A1000`\n   |\n 3 |   accelerators: A1000:8\n   |                 ^^^^^^^\nhint: did you mean `A100`?"
        );
    }

    #[test]
    fn spec_and_amount_helpers() {
        assert_eq!(
            parse_accelerator_spec("A100:8"),
            Ok(AcceleratorRequest {
                name: "A100".into(),
                count: 8.0
            })
        );
        assert_eq!(
            parse_accelerator_spec("T4"),
            Ok(AcceleratorRequest {
                name: "T4".into(),
                count: 1.0
            })
        );
        assert_eq!(
            parse_accelerator_spec("A100:eight"),
            Err("count `eight` is not a number".to_owned())
        );
        assert_eq!(
            parse_accelerator_spec(":8"),
            Err("the accelerator name is missing".to_owned())
        );
        assert_eq!(
            parse_accelerator_spec("A100:"),
            Err("the count after `:` is missing".to_owned())
        );
        assert_eq!(
            parse_accelerator_spec("A100:inf"),
            Err("count `inf` is not a finite number".to_owned())
        );
        assert_eq!(parse_amount("8"), Ok(Amount::Exact(8.0)));
        assert_eq!(parse_amount("8+"), Ok(Amount::AtLeast(8.0)));
        assert_eq!(parse_amount("8.0+"), Ok(Amount::AtLeast(8.0)));
        assert_eq!(parse_amount("0.5"), Ok(Amount::Exact(0.5)));
        assert_eq!(
            parse_amount("-1"),
            Err("must be a positive number, found `-1`".to_owned())
        );
        assert_eq!(
            parse_amount("x+"),
            Err("`x` is not a number (write `8` or `8+`)".to_owned())
        );
        assert!(is_shell_name("_A1") && !is_shell_name("1A") && !is_shell_name("") && !is_shell_name("A-B"));
    }

    #[test]
    fn key_extraction_for_duplicates() {
        assert_eq!(key_at_start("run: x"), "run");
        assert_eq!(key_at_start("\"a: b\": x"), "\"a: b\"");
        assert_eq!(key_at_start("url:http: x"), "url:http");
    }
}
