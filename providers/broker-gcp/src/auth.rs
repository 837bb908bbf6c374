//! Access tokens for Compute, without the gcloud SDK (../shared/reference/cloud-apis.md §B).
//!
//! Credentials are looked for once, on the first token request, in this order (AIP-4110 with an
//! explicit file in front):
//!
//! 1. an explicit key file ([`GceConfig::credentials_file`]);
//! 2. the file `GOOGLE_APPLICATION_CREDENTIALS` names;
//! 3. gcloud's Application Default Credentials file, if it exists: `authorized_user` (a refresh
//!    token from `gcloud auth application-default login`) or `service_account`;
//! 4. the metadata server (on a GCE VM).
//!
//! A file that is named but unreadable is an error, not a reason to try the next source: falling
//! through would silently run as some other identity. Tokens are cached and refreshed a little
//! before they expire, one refresh at a time. Private keys, refresh tokens, client secrets and
//! access tokens live in [`Secret`]s and [`RsaKey`]s, whose `Debug` prints `***`; no error here
//! quotes a file's contents or a token endpoint's whole answer.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use broker_provider::{Cloud, ProviderError};
use serde::Deserialize;
use tokio::sync::{Mutex, OnceCell};

use crate::GceConfig;
use crate::classify::LOGIN_HINT;
use crate::config::{DEFAULT_TOKEN_URL, insecure_url};
use crate::jwt::{self, CLOUD_PLATFORM_SCOPE, RsaKey};
use crate::retry;

/// Refresh at most this long before a token expires (less for short-lived tokens).
const EARLY_REFRESH: Duration = Duration::from_mins(5);
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The metadata server answers in milliseconds on GCE; off GCE its name does not resolve.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
const TOKEN_ATTEMPTS: u32 = 3;

/// A string that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("no GCP credentials found: {tried}")]
    NoCredentials { tried: String },
    #[error("cannot read credentials file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credentials file {} is not usable: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },
    #[error("refusing to send credentials over plain HTTP to `{url}` (only loopback may use http)")]
    Insecure { url: String },
    #[error("token endpoint `{url}` refused the credentials: HTTP {status} {error}{description}")]
    Refused {
        url: String,
        status: u16,
        error: String,
        description: String,
    },
    #[error("token endpoint `{url}` failed: {message}")]
    Unavailable { url: String, message: String },
    #[error("the metadata server at `{url}` gave no token: {message}")]
    Metadata { url: String, message: String },
}

impl AuthError {
    /// Worth another try: the endpoint did not answer or answered 5xx/429.
    fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    pub(crate) fn into_provider_error(self) -> ProviderError {
        let hint = match &self {
            Self::Read { path, .. } | Self::BadFile { path, .. } => {
                format!("fix or replace {} ({LOGIN_HINT})", path.display())
            }
            Self::Insecure { .. } => "use an https token endpoint (BROKER_GCP_TOKEN_URL)".to_owned(),
            _ => LOGIN_HINT.to_owned(),
        };
        if self.is_transient() {
            return ProviderError::Transient {
                cloud: Cloud::Gcp,
                attempts: TOKEN_ATTEMPTS,
                source: Box::new(self),
            };
        }
        ProviderError::Auth {
            cloud: Cloud::Gcp,
            message: self.to_string(),
            hint,
        }
    }
}

/// Where tokens come from, once found.
#[derive(Debug)]
enum Source {
    ServiceAccount {
        email: String,
        key_id: Option<String>,
        key: Box<RsaKey>,
        token_url: String,
        project_id: Option<String>,
    },
    AuthorizedUser {
        client_id: String,
        client_secret: Secret,
        refresh_token: Secret,
        token_url: String,
        quota_project_id: Option<String>,
        account: Option<String>,
    },
    Metadata,
}

/// The fields broker reads of a key file; `type` picks the variant.
#[derive(Deserialize)]
struct ServiceAccountFile {
    client_email: String,
    private_key: Secret,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
}

