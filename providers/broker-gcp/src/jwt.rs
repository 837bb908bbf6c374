//! The signed assertion a service account trades for an access token (RFC 7523; see
//! ../shared/reference/cloud-apis.md §B.2): `b64url(header).b64url(claims).b64url(RS256 sig)`.

use base64ct::{Base64UrlUnpadded, Encoding};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use serde::Serialize;

/// The scope broker asks for: Compute needs nothing narrower to create firewalls and VMs.
pub(crate) const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// How long an assertion is valid; Google accepts at most an hour.
const LIFETIME_SECS: u64 = 3600;

/// A service account's RSA key, parsed once. Never printed: its `Debug` says only that it exists.
pub(crate) struct RsaKey(SigningKey<Sha256>);

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaKey(***)")
    }
}

/// The key in a key file cannot be used. Deliberately without the parser's detail, which could
/// quote parts of the key.
#[derive(Debug, thiserror::Error)]
#[error("the `private_key` is not an RSA key in PKCS#8 PEM form")]
pub(crate) struct BadKey;

impl RsaKey {
    /// Parses the `private_key` field of a service-account key file.
    pub(crate) fn from_pem(pem: &str) -> Result<Self, BadKey> {
        let key = rsa::PrivateKey::from_pkcs8_pem(pem.trim()).map_err(|_| BadKey)?;
        Ok(Self(SigningKey::new(key)))
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// The assertion for `email` to present at `audience` (the token endpoint), issued at `now`
/// (seconds since the epoch).
pub(crate) fn assertion(email: &str, key_id: Option<&str>, key: &RsaKey, audience: &str, now: u64) -> String {
    let header = Header {
        alg: "RS256",
        typ: "JWT",
        kid: key_id,
    };
    let claims = Claims {
        iss: email,
        scope: CLOUD_PLATFORM_SCOPE,
        aud: audience,
        iat: now,
        exp: now + LIFETIME_SECS,
    };
    let signing_input = format!("{}.{}", b64_json(&header), b64_json(&claims));
    let signature = key.0.sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        Base64UrlUnpadded::encode_string(&signature.to_bytes())
    )
}

fn b64_json(value: &impl Serialize) -> String {
    // Structs of strings and integers always serialize.
    Base64UrlUnpadded::encode_string(serde_json::to_string(value).unwrap_or_default().as_bytes())
}

#[cfg(test)]
mod tests {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;

    use super::*;

    const TEST_KEY: &str = include_str!("../tests/fixtures/test-only-sa-key.pem");
    const TEST_PUBLIC_KEY: &str = include_str!("../tests/fixtures/test-only-sa-key.pub.pem");

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).unwrap()).unwrap()
    }

    #[test]
    fn the_assertion_carries_google_claims_and_a_valid_rs256_signature() {
        let key = RsaKey::from_pem(TEST_KEY).unwrap();
        let jwt = assertion(
            "sa@p.iam.gserviceaccount.com",
            Some("kid1"),
            &key,
            "https://oauth2.googleapis.com/token",
            1_700_000_000,
        );
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "{jwt}");
        assert!(!jwt.contains('='), "unpadded base64url");
        assert_eq!(
            decode(parts[0]),
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "kid1"})
        );
        assert_eq!(
            decode(parts[1]),
            serde_json::json!({
                "iss": "sa@p.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/cloud-platform",
                "aud": "https://oauth2.googleapis.com/token",
                "iat": 1_700_000_000,
                "exp": 1_700_003_600,
            })
        );
        let public = rsa::PublicKey::from_public_key_pem(TEST_PUBLIC_KEY).unwrap();
        let verifier = VerifyingKey::<Sha256>::new(public);
        let signature = Signature::try_from(Base64UrlUnpadded::decode_vec(parts[2]).unwrap().as_slice()).unwrap();
        verifier
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn a_bad_key_says_so_without_quoting_it() {
        let garbage = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PRIVATE KEY-----\n";
        let err = RsaKey::from_pem(garbage).unwrap_err();
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
        assert_eq!(format!("{:?}", RsaKey::from_pem(TEST_KEY).unwrap()), "RsaKey(***)");
    }
}
