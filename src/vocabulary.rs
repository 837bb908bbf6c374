//! The names broker knows, taken from the loaded catalogs, so that input can be checked and
//! a typo answered with the closest real name.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use broker_provider::{Cloud, Offer};

use crate::request::Resources;

/// A name that is not in any catalog, with the closest names that are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}`{}", did_you_mean(.suggestions))]
pub struct Unknown {
    /// What kind of name (`accelerator`, `region of aws`).
    pub what: String,
    /// As given.
    pub given: String,
    /// Up to three known names, closest first.
    pub suggestions: Vec<String>,
}

fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        many => {
            let quoted: Vec<String> = many.iter().map(|s| format!("`{s}`")).collect();
            format!("; did you mean one of {}?", quoted.join(", "))
        }
    }
}

/// What a catalog says about one instance type on one cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceFacts {
    /// The cloud selling it.
    pub cloud: Cloud,
    /// Accelerator name and count, if any.
    pub accelerator: Option<(String, f64)>,
    /// vCPUs.
    pub vcpus: Option<f64>,
    /// Memory in GiB.
    pub memory_gib: Option<f64>,
}

/// Known accelerators, regions, zones and instance types.
#[derive(Debug, Default)]
pub struct Vocabulary {
    /// Lower-case name -> name as catalogs spell it.
    accelerators: BTreeMap<String, String>,
    regions: BTreeMap<Cloud, BTreeSet<String>>,
    zones: BTreeMap<Cloud, BTreeSet<String>>,
    instance_types: HashMap<String, Vec<InstanceFacts>>,
}

impl Vocabulary {
    /// Collects every name that appears in `offers`.
    pub fn from_offers(offers: &[Offer]) -> Self {
        let mut vocab = Self::default();
        for offer in offers {
            if let Some(acc) = &offer.accelerator {
                vocab
                    .accelerators
                    .entry(acc.name.to_lowercase())
                    .or_insert_with(|| acc.name.to_string());
            }
            let regions = vocab.regions.entry(offer.cloud).or_default();
            if !regions.contains(offer.location.region.as_ref()) {
                regions.insert(offer.location.region.to_string());
            }
            if let Some(zone) = &offer.location.zone {
                let zones = vocab.zones.entry(offer.cloud).or_default();
                if !zones.contains(zone.as_ref()) {
                    zones.insert(zone.to_string());
                }
            }
            let facts = vocab.instance_types.entry(offer.instance_type.to_string()).or_default();
            if !facts.iter().any(|f| f.cloud == offer.cloud) {
                facts.push(InstanceFacts {
                    cloud: offer.cloud,
                    accelerator: offer.accelerator.as_ref().map(|a| (a.name.to_string(), a.count)),
                    vcpus: offer.vcpus,
                    memory_gib: offer.memory_gib,
                });
            }
        }
        vocab
    }

    /// The catalog spelling of an accelerator name, matched case-insensitively.
    pub fn accelerator(&self, name: &str) -> Result<&str, Unknown> {
        self.accelerators
            .get(&name.to_lowercase())
            .map(String::as_str)
            .ok_or_else(|| Unknown {
                what: "accelerator".into(),
                given: name.into(),
                suggestions: closest(name, self.accelerators.values()),
            })
    }

    /// Every known accelerator name.
    pub fn accelerators(&self) -> impl Iterator<Item = &str> {
        self.accelerators.values().map(String::as_str)
    }

    /// Checks a cloud name (given as text so the suggestion covers every cloud).
    pub fn cloud(name: &str) -> Result<Cloud, Unknown> {
        name.parse::<Cloud>().map_err(|_| Unknown {
            what: "cloud".into(),
            given: name.into(),
            suggestions: closest(name, Cloud::ALL.iter().map(|c| c.as_str())),
        })
    }

    /// Checks that `region` exists on `cloud`, or on any cloud when none is pinned.
    pub fn region(&self, cloud: Option<Cloud>, region: &str) -> Result<(), Unknown> {
        Self::place(&self.regions, cloud, region, "region")
    }

