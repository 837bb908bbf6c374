//! Task-file errors: what went wrong and where, rendered like a compiler diagnostic.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::vocabulary::Unknown;

/// A problem in a task file, located at a 1-based line and column.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskError {
    /// The task file, as it was named on the command line.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong.
    pub kind: TaskErrorKind,
    /// The offending source line, without its line break.
    pub snippet: Option<String>,
    /// Advice on how to fix it, beyond any "did you mean".
    pub hint: Option<String>,
    /// How many characters the offending token spans (at least 1), for the caret run.
    pub width: usize,
}

/// The kinds of task-file errors.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TaskErrorKind {
    /// The bytes are not UTF-8.
    NotUtf8,
    /// The YAML does not parse; the scanner's message.
    Syntax(String),
    /// The file holds no document, or only `null`.
    Empty,
    /// The file holds more than one YAML document.
    MultipleDocuments,
    /// The document is not a mapping of fields.
    NotAMapping {
        /// What it is instead (`a list`).
        found: String,
    },
    /// A key appears twice in one mapping.
    DuplicateKey {
        /// The key, as written.
        key: String,
    },
    /// A field broker does not know.
    UnknownField {
        /// As written.
        field: String,
        /// The enclosing section (`resources`), `None` at the top level.
        section: Option<String>,
        /// Close known field names.
        suggestions: Vec<String>,
    },
    /// A SkyPilot feature broker does not implement yet.
    Unsupported {
        /// What is not supported (`` `service` ``, `` bucket mounts in `file_mounts` ``).
        what: String,
    },
    /// A value of the wrong YAML type.
    WrongType {
        /// Dotted path of the field (`resources.use_spot`).
        field: String,
        /// What it must be (`true or false`).
        expected: String,
        /// What it is (`a string "maybe"`).
        found: String,
    },
    /// A value of the right type that is still not acceptable.
    InvalidValue {
        /// Dotted path of the field, for callers that match on it.
        field: String,
        /// The whole sentence, naming the field.
        message: String,
    },
    /// An accelerator, cloud, region, zone or instance type that is in no catalog.
    Unknown(Unknown),
    /// An `instance_type` pin that cannot hold together with the other resources.
    Contradiction(String),
}

impl TaskErrorKind {
    /// The message without the "did you mean" part, which `render` puts on a hint line.
    fn short(&self) -> String {
        match self {
            Self::NotUtf8 => "task file is not valid UTF-8".to_owned(),
            Self::Syntax(message) => format!("invalid YAML: {message}"),
            Self::Empty => "task file is empty".to_owned(),
            Self::MultipleDocuments => "task file holds more than one YAML document".to_owned(),
            Self::NotAMapping { found } => {
                format!("a task file must be a mapping of fields (`run`, `resources`, ...), found {found}")
            }
            Self::DuplicateKey { key } => format!("duplicate key `{key}`"),
            Self::UnknownField {
                field, section: None, ..
            } => format!("unknown field `{field}`"),
            Self::UnknownField {
                field,
                section: Some(section),
                ..
            } => {
                format!("unknown field `{field}` in `{section}`")
            }
            Self::Unsupported { what } => format!("broker does not support {what} yet"),
            Self::WrongType { field, expected, found } => format!("`{field}` must be {expected}, found {found}"),
            Self::InvalidValue { message, .. } => message.clone(),
            Self::Unknown(unknown) => format!("unknown {} `{}`", unknown.what, unknown.given),
            Self::Contradiction(why) => format!("`instance_type` contradicts the other resources: {why}"),
        }
    }

    fn suggestions(&self) -> &[String] {
        match self {
            Self::UnknownField { suggestions, .. } => suggestions,
            Self::Unknown(unknown) => &unknown.suggestions,
            _ => &[],
        }
    }
}

/// `did you mean `x`?` / `did you mean one of `x`, `y`?`, matching `Unknown`'s wording.
fn did_you_mean(suggestions: &[String]) -> Option<String> {
    match suggestions {
        [] => None,
        [one] => Some(format!("did you mean `{one}`?")),
        many => {
            let quoted: Vec<String> = many.iter().map(|s| format!("`{s}`")).collect();
            Some(format!("did you mean one of {}?", quoted.join(", ")))
        }
    }
}