#[derive(Deserialize)]
struct AuthorizedUserFile {
    client_id: String,
    client_secret: Secret,
    refresh_token: Secret,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    quota_project_id: Option<String>,
    #[serde(default)]
    account: Option<String>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct TokenErrorResponse {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(crate) struct AccessToken {
    value: Secret,
    refresh_at: Instant,
}

impl AccessToken {
    pub(crate) fn secret(&self) -> &str {
        self.value.expose()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &self.value)
            .field("refresh_at", &self.refresh_at)
            .finish()
    }
}

/// What [`Auth`] needs of the configuration.
#[derive(Debug, Clone)]
struct Settings {
    credentials_file: Option<PathBuf>,
    application_credentials: Option<PathBuf>,
    adc_file: Option<PathBuf>,
    use_metadata_server: bool,
    token_url: Option<String>,
    metadata_url: String,
}

/// Finds credentials, fetches tokens and caches them.
#[derive(Debug)]
pub(crate) struct Auth {
    http: reqwest::Client,
    settings: Settings,
    source: OnceCell<Source>,
    /// Held across a refresh, so concurrent callers wait for one fetch instead of each doing one.
    cache: Mutex<Option<AccessToken>>,
}

impl Auth {
    pub(crate) fn new(http: reqwest::Client, config: &GceConfig) -> Self {
        Self {
            http,
            settings: Settings {
                credentials_file: config.credentials_file.clone(),
                application_credentials: config.application_credentials.clone(),
                adc_file: config.adc_file.clone(),
                use_metadata_server: config.use_metadata_server,
                token_url: config.token_url.clone(),
                metadata_url: config.metadata_url.trim_end_matches('/').to_owned(),
            },
            source: OnceCell::new(),
            cache: Mutex::new(None),
        }
    }

    async fn source(&self) -> Result<&Source, AuthError> {
        self.source.get_or_try_init(|| self.discover()).await
    }

    /// The ladder in the module docs.
    async fn discover(&self) -> Result<Source, AuthError> {
        let settings = &self.settings;
        if let Some(path) = &settings.credentials_file {
            tracing::debug!(source = "key-file", path = %path.display(), "using GCP credentials");
            return self.load(path).await;
        }
        if let Some(path) = &settings.application_credentials {
            tracing::debug!(source = "GOOGLE_APPLICATION_CREDENTIALS", path = %path.display(), "using GCP credentials");
            return self.load(path).await;
        }
        if let Some(path) = &settings.adc_file {
            match tokio::fs::metadata(path).await {
                Ok(_) => {
                    tracing::debug!(source = "adc-file", path = %path.display(), "using GCP credentials");
                    return self.load(path).await;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(AuthError::Read {
                        path: path.clone(),
                        source,
                    });
                }
            }
        }
        if settings.use_metadata_server {
            tracing::debug!(source = "metadata-server", url = %settings.metadata_url, "using GCP credentials");
            return Ok(Source::Metadata);
        }
        let adc = settings
            .adc_file
            .as_ref()
            .map_or_else(|| "no ADC file".to_owned(), |p| format!("no {}", p.display()));
        Err(AuthError::NoCredentials {
            tried: format!("no key file, GOOGLE_APPLICATION_CREDENTIALS unset, {adc}, metadata server off"),
        })
    }

    async fn load(&self, path: &Path) -> Result<Source, AuthError> {
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|source| AuthError::Read {
                path: path.to_owned(),
                source,
            })?;
        parse_key_file(&text, self.settings.token_url.as_deref()).map_err(|reason| AuthError::BadFile {
            path: path.to_owned(),
            reason,
        })
    }

