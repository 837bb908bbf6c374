//! The metadata server: `Metadata-Flavor: Google` both ways, token, email, project id.

use serde_json::Value;

use crate::support::{Harness, ZONE};

const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

#[tokio::test]
async fn requests_without_the_flavor_header_are_forbidden() {
    let h = Harness::new().await;
    for path in [TOKEN_PATH, "/computeMetadata/v1/project/project-id"] {
        let response = h
            .client
            .get(format!("{}{path}", h.fake.metadata_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.contains("Missing Metadata-Flavor:Google header"), "{body}");
        let wrong = h
            .client
            .get(format!("{}{path}", h.fake.metadata_url()))
            .header("Metadata-Flavor", "Amazon")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 403);
    }
}

#[tokio::test]
async fn token_email_and_project_id() {
    let h = Harness::new().await;
    let get = |path: &str| {
        h.client
            .get(format!("{}{path}", h.fake.metadata_url()))
            .header("Metadata-Flavor", "Google")
            .send()
    };
    let response = get(TOKEN_PATH).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["metadata-flavor"], "Google");
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);
    let compute = h
        .client
        .get(h.url(&format!("zones/{ZONE}/instances")))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(compute.status(), 200);

    let email = get("/computeMetadata/v1/instance/service-accounts/default/email")
        .await
        .unwrap();
    assert_eq!(
        email.text().await.unwrap(),
        "123456789012-compute@developer.gserviceaccount.com"
    );
    let project = get("/computeMetadata/v1/project/project-id").await.unwrap();
    assert_eq!(project.text().await.unwrap(), "broker-test");

    // A token for scopes that exclude Compute is issued but refused by Compute.
    let narrow: Value = get(&format!(
        "{TOKEN_PATH}?scopes=https://www.googleapis.com/auth/devstorage.read_only"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let refused = h
        .client
        .get(h.url(&format!("zones/{ZONE}/instances")))
        .bearer_auth(narrow["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}
