//! Picks offers for a request: a pure function from a [`Request`] and offers to a ranked list of
//! [`Candidate`]s, which is also the failover plan. No I/O.
//!
//! Ranking: offers are grouped by (cloud, instance type, region); a group ranks by the total
//! hourly price (per-node price x nodes) of its cheapest zone, and its zones follow each other in
//! price order. So after a zone runs out of capacity the plan tries the same instance in the
//! next zone, then the next cheapest group (often the same instance in another region), then
//! other clouds. Ties break on cloud, instance type, region and zone names, so the plan is the
//! same on every run.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt;

use broker_provider::{Candidate, Cloud, Offer};

use crate::format::{number, usd};
use crate::request::{Preference, Request, Resources};

/// Why nothing in the catalogs fits: one explanation per alternative of the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no offer satisfies the request: {}", .reasons.join("; "))]
pub struct NoOffer {
    /// For each alternative, the constraint that ruled out the last offers and what was close.
    pub reasons: Vec<String>,
}

/// Ranks every offer that satisfies `request`.
pub fn rank(request: &Request, offers: &[Offer]) -> Result<Vec<Candidate>, NoOffer> {
    let nodes = request.num_nodes.max(1);
    let mut reasons = Vec::new();
    let mut per_option = Vec::new();
    for (index, option) in request.options.iter().enumerate() {
        match matching(option, offers, nodes, request.max_price) {
            Ok(found) => per_option.push((index, option.use_spot, found)),
            Err(reason) => reasons.push(if request.options.len() > 1 {
                format!("{option}: {reason}")
            } else {
                reason
            }),
        }
    }
    if per_option.is_empty() {
        return Err(NoOffer { reasons });
    }

    let mut plan: Vec<Candidate> = Vec::new();
    let mut seen = Seen::default();
    match request.preference {
        Preference::Cheapest => {
            let mut all: Vec<Priced<'_>> = per_option
                .into_iter()
                .flat_map(|(index, spot, found)| {
                    found.into_iter().map(move |(offer, price)| Priced {
                        offer,
                        price,
                        spot,
                        option: index,
                    })
                })
                .collect();
            order(&mut all);
            push_unique(&mut plan, &mut seen, all, nodes);
        }
        Preference::Ordered => {
            for (index, spot, found) in per_option {
                let mut group: Vec<Priced<'_>> = found
                    .into_iter()
                    .map(|(offer, price)| Priced {
                        offer,
                        price,
                        spot,
                        option: index,
                    })
                    .collect();
                order(&mut group);
                push_unique(&mut plan, &mut seen, group, nodes);
            }
        }
    }
    Ok(plan)
}

#[derive(Debug, Clone, Copy)]
struct Priced<'a> {
    offer: &'a Offer,
    price: f64,
    spot: bool,
    option: usize,
}

/// Offers already in the plan, by address and market: every `Priced` borrows from the one offer
/// slice, so the same offer reached through two alternatives has the same address.
type Seen = HashSet<(usize, bool), FnvBuild>;

fn push_unique(plan: &mut Vec<Candidate>, seen: &mut Seen, ranked: Vec<Priced<'_>>, nodes: u32) {
    // The same offer can satisfy two alternatives; it is tried once, at its first place.
    let fresh: Vec<Priced<'_>> = ranked
        .into_iter()
        .filter(|p| seen.insert((std::ptr::from_ref(p.offer) as usize, p.spot)))
        .collect();
    let start = plan.len();
    plan.extend(fresh.into_iter().enumerate().map(|(i, p)| Candidate {
        offer: p.offer.clone(),
        rank: start + i,
        spot: p.spot,
        nodes,
        hourly_total: p.price * f64::from(nodes),
        option: p.option,
    }));
}

