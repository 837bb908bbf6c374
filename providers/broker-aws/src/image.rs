//! Which machine image a node boots: the launch spec's, or the newest AWS Deep Learning Base
//! AMI (NVIDIA driver, CUDA, Docker with the NVIDIA runtime) for the instance's architecture.
//!
//! The DLAMI is found with `DescribeImages` by owner (`amazon`) and name, newest first
//! (`../shared/reference/cloud-apis.md` §C.7). AWS also publishes its id as an SSM public
//! parameter, but `aws-sdk-ssm` costs about three minutes of compile time on two cores, as much
//! as `aws-sdk-ec2` itself, for a single `GetParameter` call whose answer `DescribeImages` gives
//! too; so broker does not use it.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{ArchitectureValues, Filter, Image as Ec2Image};
use broker_provider::{Cloud, ProviderError};

use crate::classify::{Call, from_sdk};

/// A bootable image and the device its root volume is attached as (needed to size that volume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Image {
    pub(crate) id: String,
    pub(crate) root_device: String,
}

/// The `DescribeImages` name pattern of the DLAMI for `arch`.
pub(crate) fn name_pattern(arch: &str) -> &'static str {
    if arch == "arm64" {
        "Deep Learning ARM64 Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
    } else {
        "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
    }
}

fn to_image(image: &Ec2Image) -> Option<Image> {
    Some(Image {
        id: image.image_id()?.to_owned(),
        root_device: image.root_device_name().unwrap_or("/dev/sda1").to_owned(),
    })
}

/// The CPU architecture of `instance_type` as AMIs name it (`x86_64`, `arm64`).
pub(crate) async fn architecture(client: &Client, region: &str, instance_type: &str) -> Result<String, ProviderError> {
    let answer = client
        .describe_instance_types()
        .instance_types(instance_type.into())
        .send()
        .await
        .map_err(|e| from_sdk(e, &Call::region("DescribeInstanceTypes", region)))?;
    let info = answer.instance_types().first().ok_or_else(|| ProviderError::Invalid {
        cloud: Cloud::Aws,
        message: format!("EC2 does not know instance type `{instance_type}` in {region}"),
    })?;
    let arm = info
        .processor_info()
        .is_some_and(|p| p.supported_architectures().iter().any(|a| a.as_str() == "arm64"));
    Ok(if arm { "arm64" } else { "x86_64" }.to_owned())
}

/// An image given by id, checked to exist in `region`.
pub(crate) async fn by_id(client: &Client, region: &str, id: &str) -> Result<Image, ProviderError> {
    let answer = client
        .describe_images()
        .image_ids(id)
        .send()
        .await
        .map_err(|e| from_sdk(e, &Call::region("DescribeImages", region)))?;
    answer
        .images()
        .iter()
        .find_map(to_image)
        .ok_or_else(|| ProviderError::Invalid {
            cloud: Cloud::Aws,
            message: format!("image `{id}` does not exist in {region} (AMIs are per region)"),
        })
}

/// The newest available DLAMI for `arch` owned by Amazon, by name.
async fn from_describe_images(client: &Client, region: &str, arch: &str) -> Result<Option<Image>, ProviderError> {
    let answer = client
        .describe_images()
        .owners("amazon")
        .filters(Filter::builder().name("name").values(name_pattern(arch)).build())
        .filters(Filter::builder().name("state").values("available").build())
        .filters(
            Filter::builder()
                .name("architecture")
                .values(ArchitectureValues::from(arch).as_str())
                .build(),
        )
        .send()
        .await
        .map_err(|e| from_sdk(e, &Call::region("DescribeImages", region)))?;
    Ok(newest(answer.images()))
}

/// The image with the latest `CreationDate` (ISO 8601 strings, so text order is time order).
fn newest(images: &[Ec2Image]) -> Option<Image> {
    images
        .iter()
        .filter(|i| i.image_id().is_some())
        .max_by(|a, b| a.creation_date().cmp(&b.creation_date()))
        .and_then(to_image)
}

/// The default image for `arch` in `region`.
pub(crate) async fn deep_learning_ami(client: &Client, region: &str, arch: &str) -> Result<Image, ProviderError> {
    from_describe_images(client, region, arch)
        .await?
        .ok_or_else(|| ProviderError::NotFound {
            cloud: Cloud::Aws,
            what: format!(
                "a Deep Learning AMI for {arch} in {region} (name `{}`); give an image explicitly",
                name_pattern(arch)
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, date: &str) -> Ec2Image {
        Ec2Image::builder()
            .image_id(id)
            .creation_date(date)
            .root_device_name("/dev/sda1")
            .build()
    }

    #[test]
    fn the_newest_image_wins() {
        let images = [
            image("ami-old", "2026-01-05T10:00:00.000Z"),
            image("ami-new", "2026-10-01T00:00:00.000Z"),
            image("ami-mid", "2026-06-01T00:00:00.000Z"),
        ];
        assert_eq!(newest(&images).map(|i| i.id), Some("ami-new".to_owned()));
        assert_eq!(newest(&[]), None);
    }

    #[test]
    fn the_name_follows_the_architecture() {
        assert!(name_pattern("arm64").contains("ARM64"));
        assert!(!name_pattern("x86_64").contains("ARM64"));
    }
}
