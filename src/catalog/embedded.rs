//! The catalogs shipped in `catalogs/`, compiled into the binary so `broker cost` works on a
//! fresh install with no files and no network.

use broker_provider::Cloud;

/// `catalogs/index.csv`: snapshot date and provenance of each shipped table.
pub(crate) const INDEX: &str = include_str!("../../catalogs/index.csv");

/// Each cloud's `vms.csv`.
pub(crate) const TABLES: &[(Cloud, &str)] = &[
    (Cloud::Aws, include_str!("../../catalogs/aws/vms.csv")),
    (Cloud::Gcp, include_str!("../../catalogs/gcp/vms.csv")),
    (Cloud::Azure, include_str!("../../catalogs/azure/vms.csv")),
    (Cloud::Lambda, include_str!("../../catalogs/lambda/vms.csv")),
    (Cloud::Nebius, include_str!("../../catalogs/nebius/vms.csv")),
    (Cloud::Vast, include_str!("../../catalogs/vast/vms.csv")),
    (Cloud::Hyperbolic, include_str!("../../catalogs/hyperbolic/vms.csv")),
    (Cloud::Mithril, include_str!("../../catalogs/mithril/vms.csv")),
    (Cloud::Yotta, include_str!("../../catalogs/yotta/vms.csv")),
    (Cloud::Verda, include_str!("../../catalogs/verda/vms.csv")),
    (Cloud::Seeweb, include_str!("../../catalogs/seeweb/vms.csv")),
    (Cloud::Shadeform, include_str!("../../catalogs/shadeform/vms.csv")),
    (
        Cloud::PrimeIntellect,
        include_str!("../../catalogs/primeintellect/vms.csv"),
    ),
];