impl fmt::Display for TaskErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())?;
        if let Some(suggestion) = did_you_mean(self.suggestions()) {
            write!(f, "; {suggestion}")?;
        }
        Ok(())
    }
}

impl TaskError {
    /// An error at 1-based `line` and `col` of `source`, covering `width` characters.
    pub(crate) fn new(path: &Path, source: &str, line: usize, col: usize, width: usize, kind: TaskErrorKind) -> Self {
        let snippet = source
            .split('\n')
            .nth(line.saturating_sub(1))
            .map(|l| l.trim_end_matches('\r').to_owned());
        Self {
            path: path.to_owned(),
            line,
            col,
            kind,
            snippet,
            hint: None,
            width: width.max(1),
        }
    }

    /// Adds advice on how to fix it.
    #[must_use]
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The one-line message, then the source line with a caret run under the offending
    /// token, then `hint:` lines. Plain text, so it reads the same in a terminal and a log.
    pub fn render(&self) -> String {
        let mut lines = vec![format!(
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.col,
            self.kind.short()
        )];
        if let Some(snippet) = &self.snippet {
            let number = self.line.to_string();
            let gutter = " ".repeat(number.len() + 2);
            // Copy tabs from the source line so the caret lines up however tabs are shown.
            let pad: String = snippet
                .chars()
                .take(self.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let available = snippet.chars().count().saturating_sub(self.col.saturating_sub(1));
            let carets = "^".repeat(self.width.min(available).max(1));
            lines.push(format!("{gutter}|"));
            lines.push(format!(" {number} | {snippet}"));
            lines.push(format!("{gutter}| {pad}{carets}"));
        }
        if let Some(suggestion) = did_you_mean(self.kind.suggestions()) {
            lines.push(format!("hint: {suggestion}"));
        }
        if let Some(hint) = &self.hint {
            lines.push(format!("hint: {hint}"));
        }
        lines.join("\n")
    }
}

impl fmt::Display for TaskError {
    /// One line: ``train.yaml:4:3: unknown field `acelerators` in `resources`; did you mean `accelerators`?``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.path.display(), self.line, self.col, self.kind)
    }
}

impl std::error::Error for TaskError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown_field() -> TaskError {
        let source = "run: x\nresources:\n  acelerators: A100:8\n";
        TaskError::new(
            Path::new("train.yaml"),
            source,
            3,
            3,
            11,
            TaskErrorKind::UnknownField {
                field: "acelerators".into(),
                section: Some("resources".into()),
                suggestions: vec!["accelerators".into()],
            },
        )
    }

    #[test]
    fn display_is_one_line_with_the_suggestion() {
        assert_eq!(
            unknown_field().to_string(),
            "train.yaml:3:3: unknown field `acelerators` in `resources`; did you mean `accelerators`?"
        );
    }

    #[test]
    fn render_shows_the_line_and_a_caret_run() {
        let expected = "\
train.yaml:3:3: unknown field `acelerators` in `resources`
   |
 3 |   acelerators: A100:8
   |   ^^^^^^^^^^^
hint: did you mean `accelerators`?";
        assert_eq!(unknown_field().render(), expected);
    }

    #[test]
    fn render_keeps_tabs_and_clamps_the_caret_run() {
        let err = TaskError::new(
            Path::new("t.yaml"),
            "a:\n\tb: 1\n",
            2,
            2,
            40,
            TaskErrorKind::Syntax("tabs".into()),
        )
        .with_hint("indent with spaces");
        assert_eq!(
            err.render(),
            "t.yaml:2:2: invalid YAML: tabs\n   |\n 2 | \tb: 1\n   | \t^^^^\nhint: indent with spaces"
        );
    }

    #[test]
    fn several_suggestions_are_listed() {
        let kind = TaskErrorKind::Unknown(Unknown {
            what: "accelerator".into(),
            given: "A10".into(),
            suggestions: vec!["A100".into(), "A10G".into()],
        });
        assert_eq!(
            kind.to_string(),
            "unknown accelerator `A10`; did you mean one of `A100`, `A10G`?"
        );
    }
}
