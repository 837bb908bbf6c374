//! Turns a failed AWS call into a classified [`ProviderError`]: the one place that reads EC2's
//! error codes (see `../shared/reference/cloud-apis.md` §C.5).
//!
//! EC2 models none of its errors, so every one arrives as a code string (`err.code()`), a
//! message and the HTTP status. [`classify`] maps them with a table, first match wins; a
//! pattern ending in `*` matches a prefix and one starting with `*` a suffix. The rest of the
//! crate never looks at a code, except for the few "already exists" answers that mean success
//! in an idempotent call ([`code_of`]).

use std::error::Error as StdError;
use std::fmt;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use broker_provider::{Cloud, FailoverScope, Location, ProviderError};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Attempts the SDK's standard retry mode makes; `RunInstances` makes one (see [`Call::launch`]).
pub(crate) const SDK_ATTEMPTS: u32 = 3;

const HINT_CREDENTIALS: &str = "set AWS_PROFILE or run `aws configure` (`aws sso login` for SSO profiles)";
const HINT_EXPIRED: &str = "the session expired: run `aws sso login` or renew AWS_SESSION_TOKEN";
const HINT_CLOCK: &str = "the request was signed too long ago: check the system clock";
const HINT_PERMISSION: &str = "the credentials lack a permission: grant the IAM action named in the message";
const HINT_OPT_IN: &str = "opt in first (enable the region, or subscribe to the image) in the AWS console";
const HINT_ACCOUNT: &str = "the AWS account is not ready for this: see the message, or contact AWS support";

/// What an error code means to broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Capacity,
    /// A per-region limit of the account (EC2's quotas are all regional).
    Quota,
    Auth(&'static str),
    NotFound,
    Transient,
    Invalid,
}

