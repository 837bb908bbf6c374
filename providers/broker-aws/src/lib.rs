//! broker's AWS provider: nodes are EC2 instances, driven through `aws-sdk-ec2`.
//!
//! [`AwsProvider`] implements broker's [`Provider`](broker_provider::Provider) trait. Every
//! instance and its volumes carry broker's tags (`broker-managed=1`, `broker-cluster`,
//! `broker-rank`, `broker-token`, see [`tags`]), and `nodes`, `terminate` and `sweep` find
//! instances by those tags in every searched region, so EC2 itself is the record of what exists.
//!
//! - credentials come from aws-config's default chain (environment, `~/.aws` profiles with SSO
//!   and `credential_process`, web identity, ECS, IMDS); see [`AwsConfig`] for the rest;
//! - nodes boot the AWS Deep Learning Base AMI unless the spec names an image, log in with the
//!   user's key (imported as a key pair named after its fingerprint), and are reachable on TCP 22
//!   from one configured CIDR only (security group `broker-ssh`);
//! - instances require `IMDSv2` and terminate on an in-guest shutdown, so broker's on-node
//!   watchdog can end the bill;
//! - EC2 error codes are classified in `classify.rs` only, and `RunInstances` is never retried by
//!   the SDK, so a capacity error reaches the failover loop at once.
//!
//! This crate is not a general EC2 library: it creates only what broker needs, in each region's
//! default VPC.

mod classify;
mod client;
mod config;
mod discover;
mod image;
mod launch;
mod network;
mod power;
mod provider;
pub mod tags;
mod zones;

pub use config::{AwsConfig, SECURITY_GROUP, StaticCredentials, env};
pub use provider::AwsProvider;
