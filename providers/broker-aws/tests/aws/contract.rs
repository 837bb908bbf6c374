//! What a launch must set on EC2, read back with a plain EC2 client.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    Filter, HttpTokensState, InstanceAttributeName, InstanceLifecycleType, InstanceType, VolumeType,
};
use broker_aws::{AwsConfig, AwsProvider};
use broker_provider::{
    ErrorClass, FailoverScope, LaunchSpec, LaunchToken, NodeState, Provider, ProviderError, Teardown,
};

use crate::moto::{CUSTOM_IMAGE, DLAMI_ARM, DLAMI_NEW, Moto};
use crate::{
    OTHER_ZONE_ID, REGION, ZONE_ID, ZONE_NAME, cluster, config, ec2, instances_of, offer, provider, spec, tag,
};

#[tokio::test]
async fn check_names_the_callers_arn() {
    let ready = provider(Moto::shared()).check().await.unwrap();
    assert_eq!(ready.identity, "arn:aws:sts::123456789012:user/moto");
}

#[tokio::test]
async fn launch_tags_instances_and_volumes_and_places_them_in_the_zone() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("tags");
    let spec = spec(&cluster, "tags-a1", 2).with_labels(BTreeMap::from([("team".to_owned(), "ml".to_owned())]));
    let nodes = provider.launch(&spec).await.unwrap();

    assert_eq!(nodes.iter().map(|n| n.rank).collect::<Vec<_>>(), [0, 1]);
    for node in &nodes {
        assert_eq!(node.state, NodeState::Running);
        assert_eq!(node.location.region, REGION);
        assert_eq!(
            node.location.zone.as_deref(),
            Some(ZONE_ID),
            "zones come back as catalog zone IDs"
        );
        let ssh = node.ssh.unwrap();
        assert_eq!(ssh.port(), 22);
        assert!(node.private_ip.is_some());
    }

    let instances = instances_of(moto, &cluster).await;
    assert_eq!(instances.len(), 2);
    for instance in &instances {
        let rank = tag(instance, "broker-rank").unwrap();
        assert_eq!(tag(instance, "broker-managed"), Some("1"));
        assert_eq!(tag(instance, "broker-cluster"), Some(cluster.as_str()));
        assert_eq!(tag(instance, "broker-token"), Some("tags-a1"));
        assert_eq!(tag(instance, "team"), Some("ml"));
        assert_eq!(tag(instance, "Name"), Some(format!("broker-{cluster}-{rank}").as_str()));
        assert_eq!(
            instance.placement().and_then(|p| p.availability_zone()),
            Some(ZONE_NAME)
        );
        assert_eq!(instance.instance_type().map(InstanceType::as_str), Some("g5.xlarge"));
        assert_eq!(instance.image_id(), Some(DLAMI_NEW), "the newest Deep Learning AMI");
        assert_eq!(instance.instance_lifecycle(), None, "on-demand");
        assert!(instance.key_name().is_some_and(|k| k.starts_with("broker-")));
        assert_eq!(instance.client_token(), Some(format!("tags-a1-r{rank}").as_str()));

        let volumes = ec2(moto)
            .describe_volumes()
            .filters(
                Filter::builder()
                    .name("attachment.instance-id")
                    .values(instance.instance_id().unwrap())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let volume = &volumes.volumes()[0];
        assert_eq!(
            (volume.size(), volume.volume_type()),
            (Some(40), Some(&VolumeType::Gp3))
        );
        let volume_tags: BTreeMap<&str, &str> = volume
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?, t.value()?)))
            .collect();
        assert_eq!(volume_tags.get("broker-cluster"), Some(&cluster.as_str()));
        assert_eq!(volume_tags.get("broker-rank"), Some(&rank));
        assert_eq!(volume_tags.get("broker-managed"), Some(&"1"));
        assert_eq!(volume_tags.get("team"), Some(&"ml"));
    }
    assert_eq!(provider.nodes(&cluster).await.unwrap(), nodes);
    assert!(matches!(provider.terminate(&cluster).await.unwrap(), Teardown::Terminated(ids) if ids.len() == 2));
}

#[tokio::test]
async fn spot_launches_reach_ec2_as_spot() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("spot");
    let offer = offer("g5.xlarge", ZONE_ID);
    let spec = LaunchSpec::new(cluster.clone(), LaunchToken("spot-a1".into()), &offer, 1, true)
        .with_ssh_public_key(crate::PUBLIC_KEY);
    provider.launch(&spec).await.unwrap();
    let instances = instances_of(moto, &cluster).await;
    assert_eq!(instances[0].instance_lifecycle(), Some(&InstanceLifecycleType::Spot));
    provider.terminate(&cluster).await.unwrap();
}

