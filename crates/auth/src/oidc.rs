//! OIDC login as a relying party (openidconnect 4): authorization code with PKCE S256, `state` and
//! `nonce`, and every ID-token check a relying party owes (OpenID Connect Core §3.1.3.7).
//!
//! - Discovery is lazy and cached; it is redone after [`REFRESH_EVERY`], and once more when an ID token
//!   is signed by a key id the cached JWKS does not know (the provider rotated its keys; openidconnect
//!   never refetches by itself, issue #232).
//! - Only asymmetric signature algorithms are accepted, so `alg: none` and an HS256 token keyed with the
//!   provider's public key fail before any claim is read.
//! - Issuer, audience (and `azp` when there are several audiences), expiry, `iat` (present, not in the
//!   future), `sub` (present, 1 to 255 characters as OpenID Connect Core §2 says, no control characters:
//!   users are keyed by it), the nonce and `at_hash` are checked; then the email must be present and verified,
//!   and within the allowed domains when some are configured (for Google, the `hd` claim must say so too).
//! - The HTTP client follows no redirects (an ID provider's endpoints are fixed by discovery; following
//!   redirects would let a hostile response steer the server's requests).
//!
//! Errors name the check that failed and never carry a code, token, nonce or verifier.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::values::Email;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use storage::oidc_logins::PendingLogin;

/// How long discovery (and with it the JWKS) is trusted before it is fetched again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(3600);
/// How far in the future an ID token's `iat` may lie (clock skew).
const IAT_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// Timeout of every request to the provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `sub` OpenID Connect allows (Core §2: "MUST NOT exceed 255 ASCII characters").
const MAX_SUBJECT: usize = 255;

/// Google's issuer: its accounts can carry any verified email, so a domain rule needs the `hd` claim.
const GOOGLE: &str = "https://accounts.google.com";

/// The claims beyond the standard ones that we read: Google's hosted domain.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostedDomain {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hd: Option<String>,
}

impl AdditionalClaims for HostedDomain {}

type Fields = IdTokenFields<
    HostedDomain,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<Fields, CoreTokenType>;
type Client = openidconnect::Client<
    HostedDomain,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
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

/// Signature algorithms an ID token may use: asymmetric ones only.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 8] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
];

/// Relying-party configuration.
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer URL, e.g. `https://accounts.google.com`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    /// This server's callback, e.g. `https://hub.example.com/auth/callback`.
    pub redirect_url: String,
    /// Lower-case email domains allowed to log in; empty allows every verified email.
    pub allowed_domains: Vec<String>,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("allowed_domains", &self.allowed_domains)
            .finish_non_exhaustive()
    }
}

/// Why a login failed. Each variant is one check; [`OidcError::code`] is stable for logs and tests.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("invalid OIDC configuration: {0}")]
    Config(String),
    #[error("the identity provider could not be reached or its discovery document is invalid: {0}")]
    Discovery(String),
    #[error("the identity provider refused the authorization code: {0}")]
    CodeRejected(String),
    #[error("the identity provider's token response is malformed: {0}")]
    TokenResponse(String),
    #[error("the identity provider returned no ID token")]
    NoIdToken,
    #[error("the ID token's signature is not valid: {0}")]
    Signature(SignatureVerificationError),
    #[error("the ID token's issuer is wrong: {0}")]
    Issuer(String),
    #[error("the ID token is not for this client: {0}")]
    Audience(String),
    #[error("the ID token has expired: {0}")]
    Expired(String),
    #[error("the ID token's nonce does not match this login: {0}")]
    Nonce(String),
    #[error("the ID token is invalid: {0}")]
    Claims(String),
    #[error("the ID token's subject (`sub`) is empty, longer than 255 characters or has control characters")]
    Subject,
    #[error("the access token hash in the ID token does not match")]
    AccessTokenHash,
    #[error("the identity provider gave no email address")]
    NoEmail,
    #[error("the email address is not verified by the identity provider")]
    EmailUnverified,
    #[error("the email address is not one this hub accepts")]
    EmailInvalid,
    #[error("the email domain is not allowed to log in here")]
    DomainNotAllowed,
}

