//! `broker status`: the clusters broker knows, optionally reconciled with the clouds.

use serde::Serialize;

use crate::cli::StatusArgs;
use crate::commands::{ExitStatus, UserError, clouds};
use crate::state::{ClusterRecord, ClusterState, StateDb};
use crate::{env, output, provision};

#[derive(Serialize)]
struct ClusterJson<'a> {
    name: &'a str,
    state: &'a str,
    cloud: Option<&'a str>,
    region: Option<&'a str>,
    zone: Option<&'a str>,
    instance_type: Option<&'a str>,
    spot: bool,
    nodes: usize,
    hourly_total: Option<f64>,
}

impl<'a> From<&'a ClusterRecord> for ClusterJson<'a> {
    fn from(c: &'a ClusterRecord) -> Self {
        Self {
            name: c.name.as_str(),
            state: c.state.as_str(),
            cloud: c.cloud.map(broker_provider::Cloud::as_str),
            region: c.region.as_deref(),
            zone: c.zone.as_deref(),
            instance_type: c.instance_type.as_deref(),
            spot: c.spot,
            nodes: c.nodes.len(),
            hourly_total: c.hourly_total,
        }
    }
}

pub(super) async fn run(args: &StatusArgs) -> anyhow::Result<ExitStatus> {
    let home =
        env::broker_home().ok_or_else(|| UserError::new("cannot find broker's home").with_hint("set `BROKER_HOME`"))?;
    let db = StateDb::open(&home.join("state.db"))?;
    let providers = if args.orphans {
        Some(clouds::enabled(&clouds::all()).await)
    } else if args.refresh {
        let wanted = db
            .clusters()?
            .iter()
            .filter(|c| c.state != ClusterState::TornDown)
            .filter_map(|c| c.cloud)
            .collect();
        Some(clouds::enabled(&wanted).await)
    } else {
        None
    };
    if let (true, Some(providers)) = (args.refresh, &providers) {
        for cluster in db.clusters()? {
            if cluster.state == ClusterState::TornDown {
                continue;
            }
            // One cluster on a cloud without working credentials must not hide the others.
            if let Err(e) = provision::reconcile(&db, providers, &cluster.name).await {
                output::message(&format!("warning: cannot refresh `{}`: {e}", cluster.name));
            }
        }
    }
    let clusters: Vec<ClusterRecord> = db
        .clusters()?
        .into_iter()
        .filter(|c| c.state != ClusterState::TornDown)
        .collect();
    let orphans = match (args.orphans, &providers) {
        (true, Some(providers)) => provision::orphans(&db, providers).await?,
        _ => Vec::new(),
    };
    if args.json {
        let rows: Vec<ClusterJson<'_>> = clusters.iter().map(ClusterJson::from).collect();
        output::data(&output::json::to_string(&rows));
    } else if clusters.is_empty() {
        output::message("no clusters; `broker launch TASK.yaml` creates one");
    } else {
        output::data(&output::table::render_clusters(&clusters));
    }
    if !orphans.is_empty() {
        output::message(&format!(
            "{} node(s) carry broker's tag but no record knows them:",
            orphans.len()
        ));
        for node in &orphans {
            output::message(&format!(
                "  {} (cluster `{}`, rank {}) in {}",
                node.id, node.cluster, node.rank, node.location
            ));
        }
        output::message("hint: `broker down CLUSTER` removes them");
    }
    Ok(ExitStatus::Success)
}