#[tokio::test]
async fn ssh_is_open_to_the_configured_cidr_only_and_the_key_is_imported_once() {
    let moto = Moto::shared();
    let provider = AwsProvider::new(AwsConfig {
        ssh_cidr: "198.51.100.0/24".into(),
        ..config(moto)
    })
    .unwrap();
    let first = cluster("sg-a");
    let second = cluster("sg-b");
    provider.launch(&spec(&first, "sg-a1", 1)).await.unwrap();
    // A second provider (a second broker run) finds the group and key instead of making them.
    let again = AwsProvider::new(provider.config().clone()).unwrap();
    again.launch(&spec(&second, "sg-b1", 1)).await.unwrap();

    let a = &instances_of(moto, &first).await[0];
    let b = &instances_of(moto, &second).await[0];
    assert_eq!(a.key_name(), b.key_name());
    let groups: Vec<_> = a.security_groups().iter().filter_map(|g| g.group_id()).collect();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        b.security_groups()
            .iter()
            .filter_map(|g| g.group_id())
            .collect::<Vec<_>>(),
        groups
    );

    let described = ec2(moto)
        .describe_security_groups()
        .group_ids(groups[0])
        .send()
        .await
        .unwrap();
    let group = &described.security_groups()[0];
    assert_eq!(
        group.group_name(),
        Some(provider.config().security_group_name().as_str())
    );
    assert!(group.group_name().unwrap().starts_with("broker-ssh-"));
    let rules = group.ip_permissions();
    assert_eq!(rules.len(), 1, "one ingress rule: {rules:?}");
    assert_eq!(
        (rules[0].ip_protocol(), rules[0].from_port(), rules[0].to_port()),
        (Some("tcp"), Some(22), Some(22))
    );
    let cidrs: Vec<_> = rules[0].ip_ranges().iter().filter_map(|r| r.cidr_ip()).collect();
    assert_eq!(cidrs, ["198.51.100.0/24"]);
    assert!(rules[0].ipv6_ranges().is_empty() && rules[0].user_id_group_pairs().is_empty());

    let keys = ec2(moto)
        .describe_key_pairs()
        .key_names(a.key_name().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(keys.key_pairs().len(), 1);

    provider.terminate(&first).await.unwrap();
    provider.terminate(&second).await.unwrap();
}

#[tokio::test]
async fn instances_require_imdsv2_and_terminate_on_shutdown() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("imds");
    let nodes = provider.launch(&spec(&cluster, "imds-a1", 1)).await.unwrap();
    let instance = &instances_of(moto, &cluster).await[0];
    assert_eq!(
        instance.metadata_options().and_then(|m| m.http_tokens()),
        Some(&HttpTokensState::Required)
    );
    let attribute = ec2(moto)
        .describe_instance_attribute()
        .instance_id(&nodes[0].id)
        .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attribute.instance_initiated_shutdown_behavior().and_then(|v| v.value()),
        Some("terminate")
    );
    provider.terminate(&cluster).await.unwrap();
}

#[tokio::test]
async fn images_follow_the_spec_and_the_architecture() {
    let moto = Moto::shared();
    let provider = provider(moto);

    let custom = cluster("img-custom");
    provider
        .launch(&spec(&custom, "img-a1", 1).with_image(Some(CUSTOM_IMAGE.to_owned())))
        .await
        .unwrap();
    assert_eq!(instances_of(moto, &custom).await[0].image_id(), Some(CUSTOM_IMAGE));

    let arm = cluster("img-arm");
    let arm_spec = LaunchSpec::new(
        arm.clone(),
        LaunchToken("img-b1".into()),
        &offer("g5g.xlarge", ZONE_ID),
        1,
        false,
    )
    .with_ssh_public_key(crate::PUBLIC_KEY);
    provider.launch(&arm_spec).await.unwrap();
    assert_eq!(instances_of(moto, &arm).await[0].image_id(), Some(DLAMI_ARM));

    let missing = cluster("img-missing");
    let err = provider
        .launch(&spec(&missing, "img-c1", 1).with_image(Some("ami-0000000000000dead".to_owned())))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid, "{err}");
    assert!(instances_of(moto, &missing).await.is_empty());

    provider.terminate(&custom).await.unwrap();
    provider.terminate(&arm).await.unwrap();
}

