//! `broker queue`: a cluster's jobs, as the head node's agent reports them.

use std::time::{Duration, UNIX_EPOCH};

use crate::cli::QueueArgs;
use crate::commands::{ExitStatus, nodes};
use crate::output;
use crate::output::table::JobRow;
use crate::ssh;
use crate::state::{self, JobRecord, StateDb};

pub(super) async fn run(args: &QueueArgs) -> anyhow::Result<ExitStatus> {
    let home = nodes::home()?;
    let db = StateDb::open(&home.join("state.db"))?;
    let cluster = nodes::cluster(&db, &args.cluster)?;
    let live = match nodes::connect_head(&home, &cluster).await {
        Ok(head) => match ssh::list(&head.session).await {
            Ok(jobs) => Some(jobs),
            Err(e) => {
                output::message(&format!(
                    "warning: cannot ask the head node for its jobs: {e}; showing the recorded states"
                ));
                None
            }
        },
        Err(e) => {
            output::message(&format!("warning: {e:#}; showing the recorded states"));
            None
        }
    };
    let mut rows = Vec::new();
    for job in db.jobs(&cluster.name)? {
        let live_state = live
            .as_ref()
            .and_then(|jobs| jobs.iter().find(|(id, _)| *id == job.job_id))
            .map(|(_, s)| *s);
        rows.push(row(&db, &job, live_state)?);
    }
    if args.json {
        output::data(&output::json::to_string(&rows));
    } else if rows.is_empty() {
        output::message(&format!(
            "no jobs on `{}`; `broker exec {} COMMAND` runs one",
            cluster.name, cluster.name
        ));
    } else {
        output::data(&output::table::render_jobs(&rows));
    }
    Ok(ExitStatus::Success)
}

/// The job as shown: an ended state recorded in the database wins (it holds every rank's
/// outcome); otherwise what the head node says, which is also recorded once it is final.
fn row(db: &StateDb, job: &JobRecord, live: Option<ssh::JobState>) -> anyhow::Result<JobRow> {
    let cluster: broker_provider::ClusterName = job.cluster.parse()?;
    let (state, exit_code) = match live {
        _ if job.state.is_terminal() => (job.state.as_str().to_owned(), job.exit_code),
        None => (job.state.as_str().to_owned(), job.exit_code),
        Some(ssh::JobState::Queued) => ("queued".to_owned(), None),
        Some(ssh::JobState::Running) => {
            if job.state != state::JobState::Running {
                db.set_job(&cluster, job.job_id, state::JobState::Running, None)?;
            }
            ("running".to_owned(), None)
        }
        Some(ssh::JobState::Exited(code)) => {
            let ended = if code == 0 {
                state::JobState::Succeeded
            } else {
                state::JobState::Failed
            };
            db.set_job(&cluster, job.job_id, ended, Some(code))?;
            (ended.as_str().to_owned(), Some(code))
        }
        Some(ssh::JobState::Lost) => {
            db.set_job(&cluster, job.job_id, state::JobState::Failed, None)?;
            ("lost".to_owned(), None)
        }
    };
    Ok(JobRow {
        id: job.job_id,
        name: job.name.clone(),
        state,
        exit_code,
        submitted_at: job.submitted_at,
        submitted: timestamp(job.submitted_at),
    })
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of Unix seconds.
fn timestamp(secs: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    let day = crate::date::Date::from_system_time(time);
    let of_day = secs.rem_euclid(86_400);
    format!("{day} {:02}:{:02}:{:02}", of_day / 3600, of_day / 60 % 60, of_day % 60)
}
