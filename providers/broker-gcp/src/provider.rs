//! [`GceProvider`]: the [`Provider`] contract on Compute Engine.
//!
//! Idempotency has two layers. Before inserting, a launch lists the instances already carrying
//! its token label, so a resend after a crash creates only the ranks still missing; and each
//! insert carries a `requestId` derived from (token, rank), so a resend racing a slow first
//! request is answered with the first operation instead of a second VM. An insert that meets 409
//! found its own instance (names embed the token) and adopts it.

use std::collections::HashMap;
use std::fmt;
use std::time::Instant;

use async_trait::async_trait;
use broker_provider::{Cloud, ClusterName, LaunchSpec, Node, NodeState, Provider, ProviderError, Readiness, Teardown};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};

use crate::auth::Auth;
use crate::body::{self, Placement};
use crate::classify::{Context, Kind, PERMISSION_HINT};
use crate::client::{CallError, Compute};
use crate::config::insecure_url;
use crate::discover::{self, AggregatedPage, Instance};
use crate::operations::Operation;
use crate::{GceConfig, labels};

/// Compute Engine as a cloud for broker.
pub struct GceProvider {
    config: GceConfig,
    compute: Compute,
    project: OnceCell<String>,
    /// Set once the SSH rule is known to exist, so only the first launch pays for the check.
    firewall: OnceCell<()>,
    /// Image chosen per kind of machine (GPU or not), so all ranks and launches agree.
    images: Mutex<HashMap<bool, ChosenImage>>,
}

impl fmt::Debug for GceProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GceProvider")
            .field("config", &self.config)
            .field("project", &self.project.get())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for GceProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.project.get().or(self.config.project.as_ref()) {
            Some(project) => write!(f, "GCE({project})"),
            None => f.write_str("GCE"),
        }
    }
}

/// The fields of an `Image` broker reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Image {
    name: String,
    /// int64 as a JSON string.
    #[serde(default)]
    disk_size_gb: Option<String>,
}

/// A boot image and the smallest disk it fits on, when known.
#[derive(Debug, Clone)]
struct ChosenImage {
    source: String,
    min_disk_gb: Option<u32>,
}

fn other(message: String) -> ProviderError {
    ProviderError::Other {
        cloud: Cloud::Gcp,
        source: message.into(),
    }
}

