//! The one JSON object `broker launch --json` prints when a run ends: what ran where, for how
//! long, at what price, and how it ended. Scripts and CI read this instead of scraping messages.

use std::time::SystemTime;

use broker_provider::Candidate;
use serde::Serialize;

use crate::state::AttemptRecord;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RunEnd {
    /// The job exited 0.
    Succeeded,
    /// The job exited non-zero.
    Failed,
    /// Still running (`--detach`).
    Running,
    /// No candidate could be provisioned.
    LaunchFailed,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// `--max-duration` passed.
    DeadlineExceeded,
    /// Broker failed after provisioning (SSH, sync, ...).
    Error,
}

/// The chosen offer.
#[derive(Debug, Clone, Serialize)]
pub(super) struct OfferJson {
    cloud: String,
    region: String,
    zone: Option<String>,
    instance_type: String,
    spot: bool,
    nodes: u32,
    /// USD per hour for all nodes, at launch.
    hourly_price: f64,
}

impl From<&Candidate> for OfferJson {
    fn from(c: &Candidate) -> Self {
        Self {
            cloud: c.offer.cloud.to_string(),
            region: c.offer.location.region.to_string(),
            zone: c.offer.location.zone.as_ref().map(ToString::to_string),
            instance_type: c.offer.instance_type.to_string(),
            spot: c.spot,
            nodes: c.nodes,
            hourly_price: c.hourly_total,
        }
    }
}

/// One launch attempt.
#[derive(Debug, Clone, Serialize)]
struct AttemptJson {
    cloud: String,
    region: String,
    zone: Option<String>,
    instance_type: String,
    outcome: String,
    message: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub(super) struct RunReport {
    cluster: String,
    offer: Option<OfferJson>,
    attempts: Vec<AttemptJson>,
    /// RFC 3339, UTC: when provisioning began (billing may start from here).
    started_at: String,
    ended_at: Option<String>,
    duration_seconds: f64,
    /// `hourly_price` x duration; 0 when nothing was provisioned.
    cost: f64,
    exit_code: Option<i32>,
    state: RunEnd,
    /// Whether the cluster was torn down before broker exited.
    torn_down: bool,
    job_id: Option<u64>,
}

impl RunReport {
    pub(super) fn new(cluster: &str, started: SystemTime) -> Self {
        Self {
            cluster: cluster.to_owned(),
            offer: None,
            attempts: Vec::new(),
            started_at: rfc3339(started),
            ended_at: None,
            duration_seconds: 0.0,
            cost: 0.0,
            exit_code: None,
            state: RunEnd::Error,
            torn_down: false,
            job_id: None,
        }
    }

    pub(super) fn set_offer(&mut self, candidate: &Candidate) {
        self.offer = Some(OfferJson::from(candidate));
    }

    pub(super) fn set_job(&mut self, id: u64) {
        self.job_id = Some(id);
    }

    pub(super) fn set_attempts(&mut self, attempts: &[AttemptRecord]) {
        self.attempts = attempts
            .iter()
            .map(|a| AttemptJson {
                cloud: a.cloud.to_string(),
                region: a.region.clone(),
                zone: a.zone.clone(),
                instance_type: a.instance_type.clone(),
                outcome: a.outcome.to_string(),
                message: a.message.clone(),
            })
            .collect();
    }

    /// Closes the report: how it ended, when, and what it cost.
    pub(super) fn finish(&mut self, started: SystemTime, state: RunEnd, exit_code: Option<i32>, torn_down: bool) {
        let now = SystemTime::now();
        let seconds = now.duration_since(started).map_or(0.0, |d| d.as_secs_f64());
        self.state = state;
        self.exit_code = exit_code;
        self.torn_down = torn_down;
        self.duration_seconds = (seconds * 1000.0).round() / 1000.0;
        if state != RunEnd::Running {
            self.ended_at = Some(rfc3339(now));
        }
        self.cost = self.offer.as_ref().map_or(0.0, |o| o.hourly_price * seconds / 3600.0);
    }

    pub(super) fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// `t` as `2026-11-29T10:15:00Z`.
pub(super) fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let rem = secs % 86_400;
    let date = crate::date::Date::from_system_time(t);
    format!("{date}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
