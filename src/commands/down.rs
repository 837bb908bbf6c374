//! `broker down`: tear clusters down, idempotently.

use anyhow::Context as _;
use broker_provider::{ClusterName, Teardown};

use crate::cli::DownArgs;
use crate::commands::{ExitStatus, UserError, clouds};
use crate::state::{ClusterState, StateDb};
use crate::{env, output, provision};

pub(super) async fn run(args: &DownArgs) -> anyhow::Result<ExitStatus> {
    let home =
        env::broker_home().ok_or_else(|| UserError::new("cannot find broker's home").with_hint("set `BROKER_HOME`"))?;
    let db = StateDb::open(&home.join("state.db"))?;
    let clusters: Vec<ClusterName> = if args.all {
        db.clusters()?
            .into_iter()
            .filter(|c| c.state != ClusterState::TornDown)
            .map(|c| c.name)
            .collect()
    } else {
        args.clusters
            .iter()
            .map(|n| n.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| UserError::new(format!("{e}")))?
    };
    if clusters.is_empty() {
        output::message("no clusters to tear down");
        return Ok(ExitStatus::Success);
    }
    if args.all && !args.yes {
        let names: Vec<String> = clusters.iter().map(ToString::to_string).collect();
        return Err(UserError::new(format!("`--all` would tear down {}", names.join(", ")))
            .with_hint("add `--yes` to confirm")
            .into());
    }
    // The clouds these clusters may have billed on; all of them for a name without a record.
    let mut wanted = std::collections::BTreeSet::new();
    for cluster in &clusters {
        match db.cluster(cluster)? {
            Some(record) if record.cloud.is_some() => {
                wanted.extend(record.cloud);
                wanted.extend(db.attempts(cluster)?.into_iter().map(|a| a.cloud));
            }
            _ => wanted.extend(clouds::all()),
        }
    }
    let providers = clouds::enabled(&wanted).await;
    for cluster in &clusters {
        let outcome = provision::teardown(&db, &providers, cluster)
            .await
            .with_context(|| format!("tearing down `{cluster}`"))?;
        match outcome {
            Teardown::Terminated(ids) => output::message(&format!("`{cluster}`: terminated {} node(s)", ids.len())),
            Teardown::AlreadyGone => output::message(&format!("`{cluster}`: nothing left to tear down")),
        }
    }
    Ok(ExitStatus::Success)
}
