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