impl OidcError {
    /// A short stable name of the failed check.
    pub fn code(&self) -> &'static str {
        match self {
            OidcError::Config(_) => "config",
            OidcError::Discovery(_) => "discovery",
            OidcError::CodeRejected(_) => "code_rejected",
            OidcError::TokenResponse(_) => "token_response",
            OidcError::NoIdToken => "no_id_token",
            OidcError::Signature(_) => "signature",
            OidcError::Issuer(_) => "issuer",
            OidcError::Audience(_) => "audience",
            OidcError::Expired(_) => "expired",
            OidcError::Nonce(_) => "nonce",
            OidcError::Claims(_) => "claims",
            OidcError::Subject => "subject",
            OidcError::AccessTokenHash => "at_hash",
            OidcError::NoEmail => "no_email",
            OidcError::EmailUnverified => "email_unverified",
            OidcError::EmailInvalid => "email_invalid",
            OidcError::DomainNotAllowed => "domain_not_allowed",
        }
    }

    /// Whether the provider (not the user or the token) is at fault: the caller answers 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, OidcError::Discovery(_))
    }
}

/// A login ready to send the browser off: the provider URL, the `state` for the browser's cookie, and
/// what the callback will need (to be stored server-side under the state's hash).
#[derive(Debug)]
pub struct LoginStart {
    pub authorize_url: String,
    pub state: SecretString,
    pub pending: PendingLogin,
}

/// Who the provider says logged in, after every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: Email,
    pub name: Option<String>,
}

struct Discovered {
    client: Arc<Client>,
    at: Instant,
}

/// The relying party: configuration, an HTTP client, and the cached discovery.
pub struct Oidc {
    config: OidcConfig,
    http: openidconnect::reqwest::Client,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    current: tokio::sync::Mutex<Option<Discovered>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Oidc {
    /// Checks the configuration; the provider is contacted on first use.
    pub fn new(config: OidcConfig) -> Result<Self, OidcError> {
        let issuer = IssuerUrl::new(config.issuer.clone()).map_err(|e| OidcError::Config(format!("issuer: {e}")))?;
        let redirect = RedirectUrl::new(config.redirect_url.clone())
            .map_err(|e| OidcError::Config(format!("redirect URL: {e}")))?;
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Config(format!("HTTP client: {e}")))?;
        Ok(Self { config, http, issuer, redirect, current: tokio::sync::Mutex::new(None) })
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The client from a fresh enough discovery; `refresh` forces a new one.
    async fn client(&self, refresh: bool) -> Result<Arc<Client>, OidcError> {
        let mut current = self.current.lock().await;
        if let Some(found) = current.as_ref().filter(|d| !refresh && d.at.elapsed() < REFRESH_EVERY) {
            return Ok(found.client.clone());
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| OidcError::Discovery(crate::error_chain(&e)))?;
        let client = Client::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.as_ref().map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
        .set_redirect_uri(self.redirect.clone());
        let client = Arc::new(client);
        *current = Some(Discovered { client: client.clone(), at: Instant::now() });
        tracing::info!(issuer = %self.config.issuer, refresh, "OIDC discovery done");
        Ok(client)
    }

    /// Starts a login: PKCE S256 challenge, random state and nonce.
    pub async fn begin(&self) -> Result<LoginStart, OidcError> {
        let client = self.client(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok(LoginStart {
            authorize_url: url.to_string(),
            state: SecretString::from(state.secret().clone()),
            pending: PendingLogin { nonce: nonce.secret().clone(), pkce_verifier: verifier.secret().clone() },
        })
    }

    /// Finishes a login: exchanges the code with the PKCE verifier and checks the ID token.
    pub async fn finish(&self, code: &SecretString, pending: &PendingLogin) -> Result<Identity, OidcError> {
        let client = self.client(false).await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.expose_secret().to_owned()))
            .map_err(|e| OidcError::Config(format!("token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => OidcError::CodeRejected(r.error().to_string()),
                RequestTokenError::Parse(e, _) => OidcError::TokenResponse(e.to_string()),
                other => OidcError::Discovery(crate::error_chain(&other)),
            })?;
        match self.check(&client, &tokens, pending) {
            Err(OidcError::Signature(SignatureVerificationError::NoMatchingKey)) => {
                tracing::info!(issuer = %self.config.issuer, "ID token signed by an unknown key: refetching the JWKS");
                let client = self.client(true).await?;
                self.check(&client, &tokens, pending)
            }
            other => other,
        }
    }

    fn check(&self, client: &Client, tokens: &Tokens, pending: &PendingLogin) -> Result<Identity, OidcError> {
        let id_token = tokens.id_token().ok_or(OidcError::NoIdToken)?;
        let verifier = client.id_token_verifier().set_allowed_algs(ALLOWED_ALGS).set_issue_time_verifier_fn(|iat| {
            if iat > Utc::now() + IAT_SKEW { Err("issued in the future".to_owned()) } else { Ok(()) }
        });
        let nonce = Nonce::new(pending.nonce.clone());
        let claims = id_token.claims(&verifier, &nonce).map_err(|e| match e {
            ClaimsVerificationError::SignatureVerification(e) => OidcError::Signature(e),
            ClaimsVerificationError::InvalidIssuer(m) => OidcError::Issuer(m),
            ClaimsVerificationError::InvalidAudience(m) => OidcError::Audience(m),
            ClaimsVerificationError::Expired(m) => OidcError::Expired(m),
            ClaimsVerificationError::InvalidNonce(m) => OidcError::Nonce(m),
            other => OidcError::Claims(other.to_string()),
        })?;
        // openidconnect only requires `sub` to be present; an empty one would key every such login to one
        // account (the tool database refuses it too, but as an internal error, not as a refused login).
        let subject = claims.subject().as_str();
        if !subject_valid(subject) {
            return Err(OidcError::Subject);
        }
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token.signing_alg().map_err(OidcError::Signature)?;
            let key = id_token.signing_key(&verifier).map_err(OidcError::Signature)?;
            let actual =
                AccessTokenHash::from_token(tokens.access_token(), alg, key).map_err(|_| OidcError::AccessTokenHash)?;
            if actual != *expected {
                return Err(OidcError::AccessTokenHash);
            }
        }
        let email = claims.email().ok_or(OidcError::NoEmail)?;
        if claims.email_verified() != Some(true) {
            return Err(OidcError::EmailUnverified);
        }
        let email = Email::parse(email.as_str().to_lowercase()).map_err(|_| OidcError::EmailInvalid)?;
        let hd = claims.additional_claims().hd.as_deref();
        if !domain_allowed(&self.config.allowed_domains, &self.config.issuer, &email, hd) {
            return Err(OidcError::DomainNotAllowed);
        }
        let name = claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned());
        Ok(Identity { issuer: claims.issuer().as_str().to_owned(), subject: subject.to_owned(), email, name })
    }
}