    /// Checks that `zone` exists on `cloud`, or on any cloud when none is pinned.
    pub fn zone(&self, cloud: Option<Cloud>, zone: &str) -> Result<(), Unknown> {
        Self::place(&self.zones, cloud, zone, "zone")
    }

    fn place(
        known: &BTreeMap<Cloud, BTreeSet<String>>,
        cloud: Option<Cloud>,
        name: &str,
        what: &str,
    ) -> Result<(), Unknown> {
        let mut pool = known.iter().filter(|(c, _)| cloud.is_none_or(|want| want == **c));
        if pool.clone().any(|(_, names)| names.contains(name)) {
            return Ok(());
        }
        let what = match cloud {
            Some(cloud) => format!("{what} of {cloud}"),
            None => what.to_owned(),
        };
        let candidates: BTreeSet<&String> = pool.by_ref().flat_map(|(_, names)| names).collect();
        Err(Unknown {
            what,
            given: name.into(),
            suggestions: closest(name, candidates),
        })
    }

    /// What the catalogs know about an instance type, one entry per cloud that sells it.
    pub fn instance_type(&self, name: &str) -> Option<&[InstanceFacts]> {
        self.instance_types.get(name).map(Vec::as_slice)
    }

    /// Checks an instance-type pin against the other constraints of the same resources,
    /// returning why they cannot all hold (`m6i.2xlarge has 8 vCPUs, but cpus: 4 was asked`).
    pub fn contradiction(&self, resources: &Resources) -> Option<String> {
        let name = resources.instance_type.as_deref()?;
        let facts = self.instance_type(name)?;
        let facts: Vec<&InstanceFacts> = facts
            .iter()
            .filter(|f| resources.cloud.is_none_or(|c| c == f.cloud))
            .collect();
        let mut reasons = Vec::new();
        for f in &facts {
            match why_not(f, resources) {
                Some(reason) => reasons.push(format!("`{name}` on {} {reason}", f.cloud)),
                None => return None,
            }
        }
        if reasons.is_empty() {
            let sellers: Vec<&str> = self.instance_types[name].iter().map(|f| f.cloud.as_str()).collect();
            return resources
                .cloud
                .map(|cloud| format!("`{name}` is not sold on {cloud} (it is on {})", sellers.join(", ")));
        }
        Some(reasons.join("; "))
    }

    /// Checks an instance-type name, suggesting close ones from the same cloud.
    pub fn instance_type_known(&self, cloud: Option<Cloud>, name: &str) -> Result<(), Unknown> {
        if self.instance_types.contains_key(name) {
            return Ok(());
        }
        let pool = self
            .instance_types
            .iter()
            .filter(|(_, facts)| cloud.is_none_or(|c| facts.iter().any(|f| f.cloud == c)))
            .map(|(n, _)| n);
        Err(Unknown {
            what: "instance type".into(),
            given: name.into(),
            suggestions: closest(name, pool),
        })
    }
}

fn why_not(facts: &InstanceFacts, want: &Resources) -> Option<String> {
    use crate::format::number;
    match (&want.accelerator, &facts.accelerator) {
        (Some(acc), None) => return Some(format!("has no accelerator, but {acc} was asked")),
        (Some(acc), Some((name, count))) => {
            if !name.eq_ignore_ascii_case(&acc.name) || (count - acc.count).abs() > 1e-6 {
                return Some(format!("carries {name}:{}, but {acc} was asked", number(*count)));
            }
        }
        (None, _) => {}
    }
    if let (Some(cpus), Some(have)) = (want.cpus, facts.vcpus)
        && !cpus.admits(have)
    {
        return Some(format!("has {} vCPUs, but cpus: {cpus} was asked", number(have)));
    }
    if let (Some(memory), Some(have)) = (want.memory, facts.memory_gib)
        && !memory.admits(have)
    {
        return Some(format!(
            "has {} GiB of memory, but memory: {memory} was asked",
            number(have)
        ));
    }
    None
}

