//! Turns errors into what the user reads on stderr, and into exit codes.
//!
//! One `error:` line per problem, then `hint:` lines; task-file errors also show the offending
//! line with a caret under the column. Plain text only, so output is the same in logs and tests.

use crate::catalog::CatalogError;
use crate::commands::{ExitStatus, UserError};
use crate::optimizer::NoOffer;
use crate::output;
use crate::task::{OverrideError, TaskError};
use crate::vocabulary::Unknown;

/// Prints `err` and returns the exit status its kind calls for.
pub fn report(err: &anyhow::Error) -> ExitStatus {
    if let Some(task) = err.downcast_ref::<TaskError>() {
        output::message(&format!("error: {}", task.render()));
        return ExitStatus::UserError;
    }
    if err.downcast_ref::<crate::commands::Interrupted>().is_some() {
        output::message("error: interrupted");
        return ExitStatus::Interrupted;
    }
    if let Some(deadline) = err.downcast_ref::<crate::commands::DeadlineExceeded>() {
        output::message(&format!("error: {deadline}"));
        return ExitStatus::DeadlineExceeded;
    }
    if let Some(no_offer) = err.downcast_ref::<NoOffer>() {
        output::message("error: no offer satisfies the request");
        for reason in &no_offer.reasons {
            output::message(&format!("  - {reason}"));
        }
        output::message(
            "hint: relax a constraint (region, zone, count, memory, price cap), or see `broker cost` for what exists",
        );
        return ExitStatus::NoOffer;
    }
    if let Some(user) = err.downcast_ref::<UserError>() {
        output::message(&format!("error: {}", chain(err)));
        if let Some(hint) = &user.hint {
            output::message(&format!("hint: {hint}"));
        }
        return ExitStatus::UserError;
    }
    if err.downcast_ref::<OverrideError>().is_some() || err.downcast_ref::<Unknown>().is_some() {
        output::message(&format!("error: {}", chain(err)));
        return ExitStatus::UserError;
    }
    if err.downcast_ref::<CatalogError>().is_some() {
        output::message(&format!("error: {}", chain(err)));
        output::message("hint: fix or remove the file; without it broker uses the catalog embedded in the binary");
        return ExitStatus::Failure;
    }
    output::message(&format!("error: {}", chain(err)));
    ExitStatus::Failure
}

/// `outer: inner: innermost`, skipping a cause whose text the outer message already contains.
fn chain(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
