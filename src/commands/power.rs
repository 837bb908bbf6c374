//! `broker stop` and `broker start`: park a cluster without losing its disks, and bring it back.
//!
//! Stopping ends compute billing but keeps disks (which still cost a little), so a stopped
//! cluster stays in `broker status` with that said. Clouds that cannot stop a node say so, and
//! the error points at `broker down`.

use anyhow::Context as _;
use broker_provider::{ClusterName, NodeState};

use crate::cli::{AutostopArgs, PowerArgs};
use crate::commands::nodes::{cluster, connect_all, home};
use crate::commands::{ExitStatus, UserError, clouds};
use crate::output;
use crate::ssh::{self, Autostop};
use crate::state::{ClusterState, StateDb};

pub(super) async fn stop(args: &PowerArgs) -> anyhow::Result<ExitStatus> {
    let home = home()?;
    let db = StateDb::open(&home.join("state.db"))?;
    for name in &args.clusters {
        let record = cluster(&db, name)?;
        let providers = clouds::enabled(&record.cloud.into_iter().collect()).await;
        let provider = provider_for(&providers, &record)?;
        let nodes = provider
            .stop(&record.name)
            .await
            .map_err(|e| unsupported_hint(e, &record.name))
            .with_context(|| format!("stopping `{}`", record.name))?;
        db.update_nodes(&record.name, &nodes)?;
        db.set_state(&record.name, ClusterState::Stopped)?;
        output::message(&format!(
            "`{}`: stopped {} node(s); disks are kept (and billed) until `broker down {}`",
            record.name,
            nodes.len(),
            record.name
        ));
    }
    Ok(ExitStatus::Success)
}

pub(super) async fn start(args: &PowerArgs) -> anyhow::Result<ExitStatus> {
    let home = home()?;
    let db = StateDb::open(&home.join("state.db"))?;
    for name in &args.clusters {
        let record = cluster(&db, name)?;
        let providers = clouds::enabled(&record.cloud.into_iter().collect()).await;
        let provider = provider_for(&providers, &record)?;
        let nodes = provider
            .start(&record.name)
            .await
            .map_err(|e| unsupported_hint(e, &record.name))
            .with_context(|| format!("starting `{}`", record.name))?;
        // Addresses change on start; the records must follow or `exec` dials the old ones.
        db.update_nodes(&record.name, &nodes)?;
        let running = nodes.iter().filter(|n| n.state == NodeState::Running).count();
        db.set_state(&record.name, ClusterState::Ready)?;
        output::message(&format!(
            "`{}`: {running} of {} node(s) running; `broker exec {} COMMAND` runs a job",
            record.name,
            nodes.len(),
            record.name
        ));
    }
    Ok(ExitStatus::Success)
}

pub(super) async fn autostop(args: &AutostopArgs) -> anyhow::Result<ExitStatus> {
    let home = home()?;
    let db = StateDb::open(&home.join("state.db"))?;
    let record = cluster(&db, &args.cluster)?;
    let setting = match args.idle {
        Some(idle) if !args.cancel => Autostop::After { idle, down: args.down },
        _ => Autostop::Cancel,
    };
    let nodes = connect_all(&home, &record).await?;
    set_everywhere(&nodes, setting).await?;
    output::message(&describe(&record.name, setting));
    Ok(ExitStatus::Success)
}

/// Sets `setting` on every node: each node's watchdog decides for itself, so a cluster whose
/// head dies still stops its workers.
pub(super) async fn set_everywhere(
    nodes: &[crate::commands::nodes::Connected],
    setting: Autostop,
) -> anyhow::Result<()> {
    futures_util::future::try_join_all(nodes.iter().map(|n| async move {
        ssh::set_autostop(&n.session, setting)
            .await
            .with_context(|| format!("setting autostop on node {}", n.node.rank))
    }))
    .await?;
    Ok(())
}

/// One line saying what the cluster will do when idle.
pub(super) fn describe(cluster: &ClusterName, setting: Autostop) -> String {
    match setting {
        Autostop::After { idle, down } => format!(
            "`{cluster}`: {} after {} without a job",
            if down { "tears itself down" } else { "stops" },
            crate::duration::format(idle)
        ),
        Autostop::Cancel => format!("`{cluster}`: autostop is off"),
    }
}

fn provider_for<'p>(
    providers: &'p crate::provision::Providers,
    record: &crate::state::ClusterRecord,
) -> anyhow::Result<&'p std::sync::Arc<dyn broker_provider::Provider>> {
    let cloud = record
        .cloud
        .with_context(|| format!("cluster `{}` was never launched", record.name))?;
    providers.get(&cloud).ok_or_else(|| {
        UserError::new(format!(
            "cluster `{}` is on {cloud}, which is not enabled here",
            record.name
        ))
        .with_hint("`broker check` shows which clouds have working credentials")
        .into()
    })
}

/// An "unsupported" refusal becomes a user error that names the alternative.
fn unsupported_hint(e: broker_provider::ProviderError, cluster: &ClusterName) -> anyhow::Error {
    if e.class() == broker_provider::ErrorClass::Invalid {
        UserError::new(e.to_string())
            .with_hint(format!("`broker down {cluster}` tears it down instead"))
            .into()
    } else {
        e.into()
    }
}