impl GceProvider {
    /// A provider for `config`. Nothing is contacted yet: credentials and the project are
    /// resolved on the first call, so constructing one is cheap and cannot fail for lack of a
    /// network. Fails only for a configuration that would send credentials over plain HTTP to a
    /// host other than loopback, or when the HTTP client cannot be built.
    pub fn new(config: GceConfig) -> Result<Self, ProviderError> {
        let invalid = |message: String| ProviderError::Invalid {
            cloud: Cloud::Gcp,
            message,
        };
        if insecure_url(config.endpoint()) {
            return Err(invalid(format!(
                "refusing plain HTTP to `{}`: the Compute endpoint must be https unless it is loopback",
                config.endpoint
            )));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("broker-gcp/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| other(format!("cannot build the HTTP client: {e}")))?;
        let auth = Auth::new(http.clone(), &config);
        let compute = Compute::new(http, config.endpoint(), auth, config.max_attempts);
        Ok(Self {
            config,
            compute,
            project: OnceCell::new(),
            firewall: OnceCell::new(),
            images: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &GceConfig {
        &self.config
    }

    /// The project instances are created in: configured, else the credentials' own, else the
    /// metadata server's.
    pub async fn project(&self) -> Result<&str, ProviderError> {
        self.project
            .get_or_try_init(|| async {
                if let Some(project) = &self.config.project {
                    return Ok(project.clone());
                }
                match self.compute.auth.project().await {
                    Ok(Some(project)) => Ok(project),
                    Ok(None) => Err(ProviderError::Auth {
                        cloud: Cloud::Gcp,
                        message: "no GCP project: the credentials do not name one".to_owned(),
                        hint: "set BROKER_GCP_PROJECT (or GOOGLE_CLOUD_PROJECT) to the project id".to_owned(),
                    }),
                    Err(e) => Err(e.into_provider_error()),
                }
            })
            .await
            .map(String::as_str)
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.config.operation_timeout
    }

    /// Every instance matching `filter`, across zones and pages.
    async fn list(&self, filter: &str) -> Result<Vec<Instance>, ProviderError> {
        let project = self.project().await?;
        let path = format!("projects/{project}/aggregated/instances");
        let mut instances = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut query = vec![
                ("filter", filter),
                ("maxResults", "500"),
                ("returnPartialSuccess", "true"),
            ];
            if let Some(token) = &page_token {
                query.push(("pageToken", token));
            }
            let page: AggregatedPage = self.compute.get(&path, &query).await.map_err(|e| {
                e.into_provider_error(&Context {
                    placement: None,
                    what: format!("project {project}"),
                })
            })?;
            instances.extend(page.items.into_values().flat_map(|scope| scope.instances));
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(token) => page_token = Some(token),
                None => break,
            }
        }
        Ok(instances)
    }

    async fn cluster_instances(&self, cluster: &ClusterName) -> Result<Vec<Instance>, ProviderError> {
        self.list(&discover::filter(Some(cluster))).await
    }

    fn to_nodes(instances: &[Instance]) -> Vec<Node> {
        let mut nodes: Vec<Node> = instances.iter().filter_map(Instance::to_node).collect();
        nodes.sort_by(|a, b| (&a.cluster, a.rank, &a.id).cmp(&(&b.cluster, b.rank, &b.id)));
        nodes
    }

    /// Creates the SSH firewall rule unless it exists. Without the permission to create rules
    /// the launch goes on: the default network usually lets SSH in already, and if it does not,
    /// waiting for SSH fails with its own clear error.
    async fn ensure_firewall(&self, project: &str) -> Result<(), ProviderError> {
        self.firewall
            .get_or_try_init(|| async {
                let body = body::firewall_body(
                    &self.config.firewall_rule,
                    project,
                    &self.config.network,
                    &self.config.ssh_source_ranges,
                    &self.config.ssh_tag,
                );
                let context = Context {
                    placement: None,
                    what: format!("firewall rule {}", self.config.firewall_rule),
                };
                let result = match self
                    .compute
                    .post::<Operation>(&format!("projects/{project}/global/firewalls"), &[], Some(&body))
                    .await
                {
                    Ok(operation) => self
                        .compute
                        .wait(project, operation, self.deadline(), self.config.poll_interval)
                        .await
                        .map(drop),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == Kind::AlreadyExists => Ok(()),
                    Err(e) if e.kind() == Kind::Auth => {
                        tracing::warn!(error = %e, "cannot create the SSH firewall rule; relying on the network's rules");
                        Ok(())
                    }
                    Err(e) => Err(e.into_provider_error(&context)),
                }
            })
            .await
            .copied()
    }

    /// The `sourceImage` for the spec: its own image, else the newest image of the first
    /// configured family that still exists (families get retired).
    async fn image(&self, spec: &LaunchSpec, project: &str) -> Result<ChosenImage, ProviderError> {
        if let Some(image) = spec.image.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
            let source = if image.starts_with("projects/") || image.starts_with("https://") {
                image.to_owned()
            } else {
                format!("projects/{project}/global/images/{image}")
            };
            return Ok(ChosenImage {
                source,
                min_disk_gb: None,
            });
        }
        let gpus = body::has_gpus(spec);
        let mut images = self.images.lock().await;
        if let Some(image) = images.get(&gpus) {
            return Ok(image.clone());
        }
        let families = if gpus {
            &self.config.gpu_image_families
        } else {
            &self.config.cpu_image_families
        };
        for family in families {
            let Some((image_project, family_name)) = family.split_once('/') else {
                return Err(ProviderError::Invalid {
                    cloud: Cloud::Gcp,
                    message: format!("image family `{family}` is not of the form `project/family`"),
                });
            };
            let path = format!("projects/{image_project}/global/images/family/{family_name}");
            match self.compute.get::<Image>(&path, &[]).await {
                Ok(image) => {
                    let chosen = ChosenImage {
                        source: format!("projects/{image_project}/global/images/{}", image.name),
                        min_disk_gb: image.disk_size_gb.and_then(|gb| gb.parse().ok()),
                    };
                    tracing::debug!(family = %family, image = %chosen.source, "resolved image family");
                    images.insert(gpus, chosen.clone());
                    return Ok(chosen);
                }
                Err(e) if e.kind() == Kind::NotFound => {
                    tracing::debug!(family = %family, "image family not found, trying the next");
                }
                Err(e) => {
                    return Err(e.into_provider_error(&Context {
                        placement: None,
                        what: format!("image family {family}"),
                    }));
                }
            }
        }
        Err(ProviderError::NotFound {
            cloud: Cloud::Gcp,
            what: format!(
                "an image in any of the families {} (set the image explicitly)",
                families.join(", ")
            ),
        })
    }

    /// Inserts the missing ranks and waits for their operations; the first failure, classified,
    /// after every operation has settled (so a failed launch leaves no operation in flight).
    async fn insert_ranks(
        &self,
        spec: &LaunchSpec,
        zone: &str,
        ranks: &[u32],
        base_rank: u32,
    ) -> Result<(), ProviderError> {
        let project = self.project().await?;
        self.ensure_firewall(project).await?;
        let image = self.image(spec, project).await?;
        let placement = Placement {
            project,
            zone,
            image: &image.source,
            min_disk_gb: image.min_disk_gb.unwrap_or(0),
            network: &self.config.network,
            ssh_user: &self.config.ssh_user,
            ssh_tag: &self.config.ssh_tag,
        };
        let context = Context {
            placement: Some((spec.location.clone(), spec.instance_type.clone())),
            what: format!("{} in {zone}", spec.instance_type),
        };
        let path = format!("projects/{project}/zones/{zone}/instances");
        let mut operations = Vec::new();
        let mut failure: Option<ProviderError> = None;
        for &rank in ranks {
            let body = body::insert_body(spec, &placement, rank, base_rank)?;
            let request_id = body::insert_request_id(spec, zone, rank);
            match self
                .compute
                .post::<Operation>(&path, &[("requestId", &request_id)], Some(&body))
                .await
            {
                Ok(operation) => operations.push(operation),
                // The name embeds the token: an earlier send of this attempt made it.
                Err(e) if e.kind() == Kind::AlreadyExists => {}
                Err(e) => {
                    failure = Some(e.into_provider_error(&context));
                    break;
                }
            }
        }
        let deadline = self.deadline();
        for operation in operations {
            match self
                .compute
                .wait(project, operation, deadline, self.config.poll_interval)
                .await
            {
                Ok(_) => {}
                Err(e) if e.kind() == Kind::AlreadyExists => {}
                Err(e) => {
                    failure.get_or_insert_with(|| e.into_provider_error(&context));
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Polls until every instance of the attempt has left the pending states.
    async fn wait_settled(&self, spec: &LaunchSpec, ranks: std::ops::Range<u32>) -> Result<Vec<Node>, ProviderError> {
        let filter = format!(
            "{} (labels.{} = \"{}\")",
            discover::filter(Some(&spec.cluster)),
            labels::TOKEN,
            body::token_label(&spec.token.0)
        );
        let deadline = self.deadline();
        loop {
            let nodes: Vec<Node> = Self::to_nodes(&self.list(&filter).await?)
                .into_iter()
                .filter(|n| ranks.contains(&n.rank))
                .collect();
            if nodes.len() < ranks.len() {
                let message = format!(
                    "{} of {} nodes of {} exist after their inserts succeeded (deleted meanwhile{})",
                    nodes.len(),
                    ranks.len(),
                    spec.cluster,
                    if spec.spot { ", or spot capacity reclaimed" } else { "" }
                );
                return Err(if spec.spot {
                    ProviderError::Capacity {
                        cloud: Cloud::Gcp,
                        location: spec.location.clone(),
                        instance_type: spec.instance_type.clone(),
                        message,
                    }
                } else {
                    other(message)
                });
            }
            if nodes.iter().all(|n| n.state != NodeState::Pending) {
                return Ok(nodes);
            }
            if Instant::now() >= deadline {
                return Err(ProviderError::Transient {
                    cloud: Cloud::Gcp,
                    attempts: 1,
                    source: format!(
                        "nodes of {} still not running after {} s",
                        spec.cluster,
                        self.config.operation_timeout.as_secs()
                    )
                    .into(),
                });
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    /// Sends `verb` (`stop`, `start`, `resume`, or `DELETE`) to each instance and waits for the
    /// operations; 404 means the instance is already gone, which every caller accepts.
    async fn act_on(&self, instances: &[&Instance], verb: &str) -> Result<(), ProviderError> {
        let project = self.project().await?;
        let deadline = self.deadline();
        let mut operations = Vec::new();
        for instance in instances {
            let path = format!(
                "projects/{project}/zones/{}/instances/{}",
                instance.zone_name(),
                instance.name
            );
            let context = Context {
                placement: None,
                what: format!("instance {} in {}", instance.name, instance.zone_name()),
            };
            let sent = if verb == "DELETE" {
                self.compute.delete::<Operation>(&path, &[]).await
            } else {
                self.compute
                    .post::<Operation>(&format!("{path}/{verb}"), &[], None)
                    .await
            };
            match sent {
                Ok(operation) => operations.push((operation, context)),
                Err(e) if e.kind() == Kind::NotFound => {}
                Err(e) => return Err(e.into_provider_error(&context)),
            }
        }
        for (operation, context) in operations {
            match self
                .compute
                .wait(project, operation, deadline, self.config.poll_interval)
                .await
            {
                Ok(_) => {}
                Err(e) if e.kind() == Kind::NotFound => {}
                Err(e) => return Err(e.into_provider_error(&context)),
            }
        }
        Ok(())
    }

    /// Polls the cluster until no instance is between states, then returns its instances.
    async fn cluster_settled(&self, cluster: &ClusterName) -> Result<Vec<Instance>, ProviderError> {
        let deadline = self.deadline();
        loop {
            let instances = self.cluster_instances(cluster).await?;
            let moving = instances
                .iter()
                .any(|i| matches!(i.status.as_str(), "STOPPING" | "SUSPENDING" | "PENDING_STOP"));
            if !moving || Instant::now() >= deadline {
                return Ok(instances);
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }
}

fn validate(spec: &LaunchSpec) -> Result<&str, ProviderError> {
    let invalid = |message: String| ProviderError::Invalid {
        cloud: Cloud::Gcp,
        message,
    };
    if spec.count == 0 {
        return Err(invalid("a cluster needs at least one node".into()));
    }
    let zone = spec
        .location
        .zone
        .as_deref()
        .ok_or_else(|| invalid(format!("GCE places instances in zones; `{}` names none", spec.location)))?;
    if discover::region_of(zone) != spec.location.region {
        return Err(invalid(format!(
            "zone `{zone}` is not in region `{}`",
            spec.location.region
        )));
    }
    let safe = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !safe(zone) || !safe(&spec.instance_type) {
        return Err(invalid(format!(
            "`{}` in `{zone}` is not a GCE machine type and zone",
            spec.instance_type
        )));
    }
    Ok(zone)
}

#[async_trait]
impl Provider for GceProvider {
    fn cloud(&self) -> Cloud {
        Cloud::Gcp
    }

    async fn check(&self) -> Result<Readiness, ProviderError> {
        self.compute
            .auth
            .token()
            .await
            .map_err(crate::auth::AuthError::into_provider_error)?;
        let identity = self
            .compute
            .auth
            .identity()
            .await
            .map_err(crate::auth::AuthError::into_provider_error)?;
        let project = self.project().await?;
        // Listing broker's instances needs the permission every other call builds on, and is
        // cheap: one page of at most one item.
        let filter = discover::filter(None);
        let query = [
            ("filter", filter.as_str()),
            ("maxResults", "1"),
            ("returnPartialSuccess", "true"),
        ];
        match self
            .compute
            .get::<Value>(&format!("projects/{project}/aggregated/instances"), &query)
            .await
        {
            Ok(_) => Ok(Readiness {
                identity: format!("{identity} in project {project}"),
            }),
            Err(e @ CallError::Api { .. }) if matches!(e.kind(), Kind::NotFound | Kind::Auth) => {
                Err(ProviderError::Auth {
                    cloud: Cloud::Gcp,
                    message: format!("{identity} cannot list instances of project `{project}`: {e}"),
                    hint: format!("check the project id (BROKER_GCP_PROJECT); {PERMISSION_HINT}"),
                })
            }
            Err(e) => Err(e.into_provider_error(&Context::default())),
        }
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Vec<Node>, ProviderError> {
        let zone = validate(spec)?;
        let token = body::token_label(&spec.token.0);
        let existing = self.cluster_instances(&spec.cluster).await?;
        let (mine, others): (Vec<&Instance>, Vec<&Instance>) = existing
            .iter()
            .partition(|i| i.label(labels::TOKEN) == Some(token.as_str()));
        // A new attempt numbers its nodes after those of earlier ones, so ranks stay unique in
        // the cluster; a resend keeps the numbering its first send chose.
        let base_rank = mine
            .iter()
            .find_map(|i| i.label(labels::BASE_RANK)?.parse().ok())
            .unwrap_or_else(|| others.iter().filter_map(|i| i.rank()).max().map_or(0, |r| r + 1));
        let have: Vec<u32> = mine.iter().filter_map(|i| i.rank()).collect();
        let ranks = base_rank..base_rank + spec.count;
        let missing: Vec<u32> = ranks.clone().filter(|r| !have.contains(r)).collect();
        if !missing.is_empty() {
            self.insert_ranks(spec, zone, &missing, base_rank).await?;
        }
        self.wait_settled(spec, ranks).await
    }

    async fn nodes(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
        Ok(Self::to_nodes(&self.cluster_instances(cluster).await?))
    }

    async fn terminate(&self, cluster: &ClusterName) -> Result<Teardown, ProviderError> {
        let instances = self.cluster_instances(cluster).await?;
        if instances.is_empty() {
            return Ok(Teardown::AlreadyGone);
        }
        let all: Vec<&Instance> = instances.iter().collect();
        self.act_on(&all, "DELETE").await?;
        Ok(Teardown::Terminated(instances.into_iter().map(|i| i.name).collect()))
    }

    async fn sweep(&self) -> Result<Vec<Node>, ProviderError> {
        Ok(Self::to_nodes(&self.list(&discover::filter(None)).await?))
    }

    /// Stops the running nodes (GCE status `TERMINATED` afterwards: disk kept, compute not
    /// billed); stopped ones are left alone.
    async fn stop(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
        let instances = self.cluster_instances(cluster).await?;
        let running: Vec<&Instance> = instances
            .iter()
            .filter(|i| matches!(i.status.as_str(), "PROVISIONING" | "STAGING" | "RUNNING" | "REPAIRING"))
            .collect();
        self.act_on(&running, "stop").await?;
        Ok(Self::to_nodes(&self.cluster_settled(cluster).await?))
    }

    /// Starts stopped nodes (and resumes suspended ones), then waits for them to run; their
    /// external addresses are usually new.
    async fn start(&self, cluster: &ClusterName) -> Result<Vec<Node>, ProviderError> {
        let instances = self.cluster_settled(cluster).await?;
        if instances.is_empty() {
            return Err(ProviderError::NotFound {
                cloud: Cloud::Gcp,
                what: format!("nodes of cluster {cluster}"),
            });
        }
        let by_status = |statuses: &[&str]| -> Vec<&Instance> {
            instances
                .iter()
                .filter(|i| statuses.contains(&i.status.as_str()))
                .collect()
        };
        self.act_on(&by_status(&["TERMINATED", "STOPPED"]), "start").await?;
        self.act_on(&by_status(&["SUSPENDED"]), "resume").await?;
        let deadline = self.deadline();
        loop {
            let nodes = self.nodes(cluster).await?;
            if nodes.iter().all(|n| n.state == NodeState::Running) || Instant::now() >= deadline {
                return Ok(nodes);
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use broker_provider::{Arch, LaunchToken, Location, Offer};

    use super::*;

    fn spec(region: &str, zone: Option<&str>, instance_type: &str) -> LaunchSpec {
        let offer = Offer {
            cloud: Cloud::Gcp,
            instance_type: instance_type.to_owned().into(),
            accelerator: None,
            vcpus: None,
            memory_gib: None,
            price: Some(1.0),
            spot_price: None,
            location: Location {
                region: region.to_owned().into(),
                zone: zone.map(|z| z.to_owned().into()),
            },
            arch: Arch::X86_64,
        };
        LaunchSpec::new("c".parse().unwrap(), LaunchToken("t".into()), &offer, 1, false)
    }

    #[test]
    fn launch_specs_need_a_zone_in_their_region() {
        assert_eq!(
            validate(&spec("us-central1", Some("us-central1-a"), "n1-standard-8")).unwrap(),
            "us-central1-a"
        );
        for bad in [
            spec("us-central1", None, "n1-standard-8"),
            spec("us-central1", Some("europe-west4-a"), "n1-standard-8"),
            spec("us-central1", Some("us-central1-a"), "n1/../../x"),
        ] {
            assert_eq!(
                validate(&bad).unwrap_err().class(),
                broker_provider::ErrorClass::Invalid
            );
        }
        let mut none = spec("us-central1", Some("us-central1-a"), "n1-standard-8");
        none.count = 0;
        assert!(validate(&none).is_err());
    }

    #[test]
    fn plain_http_endpoints_off_loopback_are_refused() {
        let config = GceConfig {
            endpoint: "http://compute.example.com/compute/v1".into(),
            ..GceConfig::default()
        };
        assert!(GceProvider::new(config).is_err());
        let local = GceConfig {
            endpoint: "http://127.0.0.1:1/compute/v1".into(),
            project: Some("p".into()),
            ..GceConfig::default()
        };
        let provider = GceProvider::new(local).unwrap();
        assert_eq!(provider.to_string(), "GCE(p)");
        assert_eq!(provider.cloud(), Cloud::Gcp);
    }
}
