//! `broker cost`: price comparison across clouds.

use std::collections::HashSet;

use broker_provider::{Candidate, Cloud, Offer};

use crate::catalog::{self, Catalog};
use crate::cli::CostArgs;
use crate::commands::{ExitStatus, UserError};
use crate::env;
use crate::optimizer;
use crate::output::{self, json::OfferJson, table};
use crate::request::{Request, Resources};
use crate::task::parse_accelerator_spec;
use crate::vocabulary::{Unknown, Vocabulary};

pub(super) fn run(args: &CostArgs) -> anyhow::Result<ExitStatus> {
    let cloud = args.cloud.as_deref().map(Vocabulary::cloud).transpose()?;
    let clouds: Vec<Cloud> = cloud.into_iter().collect();
    let user_dir = env::user_catalog_dir();
    let Some(spec) = &args.accelerator else {
        let catalog = Catalog::load(user_dir.as_deref(), &clouds)?;
        check_region(args, cloud, &catalog.offers)?;
        summary(args, &catalog);
        return Ok(ExitStatus::Success);
    };
    let mut accelerator = parse_accelerator_spec(spec).map_err(|e| {
        UserError::new(format!("invalid accelerator `{spec}`: {e}"))
            .with_hint("write it as NAME or NAME:COUNT, e.g. `A100:8`")
    })?;
    // Only that accelerator's rows are parsed; the whole catalog is read only to explain a typo.
    let catalog = Catalog::load_accelerator(user_dir.as_deref(), &clouds, &accelerator.name)?;
    if catalog.offers.is_empty() {
        let everything = Catalog::load(user_dir.as_deref(), &clouds)?;
        canonical_accelerator(&everything.offers, &accelerator.name)?;
    }
    accelerator.name = canonical_accelerator(&catalog.offers, &accelerator.name)?;
    if args
        .region
        .as_ref()
        .is_some_and(|r| !catalog.offers.iter().any(|o| o.location.region == r.as_str()))
    {
        check_region(args, cloud, &Catalog::load(user_dir.as_deref(), &clouds)?.offers)?;
    }

    let resources = Resources {
        accelerator: Some(accelerator),
        cloud,
        region: args.region.clone(),
        use_spot: args.spot,
        ..Resources::default()
    };
    let mut candidates = optimizer::rank(&Request::single(resources), &catalog.offers)?;
    // A price list reads best in plain price order; the optimizer's zone grouping is for failover.
    candidates.sort_by(|a, b| a.hourly_total.total_cmp(&b.hourly_total));
    let shown: Vec<&Candidate> = if args.all && args.json {
        candidates.iter().collect()
    } else if args.all {
        first_per(&candidates, |c| {
            (
                c.offer.cloud,
                c.offer.instance_type.to_string(),
                c.offer.location.region.to_string(),
            )
        })
    } else {
        first_per(&candidates, |c| (c.offer.cloud, String::new(), String::new()))
    };

    if args.json {
        let rows: Vec<OfferJson<'_>> = shown.iter().map(|c| OfferJson::from(&c.offer)).collect();
        output::data(&output::json::to_string(&rows));
    } else {
        output::data(&table::render_cost_table(&shown));
        output::data(&age_line(&catalog, shown.iter().map(|c| c.offer.cloud)));
    }
    Ok(ExitStatus::Success)
}

/// The name as the catalogs spell it, or an error with the closest names.
fn canonical_accelerator(offers: &[Offer], name: &str) -> Result<String, Unknown> {
    offers
        .iter()
        .filter_map(|o| o.accelerator.as_ref())
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.name.to_string())
        .ok_or_else(|| {
            let known: HashSet<&str> = offers
                .iter()
                .filter_map(|o| o.accelerator.as_ref())
                .map(|a| &*a.name)
                .collect();
            Unknown {
                what: "accelerator".into(),
                given: name.into(),
                suggestions: crate::vocabulary::closest(name, known),
            }
        })
}

/// An unknown region is a typo to report with suggestions; a known one without offers is left
/// to the optimizer, which explains what is sold where.
fn check_region(args: &CostArgs, cloud: Option<Cloud>, offers: &[Offer]) -> Result<(), Unknown> {
    match &args.region {
        Some(region) if !offers.iter().any(|o| o.location.region == region.as_str()) => {
            Vocabulary::from_offers(offers).region(cloud, region)
        }
        _ => Ok(()),
    }
}

fn first_per<K: std::hash::Hash + Eq>(candidates: &[Candidate], key: impl Fn(&Candidate) -> K) -> Vec<&Candidate> {
    let mut seen = HashSet::new();
    candidates.iter().filter(|c| seen.insert(key(c))).collect()
}

fn summary(args: &CostArgs, catalog: &Catalog) {
    let offers: Vec<&Offer> = catalog
        .offers
        .iter()
        .filter(|o| args.region.as_deref().is_none_or(|r| o.location.region == r))
        .collect();
    if args.json {
        let mut rows: Vec<(f64, &Offer)> = offers
            .iter()
            .filter(|o| o.accelerator.is_some())
            .filter_map(|o| o.price_for(args.spot).map(|p| (p, *o)))
            .collect();
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut seen = HashSet::new();
        let rows: Vec<OfferJson<'_>> = rows
            .into_iter()
            .filter(|(_, o)| {
                args.all
                    || seen.insert((
                        o.cloud,
                        o.accelerator
                            .as_ref()
                            .map(|a| (a.name.to_lowercase(), a.count.to_bits())),
                    ))
            })
            .map(|(_, o)| OfferJson::from(o))
            .collect();
        output::data(&output::json::to_string(&rows));
        return;
    }
    output::data(&table::render_accelerator_summary(&offers, args.spot));
    output::data(&age_line(catalog, offers.iter().map(|o| o.cloud)));
}

fn age_line(catalog: &Catalog, clouds: impl Iterator<Item = Cloud>) -> String {
    let mut clouds: Vec<Cloud> = clouds.collect();
    clouds.sort();
    clouds.dedup();
    let tables: Vec<_> = clouds.iter().filter_map(|c| catalog.table(*c)).collect();
    catalog::age_line(&tables, env::today())
}
