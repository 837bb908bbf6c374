//! The contract every provider keeps, from `broker-provider`'s conformance suite.

use broker_provider::conformance::{Fixture, run_all};

use crate::moto::Moto;
use crate::{PUBLIC_KEY, ZONE_ID, offer, provider};

#[tokio::test]
async fn passes_the_shared_provider_conformance_suite() {
    let moto = Moto::shared();
    let provider = provider(moto);
    let fixture = Fixture {
        offer: offer("g5.xlarge", ZONE_ID),
        public_key: PUBLIC_KEY.to_owned(),
        prefix: format!("bc{}", std::process::id()),
    };
    run_all(&provider, &fixture).await;
}
