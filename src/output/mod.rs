//! Everything broker writes for people and scripts: stdout carries data (tables, JSON), stderr
//! carries messages. This module is the only place that writes to either.

pub mod json;
pub mod table;

use std::io::Write;

/// Writes `text` to stdout, adding a newline if it lacks one.
///
/// A closed pipe (`broker cost | head`) is not an error worth a message.
pub fn data(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// Writes one message line to stderr.
pub fn message(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// Writes a question to stderr without a newline, for a `[y/N]` prompt.
pub fn prompt(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{text}");
    let _ = err.flush();
}

/// One line of a job's output, on stdout: it is the job's data, not broker's.
pub fn job_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A spinner on stderr; hidden when stderr is not a terminal or `BROKER_NO_PROGRESS` is set, so
/// logs and tests see plain lines only.
pub fn spinner(message: &str) -> indicatif::ProgressBar {
    spinner_unless(false, message)
}

/// [`spinner`], also hidden when `quiet` (`--quiet`, `--json`).
pub fn spinner_unless(quiet: bool, message: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    let hidden = quiet
        || std::env::var_os(crate::env::EnvVars::BROKER_NO_PROGRESS).is_some()
        || !std::io::stderr().is_terminal();
    let bar = if hidden {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new_spinner()
    };
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// One stage of a launch (provision, SSH, sync, job start) shown as a spinner while it runs and
/// as one line with its duration when it ends. Messages printed meanwhile go above the spinner.
pub struct Stage {
    bar: indicatif::ProgressBar,
    name: &'static str,
    started: std::time::Instant,
    quiet: bool,
}

impl Stage {
    /// Starts showing `name: detail`.
    pub fn start(quiet: bool, name: &'static str, detail: &str) -> Self {
        Self {
            bar: spinner_unless(quiet, &format!("{name}: {detail}")),
            name,
            started: std::time::Instant::now(),
            quiet,
        }
    }

    /// Prints a message line without tearing the spinner.
    pub fn message(&self, text: &str) {
        self.bar.suspend(|| message(text));
    }

    /// Ends the stage; with a spinner showing, leaves `name: summary (N s)` in its place.
    pub fn done(self, summary: &str) {
        let shown = !self.bar.is_hidden();
        self.bar.finish_and_clear();
        if shown && !self.quiet {
            message(&format!(
                "{}: {summary} ({:.1} s)",
                self.name,
                self.started.elapsed().as_secs_f64()
            ));
        }
    }
}
