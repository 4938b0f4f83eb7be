//! Single sign-on with OpenID Connect: the configured providers, and the two legs of the
//! authorization-code flow with PKCE — sending the browser to the provider, and verifying
//! what it brings back (state, code exchange, the ID token's signature, issuer, audience,
//! expiry and nonce) before anyone is signed in. Discovery and ID-token validation are
//! the `openidconnect` crate's; what the claims grant is the config's `roles` table.

use app::model::identity::{Role, RoleBinding};
use base64::Engine as _;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The cookie that carries a sign-in in flight from the provider's leg back to ours.
pub const FLOW_COOKIE: &str = "stepline_sign_in_flow";
/// How long a sign-in may take at the provider.
pub const FLOW_TTL: Duration = Duration::from_secs(600);
/// How long a provider's discovery document (its endpoints and signing keys) is trusted
/// before it is read again: keys rotate.
const METADATA_TTL: Duration = Duration::from_secs(3_600);
/// Each request to a provider gives up after this long.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// One provider as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// In URLs (`/signin/oidc/<name>`) and in sessions (`oidc:<name>`).
    pub name: String,
    /// On the sign-in page: "Sign in with <label>".
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Asked for besides `openid`.
    pub scopes: Vec<String>,
    /// The ID token claim whose values are looked up in `roles`.
    pub groups_claim: String,
    /// Where the provider sends the browser back; by default this server's own
    /// `/signin/oidc/<name>/callback` on the host the browser used.
    pub redirect_url: Option<String>,
    /// What each group grants.
    pub roles: Vec<GroupRole>,
}

/// A group (a value of the groups claim) and the role it grants, on which engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRole {
    pub group: String,
    pub binding: RoleBinding,
}

impl ProviderConfig {
    /// The roles `groups` grant.
    pub fn granted(&self, groups: &[String]) -> Vec<RoleBinding> {
        let mut granted: Vec<RoleBinding> = self
            .roles
            .iter()
            .filter(|rule| groups.contains(&rule.group))
            .map(|rule| rule.binding.clone())
            .collect();
        granted.sort_by(|a, b| (a.role, &a.engines).cmp(&(b.role, &b.engines)));
        granted.dedup();
        granted
    }
}

/// One `[[provider]]` of the providers file (`--sign-in-providers`), or a `[[sign_in]]`
/// of the configuration file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    name: String,
    label: Option<String>,
    issuer: String,
    client_id: String,
    /// The name of an environment variable holding the client secret, or of a file that
    /// does (secrets stay out of settings files).
    client_secret_env: Option<String>,
    client_secret_file: Option<std::path::PathBuf>,
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    #[serde(default = "default_groups_claim")]
    groups_claim: String,
    redirect_url: Option<String>,
    #[serde(default)]
    roles: Vec<RawGroupRole>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroupRole {
    group: String,
    role: String,
    #[serde(default = "everywhere")]
    engines: String,
}

fn default_scopes() -> Vec<String> {
    ["email", "profile"].map(String::from).to_vec()
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn everywhere() -> String {
    "*".into()
}

/// Reads the providers file: each provider, or what is wrong with the file.
pub fn load_providers(path: &Path) -> Result<Vec<ProviderConfig>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("sign-in providers {}: {e}", path.display()))?;
    parse_providers(&text, |name| std::env::var(name).ok())
        .map_err(|e| format!("sign-in providers {}: {e}", path.display()))
}

