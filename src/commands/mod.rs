//! One function per command, and the mapping from outcomes to exit codes.

mod catalog;
mod check;
mod clouds;
mod cost;
mod cost_report;
mod down;
mod exec;
mod interrupt;
mod launch;
mod logs;
mod nodes;
mod power;
mod queue;
mod report;
mod runs;
mod status;
mod up;

use crate::cli::{Cli, Command};
use crate::diagnostics;

/// How broker ends; the numbers are documented in the README and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: it worked.
    Success,
    /// 2: bad input (arguments, task file, unknown names).
    UserError,
    /// 3: no offer in the catalogs satisfies the request.
    NoOffer,
    /// 4: broker or a cloud failed.
    Failure,
    /// The job ran and ended with this non-zero code, passed through.
    Job(u8),
    /// 130: stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
    Interrupted,
    /// 124: `--max-duration` passed before the job ended (as `timeout(1)` reports it).
    DeadlineExceeded,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::UserError => 2,
            Self::NoOffer => 3,
            Self::Failure => 4,
            Self::Job(code) => code,
            Self::Interrupted => 130,
            Self::DeadlineExceeded => 124,
        }
    }
}

pub use interrupt::Interrupted;
pub use up::DeadlineExceeded;

/// A failure the user can fix by changing what they asked for.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UserError {
    /// One line saying what is wrong.
    pub message: String,
    /// How to fix it, if there is more to say.
    pub hint: Option<String>,
}

impl UserError {
    /// An error without a hint.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint line.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Runs a parsed command line, printing any error, and says how to exit.
pub async fn run(cli: Cli) -> ExitStatus {
    let result = match cli.command {
        Command::Cost(args) => cost::run(&args),
        Command::Launch(args) => launch::run(&args).await,
        Command::Status(args) => status::run(&args).await,
        Command::Down(args) => down::run(&args).await,
        Command::Stop(args) => power::stop(&args).await,
        Command::Start(args) => power::start(&args).await,
        Command::Autostop(args) => power::autostop(&args).await,
        Command::Check(args) => check::run(&args).await,
        Command::Logs(args) => logs::run(&args).await,
        Command::Exec(args) => exec::run(&args).await,
        Command::Queue(args) => queue::run(&args).await,
        Command::Runs(args) => runs::run(&args),
        Command::CostReport(args) => cost_report::run(&args),
        Command::Catalog(command) => catalog::run(command),
    };
    match result {
        Ok(status) => status,
        Err(err) => diagnostics::report(&err),
    }
}
