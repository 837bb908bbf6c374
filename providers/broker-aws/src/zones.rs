//! Availability zone names and zone IDs.
//!
//! Broker's catalog records AWS zones as zone IDs (`use1-az1`), which mean the same physical
//! zone in every account, while `RunInstances` and `DescribeInstances` speak zone names
//! (`us-east-1a`), whose mapping to IDs differs per account. This module translates between the
//! two with the account's own `DescribeAvailabilityZones`, cached per region.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_ec2::types::AvailabilityZone;
use broker_provider::{Cloud, ProviderError};

use crate::classify::{Call, from_sdk};
use crate::client::Clients;

/// One zone of a region: `(name, id)`.
type Zone = (String, String);

#[derive(Debug, Default)]
pub(crate) struct Zones {
    by_region: Mutex<HashMap<String, Arc<Vec<Zone>>>>,
}

impl Zones {
    async fn of(&self, clients: &Clients, region: &str) -> Result<Arc<Vec<Zone>>, ProviderError> {
        if let Some(zones) = self
            .by_region
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(region)
        {
            return Ok(Arc::clone(zones));
        }
        let answer = clients
            .ec2(region)
            .await
            .describe_availability_zones()
            // Local and Wavelength zones too: the catalog lists them by ID like any other.
            .all_availability_zones(true)
            .send()
            .await
            .map_err(|e| from_sdk(e, &Call::region("DescribeAvailabilityZones", region)))?;
        let zones: Vec<Zone> = answer
            .availability_zones()
            .iter()
            .filter_map(|z: &AvailabilityZone| Some((z.zone_name()?.to_owned(), z.zone_id()?.to_owned())))
            .collect();
        let zones = Arc::new(zones);
        self.by_region
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(region.to_owned(), Arc::clone(&zones));
        Ok(zones)
    }

    /// The zone name for `zone`, given as a zone ID (as catalogs write it) or a name.
    pub(crate) async fn name(&self, clients: &Clients, region: &str, zone: &str) -> Result<String, ProviderError> {
        let zones = self.of(clients, region).await?;
        zones
            .iter()
            .find(|(name, id)| id == zone || name == zone)
            .map(|(name, _)| name.clone())
            // A Local Zone the account has not opted into is listed in catalogs but not here:
            // that rules out this zone, not the launch, so it fails over like a stockout.
            .ok_or_else(|| ProviderError::Capacity {
                cloud: Cloud::Aws,
                location: broker_provider::Location {
                    region: region.to_owned().into(),
                    zone: Some(zone.to_owned().into()),
                },
                instance_type: String::new(),
                message: format!(
                    "region `{region}` offers this account no availability zone `{zone}` (not opted in?)"
                ),
            })
    }

    /// The zone ID of zone `name`, or the name itself when the region does not list it.
    pub(crate) async fn id(&self, clients: &Clients, region: &str, name: &str) -> Result<String, ProviderError> {
        let zones = self.of(clients, region).await?;
        Ok(zones
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| name.to_owned(), |(_, id)| id.clone()))
    }
}
