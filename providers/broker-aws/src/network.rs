//! The per-region resources a node needs before it can be reached: the user's key pair and a
//! security group that opens TCP 22 to the configured CIDR and nothing else.
//!
//! Both are shared by all of a user's clusters in a region, found by name and created when
//! missing. Both steps are idempotent and safe to race: a concurrent creator's `Duplicate`
//! answer means the resource exists, which is all that was wanted.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, Ipv6Range, ResourceType, SecurityGroup, Tag, TagSpecification,
};
use aws_smithy_types::base64;
use broker_provider::{Cloud, ProviderError};
use sha2::{Digest, Sha256};

use crate::classify::{Call, code_of, from_sdk};
use crate::tags::{self, hex};

const SSH_PORT: i32 = 22;

/// The key pair name for an OpenSSH public key: `broker-` and the start of its SHA-256
/// fingerprint, so the same key always maps to the same pair and a different key never does.
pub(crate) fn key_pair_name(public_key: &str) -> Result<String, ProviderError> {
    let invalid = || ProviderError::Invalid {
        cloud: Cloud::Aws,
        message: "the SSH public key is not in OpenSSH format (`ssh-ed25519 AAAA... comment`)".to_owned(),
    };
    let mut parts = public_key.split_whitespace();
    let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if !kind.starts_with("ssh-") && !kind.starts_with("ecdsa-") {
        return Err(invalid());
    }
    let blob = base64::decode(blob).map_err(|_| invalid())?;
    Ok(format!("broker-{}", hex(&Sha256::digest(&blob)[..10])))
}

fn managed_tags(kind: ResourceType) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .tags(Tag::builder().key(tags::MANAGED).value("1").build())
        .build()
}

/// Imports `public_key` as key pair `name` unless it exists.
pub(crate) async fn ensure_key_pair(
    client: &Client,
    region: &str,
    name: &str,
    public_key: &str,
) -> Result<(), ProviderError> {
    let imported = client
        .import_key_pair()
        .key_name(name)
        // Only the key itself: EC2 rejects some comments, and the name already identifies it.
        .public_key_material(Blob::new(
            public_key.split_whitespace().take(2).collect::<Vec<_>>().join(" "),
        ))
        .tag_specifications(managed_tags(ResourceType::KeyPair))
        .send()
        .await;
    match imported {
        Ok(_) => Ok(()),
        // Same name means same fingerprint: it is this very key.
        Err(e) if code_of(&e) == Some("InvalidKeyPair.Duplicate") => Ok(()),
        Err(e) => Err(from_sdk(e, &Call::region("ImportKeyPair", region))),
    }
}

/// The id of the region's default VPC.
async fn default_vpc(client: &Client, region: &str) -> Result<String, ProviderError> {
    let answer = client
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .map_err(|e| from_sdk(e, &Call::region("DescribeVpcs", region)))?;
    answer
        .vpcs()
        .iter()
        .find_map(|v| v.vpc_id())
        .map(str::to_owned)
        .ok_or_else(|| ProviderError::Invalid {
            cloud: Cloud::Aws,
            message: format!(
                "region `{region}` has no default VPC to launch into (create one: `aws ec2 create-default-vpc --region {region}`)"
            ),
        })
}

async fn find_group(
    client: &Client,
    region: &str,
    vpc: &str,
    name: &str,
) -> Result<Option<SecurityGroup>, ProviderError> {
    let answer = client
        .describe_security_groups()
        .filters(Filter::builder().name("group-name").values(name).build())
        .filters(Filter::builder().name("vpc-id").values(vpc).build())
        .send()
        .await
        .map_err(|e| from_sdk(e, &Call::region("DescribeSecurityGroups", region)))?;
    Ok(answer.security_groups().first().cloned())
}