fn parse_providers(
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<ProviderConfig>, String> {
    crate::config::file::read_declarations(text, "provider", &env)
}

impl crate::config::file::Declared for ProviderConfig {
    type Raw = RawProvider;
    const WHAT: &'static str = "provider";

    fn declare(raw: RawProvider, env: crate::config::file::Env<'_>) -> Result<Vec<Self>, String> {
        crate::config::check_name("provider", &raw.name)?;
        let at = |what: String| format!("provider {:?}: {what}", raw.name);
        IssuerUrl::new(raw.issuer.clone()).map_err(|e| at(format!("issuer: {e}")))?;
        if let Some(url) = &raw.redirect_url {
            RedirectUrl::new(url.clone()).map_err(|e| at(format!("redirect_url: {e}")))?;
        }
        let client_secret = crate::config::secret(
            "client_secret",
            raw.client_secret_env.as_deref(),
            raw.client_secret_file.as_deref(),
            env,
        )
        .map_err(at)?;
        let mut roles = Vec::new();
        for rule in raw.roles {
            let role = Role::parse(&rule.role).ok_or_else(|| {
                at(format!(
                    "role {:?} of group {:?} is not viewer, operator or admin",
                    rule.role, rule.group
                ))
            })?;
            roles.push(GroupRole {
                group: rule.group,
                binding: RoleBinding {
                    role,
                    engines: rule.engines,
                },
            });
        }
        Ok(vec![ProviderConfig {
            label: raw.label.unwrap_or_else(|| raw.name.clone()),
            name: raw.name,
            issuer: raw.issuer,
            client_id: raw.client_id,
            client_secret,
            scopes: raw.scopes,
            groups_claim: raw.groups_claim,
            redirect_url: raw.redirect_url,
            roles,
        }])
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

/// Claims beyond the standard ones, kept whole: the groups claim is named in config.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}

impl AdditionalClaims for OtherClaims {}

type TokenAnswer = StandardTokenResponse<
    IdTokenFields<
        OtherClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// A client of one provider, as its discovery document sets it up.
type ProviderClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenAnswer,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a sign-in through a provider did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// No provider of that name is configured.
    #[error("no sign-in provider is called {0:?}")]
    UnknownProvider(String),
    /// What came back is not the answer to a sign-in this browser started (no flow
    /// cookie, another state, a made-up request).
    #[error("this sign-in was not started here, or took too long: start again")]
    NotOurs,
    /// The provider said no (the person cancelled, or it refused the client).
    #[error("the sign-in provider refused: {0}")]
    Refused(String),
    /// The provider could not be reached or answered what is not OpenID Connect.
    #[error("the sign-in provider could not be used: {0}")]
    Unavailable(String),
    /// What the provider sent failed verification.
    #[error("the sign-in provider's answer could not be verified: {0}")]
    Unverified(String),
}

/// Who the provider vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    /// The provider's stable id of the person.
    pub subject: String,
    /// Their login here: their e-mail (unless the provider says it is unverified), else
    /// their preferred user name, else `<subject>@<provider>`.
    pub login: String,
    pub display_name: Option<String>,
    /// The values of the groups claim.
    pub groups: Vec<String>,
}

/// A sign-in in flight, carried in the [`FLOW_COOKIE`] between the two legs (HttpOnly,
/// so only this browser's own return brings it back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// The provider's name.
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go once signed in (already checked to be one of our paths).
    pub next: String,
}

impl Flow {
    /// The cookie's value.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// A cookie's value read back; `None` for anything else.
    pub fn decode(value: &str) -> Option<Self> {
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value.as_bytes())
            .ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// A configured provider, with its discovery document once read.
struct Provider {
    config: ProviderConfig,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

/// The configured providers.
pub struct Providers {
    providers: Vec<Provider>,
    http: ProviderHttp,
}

impl Default for Providers {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Providers {
    pub fn new(configs: Vec<ProviderConfig>) -> Self {
        // A provider's endpoints are used as given: following a redirect would let a
        // discovery document send our requests anywhere (SSRF).
        let http = crate::engines::outgoing_client(PROVIDER_TIMEOUT);
        Self {
            providers: configs
                .into_iter()
                .map(|config| Provider {
                    config,
                    metadata: Mutex::new(None),
                })
                .collect(),
            http: ProviderHttp(http),
        }
    }

    /// Each provider's name and label, for the sign-in page.
    pub fn listed(&self) -> Vec<(&str, &str)> {
        self.providers
            .iter()
            .map(|provider| {
                (
                    provider.config.name.as_str(),
                    provider.config.label.as_str(),
                )
            })
            .collect()
    }

