//! Real Google, only on request: `BROKER_TEST_REAL_GCP=1 cargo test -p broker-gcp --test gce -- --ignored`.
//! Read-only (credentials and one instance list), so it costs nothing; CI never sets the variable.

use broker_gcp::{GceConfig, GceProvider};
use broker_provider::Provider;

#[tokio::test]
#[ignore = "reaches real Google: set BROKER_TEST_REAL_GCP=1 and run with --ignored"]
async fn real_credentials_pass_check() {
    assert_eq!(
        std::env::var("BROKER_TEST_REAL_GCP").as_deref(),
        Ok("1"),
        "refusing to call Google without BROKER_TEST_REAL_GCP=1"
    );
    let provider = GceProvider::new(GceConfig::from_env()).unwrap();
    let readiness = provider.check().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(readiness.identity.contains(" in project "), "{}", readiness.identity);
}