/// Whether `group` already lets `cidr` reach TCP 22.
fn opens_ssh(group: &SecurityGroup, cidr: &str) -> bool {
    group.ip_permissions().iter().any(|p| {
        p.ip_protocol() == Some("tcp")
            && p.from_port() == Some(SSH_PORT)
            && p.to_port() == Some(SSH_PORT)
            && (p.ip_ranges().iter().any(|r| r.cidr_ip() == Some(cidr))
                || p.ipv6_ranges().iter().any(|r| r.cidr_ipv6() == Some(cidr)))
    })
}

fn ssh_rule(cidr: &str) -> IpPermission {
    let rule = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(SSH_PORT)
        .to_port(SSH_PORT);
    if cidr.contains(':') {
        rule.ipv6_ranges(Ipv6Range::builder().cidr_ipv6(cidr).description("broker ssh").build())
    } else {
        rule.ip_ranges(IpRange::builder().cidr_ip(cidr).description("broker ssh").build())
    }
    .build()
}

/// The id of security group `name` in the region's default VPC, created with its one SSH rule
/// when missing, and given that rule if someone removed it.
pub(crate) async fn ensure_security_group(
    client: &Client,
    region: &str,
    name: &str,
    cidr: &str,
) -> Result<String, ProviderError> {
    let vpc = default_vpc(client, region).await?;
    let group = if let Some(group) = find_group(client, region, &vpc, name).await? {
        group
    } else {
        let created = client
            .create_security_group()
            .group_name(name)
            .description(format!("broker: SSH from {cidr} only"))
            .vpc_id(&vpc)
            .tag_specifications(managed_tags(ResourceType::SecurityGroup))
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another launch created it a moment ago.
            Err(e) if code_of(&e) == Some("InvalidGroup.Duplicate") => {}
            Err(e) => return Err(from_sdk(e, &Call::region("CreateSecurityGroup", region))),
        }
        find_group(client, region, &vpc, name)
            .await?
            .ok_or_else(|| ProviderError::Transient {
                cloud: Cloud::Aws,
                attempts: 1,
                source: format!("security group `{name}` was created but is not listed yet").into(),
            })?
    };
    let id = group.group_id().unwrap_or_default().to_owned();
    if !opens_ssh(&group, cidr) {
        let authorized = client
            .authorize_security_group_ingress()
            .group_id(&id)
            .ip_permissions(ssh_rule(cidr))
            .send()
            .await;
        match authorized {
            Ok(_) => {}
            Err(e) if code_of(&e) == Some("InvalidPermission.Duplicate") => {}
            Err(e) => return Err(from_sdk(e, &Call::region("AuthorizeSecurityGroupIngress", region))),
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkmBfn0LPGdWTpp6Jyxg7yZ1GfxzX0s5mP2aDAV1f5o someone@laptop";

    #[test]
    fn key_names_follow_the_key_not_the_comment() {
        let name = key_pair_name(KEY).unwrap();
        assert!(
            name.starts_with("broker-") && name.len() == "broker-".len() + 20,
            "{name}"
        );
        let recommented = KEY.replace("someone@laptop", "other");
        assert_eq!(key_pair_name(&recommented).unwrap(), name);
        assert!(key_pair_name("not a key").is_err());
        assert!(key_pair_name("ssh-ed25519 !!!").is_err());
        assert!(key_pair_name("").is_err());
    }

    #[test]
    fn the_rule_opens_port_22_to_the_cidr_only() {
        let rule = ssh_rule("203.0.113.0/24");
        assert_eq!(
            (rule.ip_protocol(), rule.from_port(), rule.to_port()),
            (Some("tcp"), Some(22), Some(22))
        );
        assert_eq!(rule.ip_ranges().len(), 1);
        assert_eq!(rule.ip_ranges()[0].cidr_ip(), Some("203.0.113.0/24"));
        let v6 = ssh_rule("2001:db8::/32");
        assert_eq!(v6.ipv6_ranges()[0].cidr_ipv6(), Some("2001:db8::/32"));
        let group = SecurityGroup::builder().ip_permissions(rule).build();
        assert!(opens_ssh(&group, "203.0.113.0/24"));
        assert!(!opens_ssh(&group, "0.0.0.0/0"));
    }
}