/// A zone the account cannot use (a Local Zone it has not opted into is in the catalog but not
/// in `DescribeAvailabilityZones`) rules out that zone only; an unknown instance type is a
/// mistake that no other place fixes.
#[tokio::test]
async fn unknown_zones_fail_over_and_unknown_instance_types_are_invalid() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("bad");
    let err = provider
        .launch(&LaunchSpec::new(
            cluster.clone(),
            LaunchToken("bad-a1".into()),
            &offer("g5.xlarge", "use1-az99"),
            1,
            false,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Capacity, "{err}");
    assert_eq!(err.failover(), Some(broker_provider::FailoverScope::Zone), "{err}");
    assert!(err.to_string().contains("use1-az99"), "{err}");
    let err = provider
        .launch(&LaunchSpec::new(
            cluster.clone(),
            LaunchToken("bad-a2".into()),
            &offer("g5.notatype", ZONE_ID),
            1,
            false,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Invalid, "{err}");
    assert!(instances_of(moto, &cluster).await.is_empty());
}

#[tokio::test]
async fn stop_and_start_keep_the_nodes_and_are_idempotent() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("power");
    let launched = provider.launch(&spec(&cluster, "power-a1", 2)).await.unwrap();

    let stopped = provider.stop(&cluster).await.unwrap();
    assert_eq!(
        stopped.iter().map(|n| &n.id).collect::<Vec<_>>(),
        launched.iter().map(|n| &n.id).collect::<Vec<_>>()
    );
    assert!(
        stopped.iter().all(|n| n.state == NodeState::Stopped && n.ssh.is_none()),
        "{stopped:?}"
    );
    assert_eq!(
        provider.stop(&cluster).await.unwrap(),
        stopped,
        "stopping stopped nodes changes nothing"
    );

    let started = provider.start(&cluster).await.unwrap();
    assert_eq!(started.len(), 2);
    assert!(
        started.iter().all(|n| n.state == NodeState::Running && n.ssh.is_some()),
        "{started:?}"
    );
    assert_eq!(
        started.iter().map(|n| (&n.id, n.rank)).collect::<Vec<_>>(),
        launched.iter().map(|n| (&n.id, n.rank)).collect::<Vec<_>>()
    );
    assert_eq!(
        provider.start(&cluster).await.unwrap().len(),
        2,
        "starting running nodes is fine"
    );

    provider.terminate(&cluster).await.unwrap();
    assert!(
        provider.stop(&cluster).await.unwrap().is_empty(),
        "stopping a gone cluster is a no-op"
    );
    let err = provider.start(&cluster).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound, "{err}");
}

#[tokio::test]
async fn a_cluster_that_never_was_is_already_gone() {
    let provider = provider(Moto::shared());
    let cluster = cluster("never");
    assert_eq!(provider.terminate(&cluster).await.unwrap(), Teardown::AlreadyGone);
    assert!(provider.nodes(&cluster).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_launch_elsewhere_is_found_by_nodes_and_sweep() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let cluster = cluster("west");
    let mut west = offer("g5.xlarge", OTHER_ZONE_ID);
    west.location.region = "us-west-2".into();
    west.location.zone = Some("usw2-az1".into());
    let spec = LaunchSpec::new(cluster.clone(), LaunchToken("west-a1".into()), &west, 1, false)
        .with_ssh_public_key(crate::PUBLIC_KEY);
    let nodes = provider.launch(&spec).await.unwrap();
    assert_eq!(nodes[0].location.region, "us-west-2");
    assert_eq!(nodes[0].location.zone.as_deref(), Some("usw2-az1"));
    assert_eq!(provider.nodes(&cluster).await.unwrap(), nodes);
    assert!(provider.sweep().await.unwrap().iter().any(|n| n.id == nodes[0].id));
    assert!(matches!(
        provider.terminate(&cluster).await.unwrap(),
        Teardown::Terminated(_)
    ));
}

#[tokio::test]
async fn without_a_region_list_every_enabled_region_is_searched() {
    let moto = Moto::shared();
    let provider = AwsProvider::new(AwsConfig {
        regions: None,
        ..config(moto)
    })
    .unwrap();
    let regions = provider.regions().await.unwrap();
    assert!(
        regions.len() > 10 && regions.iter().any(|r| r == "eu-west-1"),
        "{regions:?}"
    );
}

#[tokio::test]
async fn rejected_credentials_are_auth_errors_with_a_hint() {
    // moto's IAM mode: only keys it issued itself are accepted, from the first request on.
    let moto = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let provider = provider(&moto);
    for err in [
        provider.check().await.unwrap_err(),
        provider
            .launch(&spec(&cluster("auth"), "auth-a1", 1))
            .await
            .unwrap_err(),
        provider.sweep().await.unwrap_err(),
    ] {
        assert_eq!(err.class(), ErrorClass::Auth, "{err}");
        assert_eq!(err.failover(), Some(FailoverScope::Cloud));
        let ProviderError::Auth { hint, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(hint.contains("aws configure"), "{hint}");
    }
}
