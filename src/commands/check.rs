//! `broker check`: which clouds have working credentials, who they say we are, and for each
//! failure one line on how to fix it.

use std::collections::BTreeSet;

use broker_provider::{Cloud, ProviderError};
use serde::Serialize;

use crate::cli::CheckArgs;
use crate::commands::{ExitStatus, clouds, nodes};
use crate::output;

#[derive(Debug, Serialize)]
struct CloudCheck {
    cloud: &'static str,
    /// `enabled`, `disabled` (credentials do not work), `not_allowed` (the settings file's
    /// `allowed_clouds` leaves it out) or `catalog_only` (no provider in this build).
    status: &'static str,
    identity: Option<String>,
    error: Option<String>,
    hint: Option<String>,
}

pub(super) async fn run(args: &CheckArgs) -> anyhow::Result<ExitStatus> {
    let config = nodes::settings()?;
    let asked: BTreeSet<Cloud> = if args.clouds.is_empty() {
        clouds::all()
    } else {
        args.clouds
            .iter()
            .map(|name| crate::vocabulary::Vocabulary::cloud(name))
            .collect::<Result<_, _>>()?
    };
    let mut rows = Vec::new();
    for checked in clouds::check(&asked).await {
        let mut row = CloudCheck {
            cloud: checked.cloud.as_str(),
            status: "catalog_only",
            identity: None,
            error: None,
            hint: None,
        };
        match checked.outcome {
            None => row.hint = Some("broker has prices for this cloud but cannot launch on it yet".into()),
            Some(Ok(readiness)) => {
                row.identity = Some(readiness.identity);
                row.status = if config.allows(checked.cloud) {
                    "enabled"
                } else {
                    row.hint = Some("left out by `allowed_clouds` in the settings file".into());
                    "not_allowed"
                };
            }
            Some(Err(e)) => {
                row.status = "disabled";
                row.hint = Some(hint(&e));
                row.error = Some(e.to_string());
            }
        }
        rows.push(row);
    }
    if args.json {
        output::data(&serde_json::to_string_pretty(&rows)?);
    } else {
        for row in &rows {
            let detail = match (&row.identity, &row.error) {
                (Some(identity), _) => identity.clone(),
                (None, Some(error)) => error.clone(),
                (None, None) => String::new(),
            };
            output::data(&format!("{:<8} {:<12} {detail}", row.cloud, row.status));
            if let Some(hint) = &row.hint
                && row.status != "enabled"
            {
                output::data(&format!("{:<8} {:<12} hint: {hint}", "", ""));
            }
        }
    }
    let enabled = rows.iter().filter(|r| r.status == "enabled").count();
    Ok(if enabled > 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// One line on how to fix a failed check.
fn hint(e: &ProviderError) -> String {
    match e {
        ProviderError::Auth { hint, .. } if !hint.is_empty() => hint.clone(),
        _ => match e.cloud() {
            Cloud::Docker => "start the Docker engine, or check that this user may use it".into(),
            Cloud::Aws => "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`".into(),
            Cloud::Gcp => "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS".into(),
            _ => "check this cloud's credentials".into(),
        },
    }
}