    /// A token valid for a while yet, from the cache or freshly fetched.
    pub(crate) async fn token(&self) -> Result<AccessToken, AuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(token) = cache.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.clone());
        }
        let token = self.fetch_with_retries().await?;
        *cache = Some(token.clone());
        Ok(token)
    }

    /// Forgets `token` after Compute rejected it (revoked, or expired early), so the next
    /// [`Self::token`] fetches another; a newer token someone else fetched meanwhile stays.
    pub(crate) async fn invalidate(&self, token: &AccessToken) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|t| t.value == token.value) {
            *cache = None;
        }
    }

    async fn fetch_with_retries(&self) -> Result<AccessToken, AuthError> {
        let mut attempt = 1;
        loop {
            match self.fetch().await {
                Err(e) if e.is_transient() && attempt < TOKEN_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "token fetch failed, retrying");
                    tokio::time::sleep(retry::delay(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn fetch(&self) -> Result<AccessToken, AuthError> {
        let started = Instant::now();
        let response = match self.source().await? {
            Source::ServiceAccount {
                email,
                key_id,
                key,
                token_url,
                ..
            } => {
                let assertion = jwt::assertion(email, key_id.as_deref(), key, token_url, unix_now());
                let form = [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ];
                self.post_form(token_url, &form, None).await?
            }
            Source::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
                token_url,
                quota_project_id,
                ..
            } => {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.expose()),
                    ("refresh_token", refresh_token.expose()),
                ];
                self.post_form(token_url, &form, quota_project_id.as_deref()).await?
            }
            Source::Metadata => self.metadata_token().await?,
        };
        let lifetime = Duration::from_secs(response.expires_in.unwrap_or(3600));
        // A quarter of a short lifetime, so tokens the fake issues for seconds are still reused.
        let early = EARLY_REFRESH.min(lifetime / 4);
        Ok(AccessToken {
            value: response.access_token,
            refresh_at: started + lifetime.saturating_sub(early),
        })
    }

    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        quota_project: Option<&str>,
    ) -> Result<TokenResponse, AuthError> {
        if insecure_url(url) {
            return Err(AuthError::Insecure { url: url.to_owned() });
        }
        let mut request = self.http.post(url).timeout(TOKEN_TIMEOUT).form(form);
        if let Some(project) = quota_project {
            request = request.header("x-goog-user-project", project);
        }
        let unavailable = |message: String| AuthError::Unavailable {
            url: url.to_owned(),
            message,
        };
        let response = request.send().await.map_err(|e| unavailable(transport(&e)))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| unavailable(transport(&e)))?;
        if status.is_success() {
            return serde_json::from_str(&body)
                .map_err(|_| unavailable("the answer is not a token response".to_owned()));
        }
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(unavailable(format!("HTTP {}", status.as_u16())));
        }
        // Only the two standard fields: anything else in the body could echo what was sent.
        let parsed: TokenErrorResponse = serde_json::from_str(&body).unwrap_or_default();
        Err(AuthError::Refused {
            url: url.to_owned(),
            status: status.as_u16(),
            error: parsed.error,
            description: parsed.error_description.map(|d| format!(": {d}")).unwrap_or_default(),
        })
    }

    async fn metadata_get(&self, path: &str) -> Result<reqwest::Response, AuthError> {
        let url = format!("{}/computeMetadata/v1/{path}", self.settings.metadata_url);
        let failed = |message: String| AuthError::Metadata {
            url: self.settings.metadata_url.clone(),
            message,
        };
        let response = self
            .http
            .get(&url)
            .header("Metadata-Flavor", "Google")
            .timeout(METADATA_TIMEOUT)
            .send()
            .await
            .map_err(|e| failed(format!("{} (not on GCE? then configure a key file)", transport(&e))))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {} for {path}", response.status().as_u16())));
        }
        Ok(response)
    }

    async fn metadata_token(&self) -> Result<TokenResponse, AuthError> {
        let response = self
            .metadata_get(&format!(
                "instance/service-accounts/default/token?scopes={CLOUD_PLATFORM_SCOPE}"
            ))
            .await?;
        response.json().await.map_err(|_| AuthError::Metadata {
            url: self.settings.metadata_url.clone(),
            message: "the answer is not a token response".to_owned(),
        })
    }

    async fn metadata_text(&self, path: &str) -> Result<String, AuthError> {
        let response = self.metadata_get(path).await?;
        let text = response.text().await.map_err(|e| AuthError::Metadata {
            url: self.settings.metadata_url.clone(),
            message: transport(&e),
        })?;
        Ok(text.trim().to_owned())
    }

    /// The project the credentials belong to, if they say: a key file's `project_id` (or a user
    /// file's `quota_project_id`), else the metadata server's project.
    pub(crate) async fn project(&self) -> Result<Option<String>, AuthError> {
        match self.source().await? {
            Source::ServiceAccount { project_id, .. } => Ok(project_id.clone()),
            Source::AuthorizedUser { quota_project_id, .. } => Ok(quota_project_id.clone()),
            Source::Metadata => self.metadata_text("project/project-id").await.map(Some),
        }
    }

    /// Who the credentials say we are, for `broker check`.
    pub(crate) async fn identity(&self) -> Result<String, AuthError> {
        match self.source().await? {
            Source::ServiceAccount { email, .. } => Ok(email.clone()),
            Source::AuthorizedUser { account, .. } => Ok(account
                .as_ref()
                .map_or_else(|| "user (ADC)".to_owned(), |a| format!("{a} (ADC user)"))),
            Source::Metadata => Ok(self
                .metadata_text("instance/service-accounts/default/email")
                .await
                .unwrap_or_else(|_| "default service account (metadata server)".to_owned())),
        }
    }
}