/// Up to three names closest to `given`, ignoring case: only reasonably close ones, and only
/// those at the smallest distance found, so `A1000` suggests `A100` and not also `H100`.
pub fn closest<'a, I, S>(given: &str, pool: I) -> Vec<String>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + 'a + ?Sized,
{
    let given_lower = given.to_lowercase();
    let limit = (given.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, String)> = pool
        .into_iter()
        .map(AsRef::as_ref)
        .map(|name| (strsim::levenshtein(&given_lower, &name.to_lowercase()), name.to_owned()))
        .filter(|(distance, _)| *distance <= limit)
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    let best = scored.first().map_or(0, |(distance, _)| *distance);
    scored
        .into_iter()
        .take_while(|(distance, _)| *distance == best)
        .take(3)
        .map(|(_, name)| name)
        .collect()
}

/// An offer with 4 GiB per vCPU and a price of 1, for tests that need names more than prices.
#[cfg(test)]
pub(crate) fn test_offer(
    cloud: Cloud,
    instance_type: &'static str,
    acc: Option<(&'static str, f64)>,
    vcpus: f64,
    region: &'static str,
    zone: &'static str,
) -> Offer {
    use broker_provider::{Accelerator, Arch, Location};
    Offer {
        cloud,
        instance_type: instance_type.into(),
        accelerator: acc.map(|(name, count)| Accelerator {
            name: name.into(),
            count,
        }),
        vcpus: Some(vcpus),
        memory_gib: Some(vcpus * 4.0),
        price: Some(1.0),
        spot_price: None,
        location: Location {
            region: region.into(),
            zone: Some(zone.into()),
        },
        arch: Arch::X86_64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{AcceleratorRequest, Amount};

    fn vocab() -> Vocabulary {
        Vocabulary::from_offers(&[
            test_offer(Cloud::Aws, "m6i.2xlarge", None, 8.0, "us-east-1", "use1-az1"),
            test_offer(
                Cloud::Aws,
                "p5.48xlarge",
                Some(("H100", 8.0)),
                192.0,
                "us-east-1",
                "use1-az1",
            ),
            test_offer(
                Cloud::Aws,
                "p4d.24xlarge",
                Some(("A100", 8.0)),
                96.0,
                "us-east-1",
                "use1-az1",
            ),
        ])
    }

    #[test]
    fn typos_get_the_closest_name() {
        let err = vocab().accelerator("H10").unwrap_err();
        assert_eq!(err.suggestions, vec!["H100".to_owned()]);
        assert_eq!(err.to_string(), "unknown accelerator `H10`; did you mean `H100`?");
        let err = vocab().accelerator("H1000").unwrap_err();
        assert_eq!(err.to_string(), "unknown accelerator `H1000`; did you mean `H100`?");
        assert_eq!(
            vocab().accelerator("TPU").unwrap_err().suggestions,
            Vec::<String>::new()
        );
        assert_eq!(vocab().accelerator("h100"), Ok("H100"));
        assert_eq!(
            Vocabulary::cloud("awss").unwrap_err().suggestions,
            vec!["aws".to_owned()]
        );
        assert!(
            vocab()
                .region(Some(Cloud::Aws), "us-east-2")
                .unwrap_err()
                .to_string()
                .contains("us-east-1")
        );
    }

    #[test]
    fn instance_type_pins_that_contradict_say_why() {
        let resources = Resources {
            instance_type: Some("m6i.2xlarge".into()),
            cpus: Some(Amount::Exact(4.0)),
            ..Resources::default()
        };
        assert_eq!(
            vocab().contradiction(&resources).as_deref(),
            Some("`m6i.2xlarge` on aws has 8 vCPUs, but cpus: 4 was asked")
        );
        let gpu = Resources {
            instance_type: Some("p4d.24xlarge".into()),
            accelerator: Some(AcceleratorRequest {
                name: "H100".into(),
                count: 8.0,
            }),
            ..Resources::default()
        };
        assert!(vocab().contradiction(&gpu).unwrap().contains("carries A100:8"));
        let fine = Resources {
            instance_type: Some("m6i.2xlarge".into()),
            ..Resources::default()
        };
        assert_eq!(vocab().contradiction(&fine), None);
    }
}