/// `(code pattern, meaning)`, first match wins: specific rows before general ones.
const TABLE: &[(&str, Class)] = &[
    // Capacity: this type is not to be had in this zone right now; another zone may have it.
    ("InsufficientInstanceCapacity", Class::Capacity),
    ("InsufficientHostCapacity", Class::Capacity),
    ("InsufficientAddressCapacity", Class::Capacity),
    ("InsufficientCapacity", Class::Capacity),
    ("InsufficientReservedInstanceCapacity", Class::Capacity),
    // "Your requested instance type is not supported in your requested Availability Zone".
    ("Unsupported", Class::Capacity),
    // The default subnet of this zone is full; another zone has another subnet.
    ("InsufficientFreeAddressesInSubnet", Class::Capacity),
    // Broker sets no MaxPrice, so the cap is the on-demand price: this zone's spot market costs
    // more than on-demand right now. That is the state of one market, not a malformed request
    // (`Invalid` would end the whole launch), and another zone or on-demand may well be fine.
    ("SpotMaxPriceTooLow", Class::Capacity),
    // `StateReason` codes of an instance that died while pending.
    ("Server.InsufficientInstanceCapacity", Class::Capacity),
    ("Server.SpotInstanceTermination", Class::Capacity),
    ("Server.SpotInstanceShutdown", Class::Capacity),
    ("InstanceLimitExceeded", Class::Quota),
    ("VcpuLimitExceeded", Class::Quota),
    ("MaxSpotInstanceCountExceeded", Class::Quota),
    ("VolumeLimitExceeded", Class::Quota),
    ("ResourceLimitExceeded", Class::Quota),
    ("SecurityGroupLimitExceeded", Class::Quota),
    ("RulesPerSecurityGroupLimitExceeded", Class::Quota),
    ("KeyPairLimitExceeded", Class::Quota),
    ("AuthFailure", Class::Auth(HINT_CREDENTIALS)),
    ("InvalidClientTokenId", Class::Auth(HINT_CREDENTIALS)),
    ("SignatureDoesNotMatch", Class::Auth(HINT_CREDENTIALS)),
    ("UnrecognizedClientException", Class::Auth(HINT_CREDENTIALS)),
    ("InvalidAccessKeyId", Class::Auth(HINT_CREDENTIALS)),
    ("MissingAuthenticationToken", Class::Auth(HINT_CREDENTIALS)),
    ("ExpiredToken", Class::Auth(HINT_EXPIRED)),
    ("ExpiredTokenException", Class::Auth(HINT_EXPIRED)),
    ("RequestExpired", Class::Auth(HINT_CLOCK)),
    ("UnauthorizedOperation", Class::Auth(HINT_PERMISSION)),
    ("AccessDenied", Class::Auth(HINT_PERMISSION)),
    ("AccessDeniedException", Class::Auth(HINT_PERMISSION)),
    ("OptInRequired", Class::Auth(HINT_OPT_IN)),
    ("PendingVerification", Class::Auth(HINT_ACCOUNT)),
    ("Blocked", Class::Auth(HINT_ACCOUNT)),
    ("RequestLimitExceeded", Class::Transient),
    ("Throttling", Class::Transient),
    ("ThrottlingException", Class::Transient),
    ("TooManyRequestsException", Class::Transient),
    ("InternalError", Class::Transient),
    ("InternalFailure", Class::Transient),
    ("InternalServerError", Class::Transient),
    ("ServiceUnavailable", Class::Transient),
    ("ServiceUnavailableException", Class::Transient),
    ("Unavailable", Class::Transient),
    ("RequestTimeout", Class::Transient),
    ("RequestTimeoutException", Class::Transient),
    ("Server.InternalError", Class::Transient),
    // A missing image is a wrong request (an AMI of another region, a typo), not a lookup miss.
    ("InvalidAMIID.*", Class::Invalid),
    ("InvalidParameterValue", Class::Invalid),
    ("InvalidParameterCombination", Class::Invalid),
    ("InvalidParameter", Class::Invalid),
    ("MissingParameter", Class::Invalid),
    ("UnknownParameter", Class::Invalid),
    ("InvalidInstanceType", Class::Invalid),
    ("InvalidBlockDeviceMapping", Class::Invalid),
    ("InvalidKeyPair.Format", Class::Invalid),
    ("IdempotentParameterMismatch", Class::Invalid),
    ("IdempotentInstanceTerminated", Class::Invalid),
    ("IncorrectInstanceState", Class::Invalid),
    ("IncorrectState", Class::Invalid),
    ("UnsupportedOperation", Class::Invalid),
    ("ValidationError", Class::Invalid),
    ("ValidationException", Class::Invalid),
    ("*.Malformed", Class::Invalid),
    ("*.NotFound", Class::NotFound),
];

fn matches(pattern: &str, code: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix('*') {
        code.starts_with(prefix)
    } else if let Some(suffix) = pattern.strip_prefix('*') {
        code.ends_with(suffix)
    } else {
        code == pattern
    }
}

/// The call that failed, for errors that name a place or count attempts.
#[derive(Debug, Clone)]
pub(crate) struct Call<'a> {
    /// The API operation (`RunInstances`).
    pub(crate) operation: &'static str,
    /// Where the call went; a zone when the call was about one.
    pub(crate) location: Location,
    /// The instance type asked for, when there was one.
    pub(crate) instance_type: Option<&'a str>,
    /// Attempts the SDK made before giving up.
    pub(crate) attempts: u32,
}

impl<'a> Call<'a> {
    /// A call about a region, with the SDK's standard retries.
    pub(crate) fn region(operation: &'static str, region: &str) -> Self {
        Self {
            operation,
            location: Location {
                region: region.to_owned().into(),
                zone: None,
            },
            instance_type: None,
            attempts: SDK_ATTEMPTS,
        }
    }

    /// `RunInstances` of `instance_type` at `location`: sent once, never retried by the SDK.
    pub(crate) fn launch(instance_type: &'a str, location: &Location) -> Self {
        Self {
            operation: "RunInstances",
            location: location.clone(),
            instance_type: Some(instance_type),
            attempts: 1,
        }
    }
}