/// A reqwest error in one line, without its URL's query (never secret here, but long).
fn transport(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut cause = std::error::Error::source(error);
    let mut deepest = None;
    while let Some(e) = cause {
        deepest = Some(e.to_string());
        cause = e.source();
    }
    match deepest {
        Some(detail) => format!("{what}: {detail}"),
        None => what.to_owned(),
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A key file's credentials; `token_url` overrides the file's `token_uri`. The error is a
/// reason safe to print: serde's own messages can quote a field's value, so they are not used.
fn parse_key_file(text: &str, token_url: Option<&str>) -> Result<Source, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON (line {}, column {})", e.line(), e.column()))?;
    let kind = value
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let field_error = |e: &serde_json::Error| {
        let message = e.to_string();
        if message.starts_with("missing field") {
            message
        } else {
            "a field has the wrong type".to_owned()
        }
    };
    let token_url = |from_file: Option<String>| {
        token_url
            .map(str::to_owned)
            .or(from_file)
            .unwrap_or_else(|| DEFAULT_TOKEN_URL.to_owned())
    };
    match kind {
        "service_account" => {
            let file: ServiceAccountFile = serde_json::from_value(value).map_err(|e| field_error(&e))?;
            let key = RsaKey::from_pem(file.private_key.expose()).map_err(|e| e.to_string())?;
            Ok(Source::ServiceAccount {
                email: file.client_email,
                key_id: file.private_key_id.filter(|id| !id.is_empty()),
                key: Box::new(key),
                token_url: token_url(file.token_uri),
                project_id: file.project_id.filter(|p| !p.is_empty()),
            })
        }
        "authorized_user" => {
            let file: AuthorizedUserFile = serde_json::from_value(value).map_err(|e| field_error(&e))?;
            Ok(Source::AuthorizedUser {
                client_id: file.client_id,
                client_secret: file.client_secret,
                refresh_token: file.refresh_token,
                token_url: token_url(file.token_uri),
                quota_project_id: file.quota_project_id.filter(|p| !p.is_empty()),
                account: file.account.filter(|a| !a.is_empty()),
            })
        }
        "" => Err("it has no `type` field".to_owned()),
        other => Err(format!(
            "credentials of type `{other}` are not supported (use a `service_account` key or \
             `gcloud auth application-default login`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_KEY: &str = include_str!("../tests/fixtures/test-only-sa-key.pem");

    fn sa_file(token_uri: Option<&str>) -> String {
        let mut file = serde_json::json!({
            "type": "service_account",
            "project_id": "proj-1",
            "private_key_id": "k1",
            "private_key": TEST_KEY,
            "client_email": "sa@proj-1.iam.gserviceaccount.com",
            "client_id": "1",
        });
        if let Some(uri) = token_uri {
            file["token_uri"] = uri.into();
        }
        file.to_string()
    }

    #[test]
    fn service_account_files_parse_and_the_override_wins() {
        match parse_key_file(&sa_file(Some("https://file/token")), None).unwrap() {
            Source::ServiceAccount {
                email,
                key_id,
                token_url,
                project_id,
                ..
            } => {
                assert_eq!(email, "sa@proj-1.iam.gserviceaccount.com");
                assert_eq!(key_id.as_deref(), Some("k1"));
                assert_eq!(token_url, "https://file/token");
                assert_eq!(project_id.as_deref(), Some("proj-1"));
            }
            other => panic!("{other:?}"),
        }
        match parse_key_file(&sa_file(None), Some("http://127.0.0.1:1/token")).unwrap() {
            Source::ServiceAccount { token_url, .. } => assert_eq!(token_url, "http://127.0.0.1:1/token"),
            other => panic!("{other:?}"),
        }
        match parse_key_file(&sa_file(None), None).unwrap() {
            Source::ServiceAccount { token_url, .. } => assert_eq!(token_url, DEFAULT_TOKEN_URL),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn user_files_parse_and_bad_files_say_why_without_quoting_secrets() {
        let user = r#"{"type":"authorized_user","client_id":"cid","client_secret":"CLIENT-SECRET-1",
            "refresh_token":"REFRESH-SECRET-1","quota_project_id":"qp"}"#;
        let source = parse_key_file(user, None).unwrap();
        let debug = format!("{source:?}");
        assert!(
            !debug.contains("CLIENT-SECRET-1") && !debug.contains("REFRESH-SECRET-1"),
            "{debug}"
        );
        assert!(
            matches!(source, Source::AuthorizedUser { ref quota_project_id, .. } if quota_project_id.as_deref() == Some("qp"))
        );

        let wrong_type = r#"{"type":"authorized_user","client_id":"c","client_secret":"c","refresh_token":12345678}"#;
        let reason = parse_key_file(wrong_type, None).unwrap_err();
        assert!(!reason.contains("12345678"), "{reason}");
        assert!(
            parse_key_file(r#"{"type":"authorized_user"}"#, None)
                .unwrap_err()
                .contains("missing field")
        );
        assert!(parse_key_file("{", None).unwrap_err().contains("not JSON"));
        assert!(
            parse_key_file(r#"{"type":"external_account"}"#, None)
                .unwrap_err()
                .contains("external_account")
        );
        let bad_key = r#"{"type":"service_account","client_email":"e","private_key":"-----BEGIN PRIVATE KEY-----\nSECRETBYTES\n-----END PRIVATE KEY-----"}"#;
        let reason = parse_key_file(bad_key, None).unwrap_err();
        assert!(!reason.contains("SECRETBYTES"), "{reason}");
        let sa_debug = format!("{:?}", parse_key_file(&sa_file(None), None).unwrap());
        assert!(
            !sa_debug.contains("PRIVATE KEY") && !sa_debug.contains("MII"),
            "{sa_debug}"
        );
    }

    #[test]
    fn secrets_and_tokens_debug_as_stars() {
        let token = AccessToken {
            value: Secret("ya29.SECRET".into()),
            refresh_at: Instant::now(),
        };
        assert!(!format!("{token:?}").contains("ya29"));
        assert_eq!(format!("{:?}", Secret("x".into())), "***");
    }

    #[tokio::test]
    async fn no_source_at_all_is_an_auth_error_with_a_hint() {
        let config = GceConfig {
            use_metadata_server: false,
            adc_file: Some("/nonexistent/adc.json".into()),
            ..GceConfig::default()
        };
        let auth = Auth::new(reqwest::Client::new(), &config);
        let err = auth.token().await.unwrap_err().into_provider_error();
        match err {
            ProviderError::Auth { message, hint, .. } => {
                assert!(message.contains("no GCP credentials"), "{message}");
                assert!(hint.contains("gcloud auth application-default login"), "{hint}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_named_file_that_is_missing_is_an_error_not_a_fallthrough() {
        let config = GceConfig {
            application_credentials: Some("/nonexistent/key.json".into()),
            ..GceConfig::default()
        };
        let auth = Auth::new(reqwest::Client::new(), &config);
        let err = auth.token().await.unwrap_err();
        assert!(matches!(err, AuthError::Read { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn credentials_never_go_to_a_plain_http_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        std::fs::write(&path, sa_file(Some("http://oauth.example.com/token"))).unwrap();
        let config = GceConfig {
            credentials_file: Some(path),
            ..GceConfig::default()
        };
        let auth = Auth::new(reqwest::Client::new(), &config);
        assert!(matches!(auth.token().await.unwrap_err(), AuthError::Insecure { .. }));
    }
}