/// Whether `sub` can key an account: 1 to [`MAX_SUBJECT`] characters, none of them a control character.
fn subject_valid(subject: &str) -> bool {
    (1..=MAX_SUBJECT).contains(&subject.chars().count()) && !subject.chars().any(char::is_control)
}

/// The domain rule: with no allowed domains every verified email may log in; otherwise the email's domain
/// must be allowed and, when the provider states a hosted domain (Google always does for Workspace
/// accounts), it must be that same domain. Google accounts without `hd` are personal accounts, whose
/// verified email may still be on a company domain: they are refused.
fn domain_allowed(allowed: &[String], issuer: &str, email: &Email, hd: Option<&str>) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let domain = email.domain();
    if !allowed.iter().any(|a| a == domain) {
        return false;
    }
    match hd {
        Some(hd) => hd.eq_ignore_ascii_case(domain),
        None => issuer.trim_end_matches('/') != GOOGLE,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn email(text: &str) -> Email {
        Email::parse(text).unwrap()
    }

    #[test]
    fn domains_are_checked_against_the_email_and_googles_hosted_domain() {
        let allowed = vec!["corp.example".to_owned()];
        let other = "https://idp.example";
        assert!(domain_allowed(&[], GOOGLE, &email("a@gmail.com"), None));
        assert!(domain_allowed(&allowed, other, &email("a@corp.example"), None));
        assert!(!domain_allowed(&allowed, other, &email("a@evil.example"), None));
        assert!(!domain_allowed(&allowed, other, &email("a@sub.corp.example"), None));
        assert!(domain_allowed(&allowed, GOOGLE, &email("a@corp.example"), Some("corp.example")));
        assert!(!domain_allowed(&allowed, GOOGLE, &email("a@corp.example"), None), "personal Google account");
        assert!(!domain_allowed(&allowed, other, &email("a@corp.example"), Some("evil.example")));
    }

    #[test]
    fn subjects_must_be_one_to_255_characters_without_control_characters() {
        assert!(subject_valid("a"));
        assert!(subject_valid("248289761001"));
        assert!(subject_valid(&"s".repeat(255)));
        assert!(subject_valid(&"é".repeat(255)), "characters, not bytes, as the database counts");
        assert!(!subject_valid(""));
        assert!(!subject_valid(&"s".repeat(256)));
        assert!(!subject_valid("a\u{0}b"));
        assert!(!subject_valid("a\nb"));
        assert_eq!(OidcError::Subject.code(), "subject");
    }
}