/// Sorts by group (cloud, instance type, region) ranked by its cheapest zone, zones by price.
///
/// Groups are ranked once and offers then sorted by their group's position, so names are
/// compared per group rather than per offer: ranking a CPU request over a million offers stays
/// a matter of milliseconds.
fn order(priced: &mut [Priced<'_>]) {
    let mut index: HashMap<GroupKey<'_>, usize, FnvBuild> = HashMap::default();
    let mut groups: Vec<(GroupKey<'_>, f64)> = Vec::new();
    let mut member = Vec::with_capacity(priced.len());
    for p in priced.iter() {
        let key = group_key(p);
        let g = *index.entry(key).or_insert_with(|| {
            groups.push((key, f64::INFINITY));
            groups.len() - 1
        });
        groups[g].1 = groups[g].1.min(p.price);
        member.push(g);
    }
    let mut ranked: Vec<usize> = (0..groups.len()).collect();
    ranked.sort_by(|&a, &b| cmp_f64(groups[a].1, groups[b].1).then_with(|| groups[a].0.cmp(&groups[b].0)));
    let mut position = vec![0; groups.len()];
    for (pos, &g) in ranked.iter().enumerate() {
        position[g] = pos;
    }
    let mut keyed: Vec<(usize, Priced<'_>)> = member
        .iter()
        .map(|&g| position[g])
        .zip(priced.iter().copied())
        .collect();
    keyed.sort_by(|(ga, a), (gb, b)| {
        ga.cmp(gb)
            .then_with(|| cmp_f64(a.price, b.price))
            .then_with(|| a.offer.location.zone.cmp(&b.offer.location.zone))
            .then_with(|| a.option.cmp(&b.option))
    });
    for (slot, (_, p)) in priced.iter_mut().zip(keyed) {
        *slot = p;
    }
}

/// FNV-1a: the keys here are short names and addresses from our own catalog, not input an
/// attacker chooses, so `SipHash`'s flooding resistance buys nothing and costs a third of the
/// ranking time.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

type FnvBuild = std::hash::BuildHasherDefault<Fnv>;

type GroupKey<'a> = (Cloud, &'a str, &'a str, bool);

fn group_key<'a>(p: &Priced<'a>) -> GroupKey<'a> {
    (p.offer.cloud, &p.offer.instance_type, &p.offer.location.region, p.spot)
}

fn cmp_f64(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// A filter stage: its name for messages, and the test.
struct Stage<'r> {
    describe: String,
    admits: Box<dyn Fn(&Offer) -> bool + 'r>,
    /// How to describe what survived the previous stages, to say what was close.
    nearby: Nearby,
}

#[derive(Clone, Copy)]
enum Nearby {
    Accelerators,
    Clouds,
    Regions,
    Zones,
    InstanceTypes,
    Sizes,
    Markets,
}

fn stages<'r>(want: &'r Resources) -> Vec<Stage<'r>> {
    let mut stages: Vec<Stage<'r>> = Vec::new();
    match &want.accelerator {
        Some(acc) => stages.push(Stage {
            describe: format!("`{acc}`"),
            admits: Box::new(move |o| {
                o.accelerator
                    .as_ref()
                    .is_some_and(|a| a.name.eq_ignore_ascii_case(&acc.name) && (a.count - acc.count).abs() < 1e-6)
            }),
            nearby: Nearby::Accelerators,
        }),
        None => stages.push(Stage {
            describe: "a node without accelerators".to_owned(),
            admits: Box::new(|o| o.accelerator.is_none()),
            nearby: Nearby::Accelerators,
        }),
    }
    if let Some(cloud) = want.cloud {
        stages.push(Stage {
            describe: format!("cloud `{cloud}`"),
            admits: Box::new(move |o| o.cloud == cloud),
            nearby: Nearby::Clouds,
        });
    }
    if let Some(region) = &want.region {
        stages.push(Stage {
            describe: format!("region `{region}`"),
            admits: Box::new(move |o| o.location.region == region.as_str()),
            nearby: Nearby::Regions,
        });
    }
    if let Some(zone) = &want.zone {
        stages.push(Stage {
            describe: format!("zone `{zone}`"),
            admits: Box::new(move |o| o.location.zone.as_deref() == Some(zone.as_str())),
            nearby: Nearby::Zones,
        });
    }
    if let Some(instance_type) = &want.instance_type {
        stages.push(Stage {
            describe: format!("instance type `{instance_type}`"),
            admits: Box::new(move |o| o.instance_type == instance_type.as_str()),
            nearby: Nearby::InstanceTypes,
        });
    }
    if let Some(cpus) = want.cpus {
        stages.push(Stage {
            describe: format!("cpus {cpus}"),
            admits: Box::new(move |o| o.vcpus.is_some_and(|v| cpus.admits(v))),
            nearby: Nearby::Sizes,
        });
    }
    if let Some(memory) = want.memory {
        stages.push(Stage {
            describe: format!("memory {memory} GiB"),
            admits: Box::new(move |o| o.memory_gib.is_some_and(|m| memory.admits(m))),
            nearby: Nearby::Sizes,
        });
    }
    if let Some(arch) = want.arch {
        stages.push(Stage {
            describe: format!("arch {}", arch.as_str()),
            admits: Box::new(move |o| o.arch == arch),
            nearby: Nearby::Sizes,
        });
    }
    let spot = want.use_spot;
    stages.push(Stage {
        describe: if spot {
            "the spot market".to_owned()
        } else {
            "on-demand".to_owned()
        },
        admits: Box::new(move |o| o.price_for(spot).is_some()),
        nearby: Nearby::Markets,
    });
    stages
}