    pub fn config(&self, name: &str) -> Result<&ProviderConfig, SsoError> {
        Ok(&self.provider(name)?.config)
    }

    fn provider(&self, name: &str) -> Result<&Provider, SsoError> {
        self.providers
            .iter()
            .find(|provider| provider.config.name == name)
            .ok_or_else(|| SsoError::UnknownProvider(name.chars().take(64).collect()))
    }

    /// The first leg: where to send the browser, and the flow to keep in its cookie.
    /// `callback` is this server's callback URL for the provider, as the browser reaches it.
    pub async fn begin(
        &self,
        name: &str,
        callback: &str,
        next: &str,
    ) -> Result<(String, Flow), SsoError> {
        let provider = self.provider(name)?;
        let client = self.client(provider, callback).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &provider.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let flow = Flow {
            provider: provider.config.name.clone(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            next: next.to_owned(),
        };
        Ok((url.to_string(), flow))
    }

    /// The second leg: checks that `state` is the flow's, exchanges `code` (with the
    /// PKCE verifier) and verifies the ID token it brings.
    pub async fn finish(
        &self,
        name: &str,
        callback: &str,
        flow: Option<Flow>,
        state: &str,
        code: &str,
    ) -> Result<Vouched, SsoError> {
        let provider = self.provider(name)?;
        let flow = flow
            .filter(|flow| flow.provider == provider.config.name)
            .filter(|flow| constant_time_eq(flow.state.as_bytes(), state.as_bytes()))
            .ok_or(SsoError::NotOurs)?;
        let client = self.client(provider, callback).await?;
        let answer = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SsoError::Unavailable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(refusal) => {
                    SsoError::Refused(refusal.to_string())
                }
                other => SsoError::Unavailable(app::model::error_chain(&other)),
            })?;
        let id_token = answer
            .id_token()
            .ok_or_else(|| SsoError::Unverified("no ID token in the answer".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(flow.nonce.clone()))
            .map_err(|e| SsoError::Unverified(e.to_string()))?;
        let subject = claims.subject().as_str().to_owned();
        let email = claims
            .email()
            .filter(|_| claims.email_verified() != Some(false))
            .map(|email| email.as_str().to_owned());
        let username = claims
            .preferred_username()
            .map(|name| name.as_str().to_owned());
        let login = email
            .or(username)
            .unwrap_or_else(|| format!("{subject}@{}", provider.config.name));
        let display_name = claims
            .name()
            .and_then(|name| name.get(None))
            .map(|name| name.as_str().to_owned());
        let groups = groups_of(
            claims
                .additional_claims()
                .claims
                .get(&provider.config.groups_claim),
        );
        Ok(Vouched {
            subject,
            login,
            display_name,
            groups,
        })
    }

    /// The client of `provider` for `callback`, from its discovery document (read again
    /// once it is [`METADATA_TTL`] old, or when the last read failed).
    async fn client(
        &self,
        provider: &Provider,
        callback: &str,
    ) -> Result<ProviderClient, SsoError> {
        let metadata = {
            let mut cached = provider.metadata.lock().await;
            match cached.as_ref() {
                Some((read_at, metadata)) if read_at.elapsed() < METADATA_TTL => metadata.clone(),
                _ => {
                    let issuer = IssuerUrl::new(provider.config.issuer.clone())
                        .map_err(|e| SsoError::Unavailable(e.to_string()))?;
                    let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
                        .await
                        .map_err(|e| SsoError::Unavailable(app::model::error_chain(&e)))?;
                    *cached = Some((Instant::now(), metadata.clone()));
                    metadata
                }
            }
        };
        let redirect = provider
            .config
            .redirect_url
            .clone()
            .unwrap_or_else(|| callback.to_owned());
        let redirect =
            RedirectUrl::new(redirect).map_err(|e| SsoError::Unavailable(e.to_string()))?;
        Ok(ProviderClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.config.client_id.clone()),
            provider.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }
}

/// Our HTTP client, as the `openidconnect` crate asks providers through it (its future is
/// boxed and `Send`, so the sign-in handlers can run on any worker thread).
struct ProviderHttp(reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for ProviderHttp {
    type Error = reqwest::Error;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, Self::Error>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.0.execute(request.try_into()?).await?;
            let mut answer = openidconnect::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                answer = answer.header(name, value);
            }
            let body = response.bytes().await?.to_vec();
            Ok(answer
                .body(body)
                .unwrap_or_else(|_| openidconnect::http::Response::new(Vec::new())))
        })
    }
}

