//! SDK clients: the shared configuration is loaded once (credential chain, endpoint), and
//! an EC2 client per region is made on first use and kept.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_ec2::config::Region;
use tokio::sync::OnceCell;

use crate::AwsConfig;

/// The region for calls that are about no region in particular, when nothing configures one.
const FALLBACK_REGION: &str = "us-east-1";

#[derive(Debug)]
pub(crate) struct Clients {
    config: AwsConfig,
    shared: OnceCell<SdkConfig>,
    ec2: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
}

impl Clients {
    pub(crate) fn new(config: AwsConfig) -> Self {
        Self {
            config,
            shared: OnceCell::new(),
            ec2: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn config(&self) -> &AwsConfig {
        &self.config
    }

    /// aws-config's default chain, loaded on first use: loading reads `~/.aws` and may ask IMDS
    /// for a region, which a provider that is only constructed (say, for `broker cost`) should
    /// never wait for.
    async fn shared(&self) -> &SdkConfig {
        self.shared
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(profile) = &self.config.profile {
                    loader = loader.profile_name(profile);
                }
                if let Some(region) = &self.config.home_region {
                    loader = loader.region(Region::new(region.clone()));
                }
                if let Some(keys) = &self.config.credentials {
                    loader = loader.credentials_provider(Credentials::new(
                        keys.access_key_id.clone(),
                        keys.secret_access_key.clone(),
                        keys.session_token.clone(),
                        None,
                        "broker-config",
                    ));
                }
                if let Some(endpoint) = &self.config.endpoint {
                    loader = loader.endpoint_url(endpoint);
                }
                loader.load().await
            })
            .await
    }

    /// The configured region, else aws-config's (`AWS_REGION`, the profile's), else us-east-1.
    pub(crate) async fn home_region(&self) -> String {
        self.shared()
            .await
            .region()
            .map_or_else(|| FALLBACK_REGION.to_owned(), ToString::to_string)
    }

    /// The EC2 client of `region`.
    pub(crate) async fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        if let Some(client) = self.ec2.lock().unwrap_or_else(PoisonError::into_inner).get(region) {
            return client.clone();
        }
        let conf = aws_sdk_ec2::config::Builder::from(self.shared().await)
            .region(Region::new(region.to_owned()))
            .build();
        let client = aws_sdk_ec2::Client::from_conf(conf);
        self.ec2
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(region.to_owned())
            .or_insert(client)
            .clone()
    }

    /// An STS client in the home region (STS is global, but regional endpoints are the default).
    pub(crate) async fn sts(&self) -> aws_sdk_sts::Client {
        let region = self.home_region().await;
        let conf = aws_sdk_sts::config::Builder::from(self.shared().await)
            .region(Region::new(region))
            .build();
        aws_sdk_sts::Client::from_conf(conf)
    }
}