/// Offers satisfying one alternative, with their per-node price in its market, or why none do.
fn matching<'o>(
    want: &Resources,
    offers: &'o [Offer],
    nodes: u32,
    max_price: Option<f64>,
) -> Result<Vec<(&'o Offer, f64)>, String> {
    let mut alive: Vec<&'o Offer> = offers.iter().collect();
    let mut passed: Vec<String> = Vec::new();
    for stage in stages(want) {
        let next: Vec<&'o Offer> = alive.iter().copied().filter(|o| (stage.admits)(o)).collect();
        if next.is_empty() {
            return Err(explain(&stage, &passed, &alive, want));
        }
        passed.push(stage.describe);
        alive = next;
    }
    let priced: Vec<(&'o Offer, f64)> = alive
        .iter()
        .filter_map(|o| o.price_for(want.use_spot).map(|p| (*o, p)))
        .collect();
    match max_price {
        Some(cap) => {
            let (fits, over): (Vec<_>, Vec<_>) = priced
                .into_iter()
                .partition(|(_, p)| p * f64::from(nodes) <= cap + 1e-9);
            if fits.is_empty() {
                let cheapest = over.iter().min_by(|a, b| cmp_f64(a.1, b.1));
                let detail = cheapest.map_or_else(String::new, |(o, p)| {
                    format!(
                        "; the cheapest that fits otherwise is {} {} in {} at {}/h",
                        o.cloud,
                        o.instance_type,
                        o.location,
                        usd(p * f64::from(nodes))
                    )
                });
                return Err(format!(
                    "every offer for {} costs more than the cap of {}/h{detail}",
                    passed.join(", "),
                    usd(cap)
                ));
            }
            Ok(fits)
        }
        None => Ok(priced),
    }
}

fn explain(stage: &Stage<'_>, passed: &[String], alive: &[&Offer], want: &Resources) -> String {
    // Name the cheapest alternatives first: they are the ones worth switching to.
    let mut alive = alive.to_vec();
    alive.sort_by(|a, b| {
        let price = |o: &Offer| o.price_for(want.use_spot).or(o.price).unwrap_or(f64::INFINITY);
        cmp_f64(price(a), price(b))
    });
    let context = if passed.is_empty() {
        String::new()
    } else {
        format!(" among offers for {}", passed.join(", "))
    };
    let close = match stage.nearby {
        Nearby::Accelerators => {
            let mut counts: Vec<String> = Vec::new();
            if let Some(acc) = &want.accelerator {
                let mut seen: Vec<f64> = alive
                    .iter()
                    .filter_map(|o| o.accelerator.as_ref())
                    .filter(|a| a.name.eq_ignore_ascii_case(&acc.name))
                    .map(|a| a.count)
                    .collect();
                seen.sort_by(|a, b| cmp_f64(*a, *b));
                seen.dedup();
                counts = seen
                    .into_iter()
                    .map(|c| format!("{}:{}", acc.name, number(c)))
                    .collect();
            }
            if counts.is_empty() {
                String::new()
            } else {
                format!(" (sold as {})", counts.join(", "))
            }
        }
        Nearby::Clouds => listing("clouds", alive.iter().map(|o| o.cloud.to_string())),
        Nearby::Regions => listing(
            "regions",
            alive.iter().map(|o| format!("{}/{}", o.cloud, o.location.region)),
        ),
        Nearby::Zones => listing(
            "zones",
            alive
                .iter()
                .filter_map(|o| o.location.zone.as_ref().map(|z| format!("{}/{z}", o.cloud))),
        ),
        Nearby::InstanceTypes => listing("instance types", alive.iter().map(|o| o.instance_type.to_string())),
        Nearby::Sizes => {
            let mut sizes: Vec<(f64, f64)> = alive
                .iter()
                .map(|o| (o.vcpus.unwrap_or(0.0), o.memory_gib.unwrap_or(0.0)))
                .collect();
            sizes.sort_by(|a, b| cmp_f64(a.0, b.0).then(cmp_f64(a.1, b.1)));
            sizes.dedup();
            listing(
                "sizes",
                sizes
                    .iter()
                    .map(|(c, m)| format!("{} vCPUs/{} GiB", number(*c), number(*m))),
            )
        }
        Nearby::Markets => String::new(),
    };
    format!("nothing offers {}{context}{close}", stage.describe)
}

/// `" (available: a, b, c and 4 more)"`, cheapest-first order kept, duplicates dropped.
fn listing(what: &str, names: impl Iterator<Item = String>) -> String {
    const SHOWN: usize = 5;
    let mut seen = HashSet::new();
    let names: Vec<String> = names.filter(|n| seen.insert(n.clone())).collect();
    let shown = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    match names.len() {
        0 => String::new(),
        n if n > SHOWN => format!(" (available {what}: {shown} and {} more)", n - SHOWN),
        _ => format!(" (available {what}: {shown})"),
    }
}

impl fmt::Display for Preference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cheapest => "cheapest",
            Self::Ordered => "ordered",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{AcceleratorRequest, Amount};
    use broker_provider::{Accelerator, Arch, Location};

    struct Row {
        cloud: Cloud,
        instance_type: &'static str,
        acc: Option<(&'static str, f64)>,
        vcpus: f64,
        memory: f64,
        price: Option<f64>,
        spot: Option<f64>,
        region: &'static str,
        zone: Option<&'static str>,
    }

    #[allow(clippy::needless_pass_by_value)] // rows are built inline and consumed once
    fn offer(r: Row) -> Offer {
        Offer {
            cloud: r.cloud,
            instance_type: r.instance_type.into(),
            accelerator: r.acc.map(|(name, count)| Accelerator {
                name: name.into(),
                count,
            }),
            vcpus: Some(r.vcpus),
            memory_gib: Some(r.memory),
            price: r.price,
            spot_price: r.spot,
            location: Location {
                region: r.region.into(),
                zone: r.zone.map(Into::into),
            },
            arch: Arch::X86_64,
        }
    }

    /// A small catalog shaped like the real ones: T4 on three clouds with different host sizes,
    /// V100 dearer than T4, A100:8 on AWS in two regions only, CPU hosts.
    fn catalog() -> Vec<Offer> {
        use Cloud::{Aws, Azure, Gcp};
        let rows = vec![
            Row {
                cloud: Aws,
                instance_type: "g4dn.xlarge",
                acc: Some(("T4", 1.0)),
                vcpus: 4.0,
                memory: 16.0,
                price: Some(0.526),
                spot: Some(0.2),
                region: "us-east-1",
                zone: Some("use1-az1"),
            },
            Row {
                cloud: Aws,
                instance_type: "g4dn.xlarge",
                acc: Some(("T4", 1.0)),
                vcpus: 4.0,
                memory: 16.0,
                price: Some(0.526),
                spot: Some(0.18),
                region: "us-east-1",
                zone: Some("use1-az2"),
            },
            Row {
                cloud: Aws,
                instance_type: "g4dn.xlarge",
                acc: Some(("T4", 1.0)),
                vcpus: 4.0,
                memory: 16.0,
                price: Some(0.587),
                spot: None,
                region: "us-west-1",
                zone: Some("usw1-az1"),
            },
            Row {
                cloud: Aws,
                instance_type: "g4dn.16xlarge",
                acc: Some(("T4", 1.0)),
                vcpus: 64.0,
                memory: 256.0,
                price: Some(4.352),
                spot: None,
                region: "us-east-1",
                zone: Some("use1-az1"),
            },
            Row {
                cloud: Gcp,
                instance_type: "n1-standard-4",
                acc: Some(("T4", 1.0)),
                vcpus: 4.0,
                memory: 15.0,
                price: Some(0.54),
                spot: Some(0.15),
                region: "us-central1",
                zone: Some("us-central1-a"),
            },
            Row {
                cloud: Gcp,
                instance_type: "n1-highmem-2",
                acc: Some(("T4", 1.0)),
                vcpus: 2.0,
                memory: 13.0,
                price: Some(0.468),
                spot: Some(0.14),
                region: "us-central1",
                zone: Some("us-central1-a"),
            },
            Row {
                cloud: Azure,
                instance_type: "Standard_NC4as_T4_v3",
                acc: Some(("T4", 1.0)),
                vcpus: 4.0,
                memory: 28.0,
                price: Some(0.526),
                spot: Some(0.1),
                region: "eastus",
                zone: None,
            },
            Row {
                cloud: Gcp,
                instance_type: "n1-standard-8",
                acc: Some(("V100", 1.0)),
                vcpus: 8.0,
                memory: 30.0,
                price: Some(2.86),
                spot: Some(1.0),
                region: "us-central1",
                zone: Some("us-central1-a"),
            },
            Row {
                cloud: Aws,
                instance_type: "p4d.24xlarge",
                acc: Some(("A100", 8.0)),
                vcpus: 96.0,
                memory: 1152.0,
                price: Some(32.77),
                spot: Some(12.0),
                region: "us-east-1",
                zone: Some("use1-az1"),
            },
            Row {
                cloud: Aws,
                instance_type: "p4d.24xlarge",
                acc: Some(("A100", 8.0)),
                vcpus: 96.0,
                memory: 1152.0,
                price: Some(32.77),
                spot: Some(13.0),
                region: "us-west-2",
                zone: Some("usw2-az1"),
            },
            Row {
                cloud: Gcp,
                instance_type: "a2-ultragpu-8g",
                acc: Some(("A100-80GB", 8.0)),
                vcpus: 96.0,
                memory: 1360.0,
                price: Some(40.0),
                spot: None,
                region: "us-central1",
                zone: Some("us-central1-a"),
            },
            Row {
                cloud: Aws,
                instance_type: "m6i.2xlarge",
                acc: None,
                vcpus: 8.0,
                memory: 32.0,
                price: Some(0.384),
                spot: Some(0.1),
                region: "us-east-1",
                zone: Some("use1-az1"),
            },
            Row {
                cloud: Aws,
                instance_type: "m6i.xlarge",
                acc: None,
                vcpus: 4.0,
                memory: 16.0,
                price: Some(0.192),
                spot: None,
                region: "us-east-1",
                zone: Some("use1-az1"),
            },
            Row {
                cloud: Gcp,
                instance_type: "n2-standard-8",
                acc: None,
                vcpus: 8.0,
                memory: 32.0,
                price: Some(0.388),
                spot: None,
                region: "us-central1",
                zone: Some("us-central1-a"),
            },
        ];
        rows.into_iter().map(offer).collect()
    }

    #[allow(clippy::unnecessary_wraps)] // fills an `Option` field at every call site
    fn gpu(name: &str, count: f64) -> Option<AcceleratorRequest> {
        Some(AcceleratorRequest {
            name: name.into(),
            count,
        })
    }

    fn plan(request: &Request) -> Vec<(String, String, String)> {
        rank(request, &catalog())
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.offer.cloud.to_string(),
                    c.offer.instance_type.to_string(),
                    c.offer.location.to_string(),
                )
            })
            .collect()
    }

    fn first_per_cloud(candidates: &[Candidate]) -> Vec<(Cloud, String)> {
        let mut seen = HashSet::new();
        candidates
            .iter()
            .filter(|c| seen.insert(c.offer.cloud))
            .map(|c| (c.offer.cloud, c.offer.instance_type.to_string()))
            .collect()
    }

    #[test]
    fn bare_t4_picks_the_cheapest_host_on_each_cloud() {
        let request = Request::single(Resources {
            accelerator: gpu("t4", 1.0),
            ..Resources::default()
        });
        let ranked = rank(&request, &catalog()).unwrap();
        assert_eq!(
            first_per_cloud(&ranked),
            vec![
                (Cloud::Gcp, "n1-highmem-2".to_owned()),
                (Cloud::Aws, "g4dn.xlarge".to_owned()),
                (Cloud::Azure, "Standard_NC4as_T4_v3".to_owned()),
            ]
        );
        assert!(ranked.windows(2).all(|w| w[0].rank + 1 == w[1].rank));
    }

    #[test]
    fn memory_floor_with_t4_excludes_clouds_without_such_a_host() {
        let request = Request::single(Resources {
            accelerator: gpu("T4", 1.0),
            memory: Some(Amount::AtLeast(200.0)),
            ..Resources::default()
        });
        assert_eq!(
            plan(&request),
            vec![("aws".into(), "g4dn.16xlarge".into(), "us-east-1/use1-az1".into())]
        );
    }

    #[test]
    fn ordered_list_prefers_the_first_even_when_dearer() {
        let request = Request {
            options: vec![
                Resources {
                    accelerator: gpu("V100", 1.0),
                    ..Resources::default()
                },
                Resources {
                    accelerator: gpu("T4", 1.0),
                    ..Resources::default()
                },
            ],
            preference: Preference::Ordered,
            num_nodes: 1,
            max_price: None,
        };
        let ranked = rank(&request, &catalog()).unwrap();
        assert_eq!(ranked[0].offer.instance_type, "n1-standard-8");
        assert_eq!(ranked[0].option, 0);
        // T4 offers follow as the fallback, still cheapest first among themselves.
        assert_eq!(ranked[1].offer.instance_type, "n1-highmem-2");
        assert_eq!(ranked[1].option, 1);
    }

    #[test]
    fn any_of_mapping_chooses_the_cheapest() {
        let request = Request {
            options: vec![
                Resources {
                    accelerator: gpu("V100", 1.0),
                    ..Resources::default()
                },
                Resources {
                    accelerator: gpu("T4", 1.0),
                    ..Resources::default()
                },
            ],
            preference: Preference::Cheapest,
            num_nodes: 1,
            max_price: None,
        };
        let ranked = rank(&request, &catalog()).unwrap();
        assert_eq!(ranked[0].offer.instance_type, "n1-highmem-2");
        // Both alternatives share one price-ordered plan: the V100 host sits between T4 hosts.
        assert!(ranked.windows(2).all(|w| w[0].hourly_total <= w[1].hourly_total));
        let options: Vec<usize> = ranked.iter().map(|c| c.option).collect();
        assert_eq!(options, vec![1, 1, 1, 1, 1, 1, 0, 1]);
    }

    #[test]
    fn name_match_is_exact_a100_is_not_a100_80gb() {
        let request = Request::single(Resources {
            accelerator: gpu("A100", 8.0),
            ..Resources::default()
        });
        assert!(plan(&request).iter().all(|(_, it, _)| it == "p4d.24xlarge"));
        let request = Request::single(Resources {
            accelerator: gpu("a100-80gb", 8.0),
            ..Resources::default()
        });
        assert_eq!(
            plan(&request),
            vec![(
                "gcp".into(),
                "a2-ultragpu-8g".into(),
                "us-central1/us-central1-a".into()
            )]
        );
    }

    #[test]
    fn instance_type_contradicting_cpus_finds_nothing_and_says_so() {
        let request = Request::single(Resources {
            instance_type: Some("m6i.2xlarge".into()),
            cpus: Some(Amount::Exact(4.0)),
            ..Resources::default()
        });
        let err = rank(&request, &catalog()).unwrap_err();
        assert_eq!(
            err.reasons,
            vec![
                "nothing offers cpus 4 among offers for a node without accelerators, instance type `m6i.2xlarge` (available sizes: 8 vCPUs/32 GiB)"
            ]
        );
    }

    #[test]
    fn a100_in_a_region_without_it_reports_where_it_is() {
        let request = Request::single(Resources {
            accelerator: gpu("A100", 8.0),
            cloud: Some(Cloud::Aws),
            region: Some("us-west-1".into()),
            ..Resources::default()
        });
        let err = rank(&request, &catalog()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no offer satisfies the request: nothing offers region `us-west-1` among offers for `A100:8`, cloud `aws` \
             (available regions: aws/us-east-1, aws/us-west-2)"
        );
    }

    #[test]
    fn failover_order_is_next_zone_then_next_group() {
        let request = Request::single(Resources {
            accelerator: gpu("T4", 1.0),
            cloud: Some(Cloud::Aws),
            use_spot: true,
            ..Resources::default()
        });
        let ranked = plan(&request);
        // The cheaper zone first, then the other zone of the same instance and region.
        assert_eq!(ranked[0].2, "us-east-1/use1-az2");
        assert_eq!(ranked[1].2, "us-east-1/use1-az1");
        // us-west-1 sells no spot g4dn, so it is not in a spot plan at all.
        assert!(ranked.iter().all(|(_, _, loc)| !loc.starts_with("us-west-1")));
    }

    #[test]
    fn nodes_multiply_price_and_the_cap_applies_to_the_cluster() {
        let mut request = Request::single(Resources {
            accelerator: gpu("A100", 8.0),
            ..Resources::default()
        });
        request.num_nodes = 2;
        let ranked = rank(&request, &catalog()).unwrap();
        assert!((ranked[0].hourly_total - 65.54).abs() < 1e-9);
        request.max_price = Some(50.0);
        let err = rank(&request, &catalog()).unwrap_err();
        assert!(err.reasons[0].contains("cap of $50.000/h"), "{err}");
        assert!(
            err.reasons[0].contains("p4d.24xlarge in us-east-1/use1-az1 at $65.540/h"),
            "{err}"
        );
    }

    #[test]
    fn cpu_requests_skip_gpu_hosts_and_ties_break_deterministically() {
        let request = Request::single(Resources {
            cpus: Some(Amount::AtLeast(8.0)),
            ..Resources::default()
        });
        assert_eq!(
            plan(&request),
            vec![
                ("aws".into(), "m6i.2xlarge".into(), "us-east-1/use1-az1".into()),
                ("gcp".into(), "n2-standard-8".into(), "us-central1/us-central1-a".into()),
            ]
        );
        let mut shuffled = catalog();
        shuffled.reverse();
        let request = Request::single(Resources {
            accelerator: gpu("T4", 1.0),
            ..Resources::default()
        });
        let a: Vec<String> = rank(&request, &catalog())
            .unwrap()
            .iter()
            .map(|c| c.offer.location.to_string())
            .collect();
        let b: Vec<String> = rank(&request, &shuffled)
            .unwrap()
            .iter()
            .map(|c| c.offer.location.to_string())
            .collect();
        assert_eq!(a, b);
    }
}
