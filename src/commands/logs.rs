//! `broker logs`: a job's output so far, or streamed until it ends.

use anyhow::Context as _;

use crate::cli::LogsArgs;
use crate::commands::{ExitStatus, nodes};
use crate::output;
use crate::state::StateDb;

pub(super) async fn run(args: &LogsArgs) -> anyhow::Result<ExitStatus> {
    let home = nodes::home()?;
    let db = StateDb::open(&home.join("state.db"))?;
    let cluster = nodes::cluster(&db, &args.cluster)?;
    let job = nodes::job(&db, &cluster.name, args.job)?;
    let connected = nodes::connect_all(&home, &cluster).await?;
    if args.follow {
        let code = nodes::follow(&db, &cluster.name, &connected, job.job_id).await?;
        return Ok(nodes::exit_status(code));
    }
    // The agent's layout: `~/.broker/jobs/<id>/log` (see `ssh/agent.sh`); ssh starts in `~`.
    let path = format!(".broker/jobs/{}/log", job.job_id);
    let many = connected.len() > 1;
    for node in &connected {
        let rank = node.node.rank;
        let log = node
            .session
            .run("cat", &[&path], None)
            .await
            .with_context(|| format!("reading job {}'s log on node {rank}", job.job_id))?;
        for line in String::from_utf8_lossy(&log).lines() {
            if many {
                output::job_line(&format!("(rank {rank}) {line}"));
            } else {
                output::job_line(line);
            }
        }
    }
    Ok(ExitStatus::Success)
}