/// The groups claim's values: a list of strings, or one string.
fn groups_of(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::Array(values)) => values
            .iter()
            .filter_map(|value| value.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// Compares secrets without telling by timing how much of them matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[provider]]
name = "corp"
label = "Corp SSO"
issuer = "https://login.example.com"
client_id = "stepline"
client_secret_env = "CORP_SECRET"
scopes = ["email", "profile", "groups"]

[[provider.roles]]
group = "ops"
role = "operator"
engines = "temporal:prod:*"

[[provider.roles]]
group = "everyone"
role = "viewer"
"#;

    #[test]
    fn providers_read_from_the_file_with_their_secret_from_the_environment() {
        let env = |name: &str| (name == "CORP_SECRET").then(|| "s3cret".to_owned());
        let providers = parse_providers(FILE, env).unwrap();
        assert_eq!(providers.len(), 1);
        let corp = &providers[0];
        assert_eq!(corp.label, "Corp SSO");
        assert_eq!(corp.client_secret.as_deref(), Some("s3cret"));
        assert_eq!(corp.groups_claim, "groups");
        assert_eq!(
            corp.granted(&["ops".into(), "everyone".into(), "unknown".into()]),
            vec![
                RoleBinding {
                    role: Role::Viewer,
                    engines: "*".into()
                },
                RoleBinding {
                    role: Role::Operator,
                    engines: "temporal:prod:*".into()
                },
            ]
        );
        assert!(corp.granted(&[]).is_empty());
    }

    #[test]
    fn a_bad_providers_file_says_what_is_wrong() {
        let none = |_: &str| None;
        let error = parse_providers(FILE, none).unwrap_err();
        assert!(error.contains("CORP_SECRET is not set"), "{error}");
        let error = parse_providers(&FILE.replace("\"operator\"", "\"boss\""), |_| {
            Some("x".into())
        })
        .unwrap_err();
        assert!(error.contains("\"boss\""), "{error}");
        let error = parse_providers(&FILE.replace("name = \"corp\"", "name = \"Corp!\""), |_| {
            Some("x".into())
        })
        .unwrap_err();
        assert!(error.contains("a-z 0-9"), "{error}");
        let error = parse_providers("[[provider]]\nname = \"x\"\n", none).unwrap_err();
        assert!(error.contains("missing field"), "{error}");
        let twice = format!("{FILE}\n{FILE}");
        let error = parse_providers(&twice, |_| Some("x".into())).unwrap_err();
        assert!(error.contains("twice"), "{error}");
    }

    #[test]
    fn a_flow_cookie_reads_back_and_nothing_else_does() {
        let flow = Flow {
            provider: "corp".into(),
            state: "s".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            next: "/orchestration?tab=failed".into(),
        };
        assert_eq!(Flow::decode(&flow.encode()), Some(flow));
        assert_eq!(Flow::decode("not base64 !"), None);
        assert_eq!(Flow::decode("e30"), None);
    }

    #[test]
    fn groups_are_a_list_or_one_name() {
        let value = serde_json::json!(["a", 1, "b"]);
        assert_eq!(groups_of(Some(&value)), vec!["a", "b"]);
        assert_eq!(groups_of(Some(&serde_json::json!("solo"))), vec!["solo"]);
        assert!(groups_of(Some(&serde_json::json!({"a": 1}))).is_empty());
        assert!(groups_of(None).is_empty());
    }
}
