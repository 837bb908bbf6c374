//! `launch`: one `RunInstances` per missing rank, then a wait until every node runs.
//!
//! Idempotency has two layers. EC2's `ClientToken` (derived from the launch token and the
//! rank) makes a resent request return the first one's instance, but only on real EC2 and only
//! for the same zone; so before creating anything, `launch` also looks up the instances that
//! already carry this attempt's token tag and creates only the ranks that are missing. That
//! second layer is what makes a resend after a lost answer safe on any EC2 implementation.
//!
//! `RunInstances` goes out with the SDK's retries turned off: EC2 reports a capacity shortage
//! as HTTP 500, which the standard retry mode would repeat three times (about 2 s) before the
//! failover loop could move on to the next zone (`../shared/reference/cloud-apis.md` §C.5).
//! Every other call keeps the standard retries.
//!
//! A launch refused for good (capacity, quota, auth, a bad request) terminates whatever this
//! attempt did create, so a half-made multi-node cluster does not keep billing while the engine
//! tries elsewhere with a new token. A transient failure leaves them: the engine resends the
//! same token, which finds and keeps them.

use std::collections::HashSet;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, HttpTokensState, Instance, InstanceInterruptionBehavior,
    InstanceMarketOptionsRequest, InstanceMetadataEndpointState, InstanceMetadataOptionsRequest, InstanceType,
    MarketType, Placement, ShutdownBehavior, SpotInstanceType, SpotMarketOptions, VolumeType,
};
use broker_provider::{Cloud, ErrorClass, LaunchSpec, Node, ProviderError};
use futures_util::future::{join_all, try_join4};

use crate::classify::{Call, classify, from_sdk};
use crate::discover::{self, ALIVE};
use crate::image::{self, Image};
use crate::provider::{AwsProvider, Backoff, cached, reachable, remember};
use crate::{network, tags};

/// What every rank of an attempt is launched with.
#[derive(Debug)]
struct Plan {
    /// The zone name to place in, when the spec names a zone.
    zone: Option<String>,
    image: Image,
    key_name: Option<String>,
    group_id: String,
    disk_gib: i32,
}

fn invalid(message: String) -> ProviderError {
    ProviderError::Invalid {
        cloud: Cloud::Aws,
        message,
    }
}

fn validate(spec: &LaunchSpec) -> Result<i32, ProviderError> {
    if spec.count == 0 {
        return Err(invalid("a launch needs at least one node".to_owned()));
    }
    if spec.location.region.is_empty() {
        return Err(invalid("a launch needs a region".to_owned()));
    }
    tags::validate_labels(&spec.labels)?;
    match i32::try_from(spec.disk_gib) {
        Ok(gib) if gib > 0 => Ok(gib),
        _ => Err(invalid(format!("root disk of {} GiB is not possible", spec.disk_gib))),
    }
}

fn rank_of(instance: &Instance) -> Option<u32> {
    tags::get(instance, tags::RANK).and_then(|r| r.parse().ok())
}

fn id_of(instance: &Instance) -> String {
    instance.instance_id().unwrap_or_default().to_owned()
}

