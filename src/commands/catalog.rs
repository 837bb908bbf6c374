//! `broker catalog`: convert SkyPilot catalogs, show what is in use.

use anyhow::Context as _;

use crate::catalog::{self, Catalog, Origin};
use crate::cli::CatalogCommand;
use crate::commands::{ExitStatus, UserError};
use crate::date::Date;
use crate::{env, output};

pub(super) fn run(command: CatalogCommand) -> anyhow::Result<ExitStatus> {
    match command {
        CatalogCommand::Import {
            source,
            dest,
            snapshot_date,
        } => {
            if let Some(date) = &snapshot_date
                && Date::parse(date).is_none()
            {
                return Err(UserError::new(format!(
                    "`--snapshot-date` must be a date like 2026-11-29, got `{date}`"
                ))
                .into());
            }
            let report = catalog::import::import_skypilot(&source, &dest, snapshot_date.as_deref())
                .with_context(|| format!("importing SkyPilot catalogs from `{}`", source.display()))?;
            output::data(&report.to_string());
            Ok(ExitStatus::Success)
        }
        CatalogCommand::Show => {
            let user_dir = env::user_catalog_dir();
            let catalog = Catalog::load(user_dir.as_deref(), &[])?;
            let today = env::today();
            let mut lines = Vec::new();
            for t in &catalog.tables {
                let origin = match &t.origin {
                    Origin::Embedded => "embedded".to_owned(),
                    Origin::User(path) => path.display().to_string(),
                    Origin::Host => "this host".to_owned(),
                };
                let age = t.snapshot.map_or_else(
                    || "undated".to_owned(),
                    |d| format!("{d} ({} days old)", d.days_until(today)),
                );
                lines.push(format!(
                    "{:<15} {:>7} offers  {age:<24} {origin}",
                    t.cloud.as_str(),
                    t.rows
                ));
            }
            output::data(&lines.join("\n"));
            Ok(ExitStatus::Success)
        }
    }
}