/// A failed AWS call in words, kept as the source of unclassified and transient errors.
#[derive(Debug)]
pub(crate) struct ApiError {
    operation: &'static str,
    code: Option<String>,
    status: Option<u16>,
    message: String,
    source: Option<BoxError>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` failed", self.operation)?;
        if let Some(code) = &self.code {
            write!(f, ": {code}")?;
        }
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl StdError for ApiError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

/// Maps an AWS error code, the HTTP status and the message to broker's error classes.
///
/// Without a known code the status decides: 401 and 403 mean the credentials were refused
/// (some endpoints, moto's STS among them, answer in a shape whose code the SDK cannot read),
/// 5xx is transient (EC2's own rule: retry 500-series, not 400-series), anything else is
/// unclassified.
pub(crate) fn classify(code: Option<&str>, status: Option<u16>, message: &str, call: &Call<'_>) -> ProviderError {
    let cloud = Cloud::Aws;
    let class = code
        .and_then(|code| TABLE.iter().find(|(pattern, _)| matches(pattern, code)))
        .map(|(_, class)| *class)
        .or(match status {
            Some(401 | 403) => Some(Class::Auth(HINT_CREDENTIALS)),
            Some(500..) => Some(Class::Transient),
            _ => None,
        });
    let api_error = || ApiError {
        operation: call.operation,
        code: code.map(str::to_owned),
        status,
        message: message.to_owned(),
        source: None,
    };
    let what = code.map_or_else(
        || status.map_or_else(|| "no error code".to_owned(), |s| format!("HTTP {s}")),
        str::to_owned,
    );
    let text = if message.is_empty() {
        what.clone()
    } else {
        format!("{what}: {message}")
    };
    match class {
        Some(Class::Capacity) => ProviderError::Capacity {
            cloud,
            location: call.location.clone(),
            instance_type: call.instance_type.unwrap_or("instances").to_owned(),
            message: text,
        },
        Some(Class::Quota) => ProviderError::Quota {
            cloud,
            quota: what,
            scope: FailoverScope::Region,
            message: format!("{message} (in {})", call.location.region),
        },
        Some(Class::Auth(hint)) => ProviderError::Auth {
            cloud,
            message: format!("`{}`: {text}", call.operation),
            hint: hint.to_owned(),
        },
        Some(Class::NotFound) => ProviderError::NotFound { cloud, what: text },
        Some(Class::Invalid) => ProviderError::Invalid {
            cloud,
            message: format!("`{}`: {text}", call.operation),
        },
        Some(Class::Transient) => ProviderError::Transient {
            cloud,
            attempts: call.attempts,
            source: Box::new(api_error()),
        },
        None => ProviderError::Other {
            cloud,
            source: Box::new(api_error()),
        },
    }
}

/// The error code of a failed call, for the few codes that mean success to an idempotent caller.
pub(crate) fn code_of<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    err.code()
}

/// Classifies any failure of an SDK call: a service error by its code, a missing or unusable
/// credential as `Auth`, a timeout or connection failure as `Transient`.
pub(crate) fn from_sdk<E>(err: SdkError<E, HttpResponse>, call: &Call<'_>) -> ProviderError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    if let SdkError::ServiceError(_) = &err {
        return classify(err.code(), status, err.message().unwrap_or_default(), call);
    }
    let cloud = Cloud::Aws;
    let detail = DisplayErrorContext(&err).to_string();
    if let Some(credentials) = credentials_error(&err) {
        return ProviderError::Auth {
            cloud,
            message: format!("no usable AWS credentials: {}", DisplayErrorContext(credentials)),
            hint: HINT_CREDENTIALS.to_owned(),
        };
    }
    let transient =
        matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)) || status.is_some_and(|s| s >= 500);
    let wrapped = ApiError {
        operation: call.operation,
        code: None,
        status,
        message: detail,
        source: Some(Box::new(err)),
    };
    if transient {
        ProviderError::Transient {
            cloud,
            attempts: call.attempts,
            source: Box::new(wrapped),
        }
    } else {
        ProviderError::Other {
            cloud,
            source: Box::new(wrapped),
        }
    }
}

/// The credential failure somewhere in `err`'s chain: the SDK reports a chain that found
/// nothing as a dispatch failure whose source, some levels down, is a `CredentialsError`.
fn credentials_error<'e>(err: &'e (dyn StdError + 'static)) -> Option<&'e CredentialsError> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use broker_provider::ErrorClass;

    use super::*;

    fn zone() -> Location {
        Location {
            region: "us-east-1".into(),
            zone: Some("use1-az1".into()),
        }
    }

    /// Real EC2 and STS codes with the status they come with, and what they must mean.
    const CASES: &[(&str, u16, ErrorClass, Option<FailoverScope>)] = &[
        (
            "InsufficientInstanceCapacity",
            500,
            ErrorClass::Capacity,
            Some(FailoverScope::Zone),
        ),
        (
            "InsufficientHostCapacity",
            500,
            ErrorClass::Capacity,
            Some(FailoverScope::Zone),
        ),
        (
            "InsufficientCapacity",
            500,
            ErrorClass::Capacity,
            Some(FailoverScope::Zone),
        ),
        (
            "InsufficientAddressCapacity",
            500,
            ErrorClass::Capacity,
            Some(FailoverScope::Zone),
        ),
        ("Unsupported", 400, ErrorClass::Capacity, Some(FailoverScope::Zone)),
        (
            "InsufficientFreeAddressesInSubnet",
            400,
            ErrorClass::Capacity,
            Some(FailoverScope::Zone),
        ),
        (
            "SpotMaxPriceTooLow",
            400,
            ErrorClass::Capacity,
            Some(FailoverScope::Zone),
        ),
        (
            "Server.InsufficientInstanceCapacity",
            0,
            ErrorClass::Capacity,
            Some(FailoverScope::Zone),
        ),
        (
            "InstanceLimitExceeded",
            400,
            ErrorClass::Quota,
            Some(FailoverScope::Region),
        ),
        ("VcpuLimitExceeded", 400, ErrorClass::Quota, Some(FailoverScope::Region)),
        (
            "MaxSpotInstanceCountExceeded",
            400,
            ErrorClass::Quota,
            Some(FailoverScope::Region),
        ),
        ("AuthFailure", 401, ErrorClass::Auth, Some(FailoverScope::Cloud)),
        (
            "UnauthorizedOperation",
            403,
            ErrorClass::Auth,
            Some(FailoverScope::Cloud),
        ),
        (
            "InvalidClientTokenId",
            403,
            ErrorClass::Auth,
            Some(FailoverScope::Cloud),
        ),
        ("ExpiredToken", 400, ErrorClass::Auth, Some(FailoverScope::Cloud)),
        (
            "SignatureDoesNotMatch",
            403,
            ErrorClass::Auth,
            Some(FailoverScope::Cloud),
        ),
        ("OptInRequired", 401, ErrorClass::Auth, Some(FailoverScope::Cloud)),
        ("RequestLimitExceeded", 503, ErrorClass::Transient, None),
        ("Throttling", 400, ErrorClass::Transient, None),
        ("InternalError", 500, ErrorClass::Transient, None),
        ("ServiceUnavailable", 503, ErrorClass::Transient, None),
        ("InvalidParameterValue", 400, ErrorClass::Invalid, None),
        ("InvalidParameterCombination", 400, ErrorClass::Invalid, None),
        ("InvalidAMIID.NotFound", 400, ErrorClass::Invalid, None),
        ("InvalidAMIID.Malformed", 400, ErrorClass::Invalid, None),
        ("InvalidAMIID.Unavailable", 400, ErrorClass::Invalid, None),
        ("IdempotentParameterMismatch", 400, ErrorClass::Invalid, None),
        ("InvalidInstanceID.NotFound", 400, ErrorClass::NotFound, None),
        ("InvalidGroup.NotFound", 400, ErrorClass::NotFound, None),
        ("InvalidKeyPair.NotFound", 400, ErrorClass::NotFound, None),
        // Unknown codes: the status decides.
        ("SomethingNew", 503, ErrorClass::Transient, None),
        ("SomethingNew", 400, ErrorClass::Other, None),
    ];

    #[test]
    fn codes_map_to_classes_and_scopes() {
        let location = zone();
        let call = Call::launch("p4d.24xlarge", &location);
        for &(code, status, class, scope) in CASES {
            let status = (status != 0).then_some(status);
            let err = classify(Some(code), status, "the cloud's words", &call);
            assert_eq!(err.class(), class, "{code}: {err}");
            assert_eq!(err.failover(), scope, "{code}: {err}");
            assert_eq!(err.cloud(), Cloud::Aws);
        }
    }

    #[test]
    fn capacity_names_type_and_place_and_quota_the_region() {
        let location = zone();
        let err = classify(
            Some("InsufficientInstanceCapacity"),
            Some(500),
            "We currently do not have sufficient p4d.24xlarge capacity",
            &Call::launch("p4d.24xlarge", &location),
        );
        assert_eq!(
            err.to_string(),
            "aws: no capacity for `p4d.24xlarge` in us-east-1/use1-az1: InsufficientInstanceCapacity: \
             We currently do not have sufficient p4d.24xlarge capacity"
        );
        let quota = classify(
            Some("VcpuLimitExceeded"),
            Some(400),
            "You have requested more vCPU capacity than your current vCPU limit",
            &Call::launch("g5.xlarge", &location),
        );
        assert!(quota.to_string().contains("quota `VcpuLimitExceeded`"), "{quota}");
        assert!(quota.to_string().contains("(in us-east-1)"), "{quota}");
    }

    #[test]
    fn auth_errors_carry_a_hint_and_transients_the_attempts() {
        let err = classify(
            Some("AuthFailure"),
            Some(401),
            "not valid",
            &Call::region("DescribeInstances", "eu-west-1"),
        );
        let ProviderError::Auth { hint, message, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(hint.contains("AWS_PROFILE") && hint.contains("aws configure"), "{hint}");
        assert!(message.contains("`DescribeInstances`"), "{message}");

        let location = zone();
        let once = classify(
            Some("InternalError"),
            Some(500),
            "",
            &Call::launch("g5.xlarge", &location),
        );
        assert!(matches!(once, ProviderError::Transient { attempts: 1, .. }), "{once:?}");
        let thrice = classify(
            Some("Throttling"),
            Some(400),
            "",
            &Call::region("DescribeInstances", "us-east-1"),
        );
        assert!(
            matches!(thrice, ProviderError::Transient { attempts: 3, .. }),
            "{thrice:?}"
        );
    }

    #[test]
    fn sdk_errors_without_a_code_are_classified_by_kind() {
        let call = Call::region("GetCallerIdentity", "us-east-1");
        let missing = CredentialsError::not_loaded("no providers in chain provided credentials");
        let err: SdkError<aws_sdk_ec2::Error, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other(Box::new(missing), None));
        let classified = from_sdk(err, &call);
        assert_eq!(classified.class(), ErrorClass::Auth, "{classified}");

        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err: SdkError<aws_sdk_ec2::Error, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        assert_eq!(from_sdk(err, &call).class(), ErrorClass::Transient);
    }

    #[test]
    fn without_a_code_the_status_decides() {
        let call = Call::region("GetCallerIdentity", "us-east-1");
        assert_eq!(classify(None, Some(403), "", &call).class(), ErrorClass::Auth);
        assert_eq!(classify(None, Some(401), "", &call).class(), ErrorClass::Auth);
        assert_eq!(classify(None, Some(502), "", &call).class(), ErrorClass::Transient);
        assert_eq!(classify(None, Some(400), "", &call).class(), ErrorClass::Other);
        assert_eq!(classify(None, None, "", &call).class(), ErrorClass::Other);
    }

    #[test]
    fn patterns_match_prefixes_and_suffixes() {
        assert!(matches("InvalidAMIID.*", "InvalidAMIID.NotFound"));
        assert!(matches("*.NotFound", "InvalidVpcID.NotFound"));
        assert!(!matches("*.NotFound", "NotFound"));
        assert!(!matches("Unsupported", "UnsupportedOperation"));
    }
}