impl AwsProvider {
    pub(crate) async fn launch_spec(&self, spec: &LaunchSpec) -> Result<Vec<Node>, ProviderError> {
        let disk_gib = validate(spec)?;
        let region: &str = &spec.location.region;
        let client = self.clients.ec2(region).await;
        let token = tags::token_value(&spec.token.0);

        let mut filters = discover::managed(Some(&spec.cluster));
        filters.push(discover::in_states(ALIVE));
        let existing = discover::instances(&client, region, filters).await?;
        let (mine, others): (Vec<_>, Vec<_>) = existing
            .into_iter()
            .partition(|i| tags::get(i, tags::TOKEN) == Some(token.as_str()));
        // A new attempt numbers its nodes after the cluster's existing ones (in this region),
        // so ranks stay unique; a resend keeps the numbering its first send chose.
        let base_rank = mine
            .iter()
            .find_map(|i| tags::get(i, tags::BASE_RANK)?.parse().ok())
            .unwrap_or_else(|| others.iter().filter_map(rank_of).max().map_or(0, |r| r + 1));
        let have: HashSet<u32> = mine.iter().filter_map(rank_of).collect();
        let missing: Vec<u32> = (base_rank..base_rank + spec.count)
            .filter(|r| !have.contains(r))
            .collect();
        let mut ours: Vec<String> = mine.iter().map(id_of).collect();

        if !missing.is_empty() {
            let plan = Box::pin(self.plan(&client, spec, disk_gib)).await?;
            let sent = join_all(
                missing
                    .iter()
                    .map(|&rank| run_instance(&client, spec, &plan, rank, base_rank)),
            )
            .await;
            let mut failure = None;
            for result in sent {
                match result {
                    Ok(id) => ours.push(id),
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            if let Some(err) = failure {
                return Err(self.abandon(&client, spec, &ours, err).await);
            }
        }
        match self.wait_running(&client, spec, &ours).await {
            Ok(nodes) => Ok(nodes),
            Err(err) => Err(self.abandon(&client, spec, &ours, err).await),
        }
    }

    /// Zone, image, key pair and security group, looked up (or made) at the same time.
    async fn plan(&self, client: &Client, spec: &LaunchSpec, disk_gib: i32) -> Result<Plan, ProviderError> {
        let region: &str = &spec.location.region;
        let zone = async {
            match &spec.location.zone {
                Some(zone) => Ok(Some(self.zones.name(&self.clients, region, zone).await?)),
                None => Ok(None),
            }
        };
        let (zone, image, key_name, group_id) = Box::pin(try_join4(
            zone,
            self.image(client, spec),
            self.key_pair(client, spec),
            self.security_group(client, region),
        ))
        .await?;
        Ok(Plan {
            zone,
            image,
            key_name,
            group_id,
            disk_gib,
        })
    }

    async fn image(&self, client: &Client, spec: &LaunchSpec) -> Result<Image, ProviderError> {
        let region: &str = &spec.location.region;
        if let Some(id) = &spec.image {
            return image::by_id(client, region, id).await;
        }
        let arch = if let Some(arch) = cached(&self.arches, &spec.instance_type) {
            arch
        } else {
            let arch = image::architecture(client, region, &spec.instance_type).await?;
            remember(&self.arches, spec.instance_type.clone(), arch.clone());
            arch
        };
        let key = (region.to_owned(), arch);
        if let Some(image) = cached(&self.images, &key) {
            return Ok(image);
        }
        let found = image::deep_learning_ami(client, region, &key.1).await?;
        remember(&self.images, key, found.clone());
        Ok(found)
    }

    async fn key_pair(&self, client: &Client, spec: &LaunchSpec) -> Result<Option<String>, ProviderError> {
        let public_key = spec.ssh_public_key.trim();
        // No key: the image must let the user in by itself (a custom image with baked-in keys).
        if public_key.is_empty() {
            return Ok(None);
        }
        let name = network::key_pair_name(public_key)?;
        let key = (spec.location.region.to_string(), name.clone());
        let known = self
            .key_pairs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&key);
        if !known {
            network::ensure_key_pair(client, &key.0, &name, public_key).await?;
            self.key_pairs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(key);
        }
        Ok(Some(name))
    }

    async fn security_group(&self, client: &Client, region: &str) -> Result<String, ProviderError> {
        if let Some(id) = cached(&self.groups, &region.to_owned()) {
            return Ok(id);
        }
        let config = self.config();
        let id =
            network::ensure_security_group(client, region, &config.security_group_name(), &config.ssh_cidr).await?;
        remember(&self.groups, region.to_owned(), id.clone());
        Ok(id)
    }

    /// Polls this attempt's instances until each of `ours` runs with an address.
    async fn wait_running(
        &self,
        client: &Client,
        spec: &LaunchSpec,
        ours: &[String],
    ) -> Result<Vec<Node>, ProviderError> {
        let region: &str = &spec.location.region;
        let token = tags::token_value(&spec.token.0);
        let filters = vec![
            tags::filter(tags::CLUSTER, spec.cluster.as_str()),
            tags::filter(tags::TOKEN, &token),
        ];
        let timeout = self.config().wait_timeout;
        let mut backoff = Backoff::new(timeout);
        let mut waiting_for: Vec<String> = ours.to_vec();
        while backoff.next().await {
            // By tag and not by id: an id fresh from RunInstances may not be listable yet
            // (eventual consistency), and a tag filter does not fail on it.
            let found = discover::instances(client, region, filters.clone()).await?;
            let ours_found: Vec<&Instance> = found
                .iter()
                .filter(|i| ours.iter().any(|id| i.instance_id() == Some(id.as_str())))
                .collect();
            if let Some(dead) = ours_found
                .iter()
                .find(|i| discover::node_state(discover::state_name(i)) == broker_provider::NodeState::Terminated)
            {
                return Err(died(dead, spec));
            }
            waiting_for = ours
                .iter()
                .filter(|id| {
                    !ours_found
                        .iter()
                        .any(|i| i.instance_id() == Some(id.as_str()) && reachable(i))
                })
                .cloned()
                .collect();
            if waiting_for.is_empty() {
                let with_region: Vec<(String, Instance)> =
                    ours_found.into_iter().map(|i| (region.to_owned(), i.clone())).collect();
                return self.to_nodes(&with_region).await;
            }
        }
        Err(ProviderError::Transient {
            cloud: Cloud::Aws,
            attempts: 1,
            source: format!(
                "instances {waiting_for:?} of {} not running after {} s (a resend with the same token keeps waiting for them)",
                spec.cluster,
                timeout.as_secs()
            )
            .into(),
        })
    }

    /// Ends what a refused attempt created, then hands back why it was refused. A transient
    /// failure keeps them for the resend.
    async fn abandon(&self, client: &Client, spec: &LaunchSpec, ours: &[String], err: ProviderError) -> ProviderError {
        if err.class() == ErrorClass::Transient || ours.is_empty() {
            return err;
        }
        let region: &str = &spec.location.region;
        tracing::debug!(cluster = %spec.cluster, %region, instances = ?ours, error = %err, "terminating a refused attempt");
        if let Err(cleanup) = client
            .terminate_instances()
            .set_instance_ids(Some(ours.to_vec()))
            .send()
            .await
        {
            let cleanup = from_sdk(cleanup, &Call::region("TerminateInstances", region));
            tracing::warn!(cluster = %spec.cluster, %region, instances = ?ours, error = %cleanup,
                "could not terminate the nodes of a refused attempt; `terminate` of the cluster will");
        }
        err
    }
}

/// Why an instance of this attempt ended while starting (a spot request without capacity, an
/// ICE found after the call returned), in broker's classes.
fn died(instance: &Instance, spec: &LaunchSpec) -> ProviderError {
    let reason = instance.state_reason();
    let code = reason.and_then(|r| r.code()).unwrap_or("Terminated");
    let message = reason
        .and_then(|r| r.message())
        .unwrap_or("the instance ended while starting");
    let call = Call::launch(&spec.instance_type, &spec.location);
    match classify(Some(code), None, message, &call) {
        ProviderError::Other { .. } => ProviderError::Other {
            cloud: Cloud::Aws,
            source: format!("instance {} ended while starting: {code}: {message}", id_of(instance)).into(),
        },
        classified => classified,
    }
}

/// `RunInstances` for one rank; the new instance's id.
async fn run_instance(
    client: &Client,
    spec: &LaunchSpec,
    plan: &Plan,
    rank: u32,
    base_rank: u32,
) -> Result<String, ProviderError> {
    let tags = tags::node_tags(spec, rank, base_rank);
    let mut request = client
        .run_instances()
        .image_id(&plan.image.id)
        .instance_type(InstanceType::from(spec.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        .set_key_name(plan.key_name.clone())
        .security_group_ids(&plan.group_id)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(&plan.image.root_device)
                .ebs(
                    EbsBlockDevice::builder()
                        .volume_size(plan.disk_gib)
                        .volume_type(VolumeType::Gp3)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .set_tag_specifications(Some(tags::tag_specifications(&tags)))
        .client_token(tags::client_token(&spec.token.0, rank))
        .metadata_options(
            InstanceMetadataOptionsRequest::builder()
                .http_tokens(HttpTokensState::Required)
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .build(),
        )
        // An in-guest `shutdown` (broker's watchdog) ends the bill, not just the OS.
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Terminate);
    if let Some(zone) = &plan.zone {
        request = request.placement(Placement::builder().availability_zone(zone).build());
    }
    if spec.spot {
        request = request.instance_market_options(
            InstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .spot_options(
                    // No MaxPrice: the cap is then the on-demand price, as AWS advises.
                    SpotMarketOptions::builder()
                        .spot_instance_type(SpotInstanceType::OneTime)
                        .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                        .build(),
                )
                .build(),
        );
    }
    let answer = request
        .customize()
        .config_override(aws_sdk_ec2::config::Builder::default().retry_config(RetryConfig::disabled()))
        .send()
        .await
        .map_err(|e| from_sdk(e, &Call::launch(&spec.instance_type, &spec.location)))?;
    answer
        .instances()
        .first()
        .and_then(Instance::instance_id)
        .map(str::to_owned)
        .ok_or_else(|| ProviderError::Other {
            cloud: Cloud::Aws,
            source: format!("RunInstances for rank {rank} of {} returned no instance", spec.cluster).into(),
        })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use broker_provider::{Arch, LaunchToken, Location, Offer};

    use super::*;

    fn spec() -> LaunchSpec {
        let offer = Offer {
            cloud: Cloud::Aws,
            instance_type: Cow::Borrowed("g5.xlarge"),
            accelerator: None,
            vcpus: None,
            memory_gib: None,
            price: Some(1.0),
            spot_price: None,
            location: Location {
                region: "us-east-1".into(),
                zone: Some("use1-az1".into()),
            },
            arch: Arch::X86_64,
        };
        LaunchSpec::new("train".parse().unwrap(), LaunchToken("t".into()), &offer, 1, false)
    }

    #[test]
    fn specs_ec2_cannot_launch_are_invalid() {
        assert_eq!(validate(&spec()).unwrap(), 256);
        let mut none = spec();
        none.count = 0;
        assert!(validate(&none).is_err());
        let huge = spec().with_disk_gib(u32::MAX);
        assert!(validate(&huge).is_err());
        let zero = spec().with_disk_gib(0);
        assert!(validate(&zero).is_err());
    }

    #[test]
    fn a_spot_reclaim_while_starting_is_a_capacity_error() {
        let instance = Instance::builder()
            .instance_id("i-1")
            .state_reason(
                aws_sdk_ec2::types::StateReason::builder()
                    .code("Server.InsufficientInstanceCapacity")
                    .message("Server.InsufficientInstanceCapacity: Insufficient capacity")
                    .build(),
            )
            .build();
        assert_eq!(died(&instance, &spec()).class(), ErrorClass::Capacity);
        let odd = Instance::builder().instance_id("i-2").build();
        let err = died(&odd, &spec());
        assert_eq!(err.class(), ErrorClass::Other);
        assert!(err.to_string().contains("i-2"), "{err}");
    }
}
