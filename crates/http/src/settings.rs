//! Authentication settings as configured, and the runtime state built from them once at start-up.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use auth::keys::ServerSecret;
use auth::oidc::{Oidc, OidcConfig};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How people and machines authenticate, as configured.
#[derive(Debug)]
pub struct AuthSettings {
    /// OIDC login (Google by default); `None` disables it.
    pub oidc: Option<OidcConfig>,
    /// Email + password login (argon2), off by default.
    pub password_login: bool,
    /// The secret every server-side key is derived from.
    pub server_secret: ServerSecret,
    /// The URL people reach the hub at, e.g. `https://hub.example.com` (scheme, host, port; no path).
    /// Browser requests that change state must come from this origin.
    pub public_url: String,
    /// Mark cookies `Secure` (only off for plain-http local development).
    pub secure_cookies: bool,
    /// A session unused for this long ends.
    pub session_idle: Duration,
    /// A session ends this long after login, however it is used.
    pub session_absolute: Duration,
}

/// Why the settings cannot work.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("public URL {0:?}: expected http(s)://host[:port] with no path")]
    PublicUrl(String),
    #[error(transparent)]
    Oidc(#[from] auth::oidc::OidcError),
    #[error("secure cookies need an https public URL ({0}); for local plain-http use set the insecure-cookies flag")]
    SecureOverHttp(String),
}

/// Attempts allowed per minute, per client address and per account.
const LOGIN_ATTEMPTS_PER_MINUTE: u32 = 10;
/// Login starts allowed per minute per client address (each one writes a row).
const LOGIN_STARTS_PER_MINUTE: u32 = 30;

/// Authentication at run time.
pub(crate) struct Auth {
    pub oidc: Option<Oidc>,
    pub password_login: bool,
    pub token_key: ring::hmac::Key,
    pub cookie_key: [u8; 64],
    /// `scheme://host[:port]` of the public URL: the one allowed `Origin`.
    pub origin: String,
    pub secure_cookies: bool,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub password_by_ip: DefaultKeyedRateLimiter<IpAddr>,
    pub password_by_account: DefaultKeyedRateLimiter<String>,
    pub starts_by_ip: DefaultKeyedRateLimiter<IpAddr>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("oidc", &self.oidc)
            .field("password_login", &self.password_login)
            .field("origin", &self.origin)
            .field("secure_cookies", &self.secure_cookies)
            .finish_non_exhaustive()
    }
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl Auth {
    pub(crate) fn new(settings: AuthSettings) -> Result<Arc<Self>, SettingsError> {
        let origin = origin_of(&settings.public_url)?;
        if settings.secure_cookies && !origin.starts_with("https://") && !is_loopback(&origin) {
            return Err(SettingsError::SecureOverHttp(origin));
        }
        let oidc = settings.oidc.map(Oidc::new).transpose()?;
        Ok(Arc::new(Self {
            oidc,
            password_login: settings.password_login,
            token_key: settings.server_secret.token_key(),
            cookie_key: settings.server_secret.cookie_key(),
            origin,
            secure_cookies: settings.secure_cookies,
            session_idle: settings.session_idle,
            session_absolute: settings.session_absolute,
            password_by_ip: RateLimiter::keyed(per_minute(LOGIN_ATTEMPTS_PER_MINUTE)),
            password_by_account: RateLimiter::keyed(per_minute(LOGIN_ATTEMPTS_PER_MINUTE)),
            starts_by_ip: RateLimiter::keyed(per_minute(LOGIN_STARTS_PER_MINUTE)),
        }))
    }

    /// HSTS is sent only when the hub is reached over https with secure cookies.
    pub(crate) fn hsts(&self) -> bool {
        self.secure_cookies && self.origin.starts_with("https://")
    }
}

/// `scheme://host[:port]` of a public URL, refusing paths, queries and other schemes.
fn origin_of(url: &str) -> Result<String, SettingsError> {
    let bad = || SettingsError::PublicUrl(url.to_owned());
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://")).ok_or_else(bad)?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(bad());
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// Browsers treat loopback origins as secure contexts, so `Secure` cookies work on plain http there.
fn is_loopback(origin: &str) -> bool {
    let host = origin.trim_start_matches("http://");
    host.starts_with("127.0.0.1") || host.starts_with("localhost") || host.starts_with("[::1]")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn public_urls_give_an_origin_or_a_clear_error() {
        assert_eq!(origin_of("https://Hub.example.com/").unwrap(), "https://hub.example.com");
        assert_eq!(origin_of("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        for bad in ["hub.example.com", "ftp://x", "https://x/app", "https://", "https://u@x", "https://x?y"] {
            assert!(origin_of(bad).is_err(), "{bad}");
        }
        assert!(is_loopback("http://localhost:8080") && !is_loopback("http://hub.internal"));
    }

    fn settings(public_url: &str, secure_cookies: bool) -> AuthSettings {
        AuthSettings {
            oidc: None,
            password_login: false,
            server_secret: ServerSecret::random().unwrap().0,
            public_url: public_url.into(),
            secure_cookies,
            session_idle: Duration::from_secs(60),
            session_absolute: Duration::from_secs(600),
        }
    }

    #[test]
    fn hsts_only_over_https_with_secure_cookies_and_secure_cookies_need_https_or_loopback() {
        assert!(Auth::new(settings("https://hub.example.com", true)).unwrap().hsts());
        assert!(!Auth::new(settings("https://hub.example.com", false)).unwrap().hsts());
        assert!(!Auth::new(settings("http://127.0.0.1:8080", true)).unwrap().hsts());
        let err = Auth::new(settings("http://hub.internal", true)).unwrap_err();
        assert!(err.to_string().contains("insecure-cookies"), "{err}");
        assert!(Auth::new(settings("http://hub.internal", false)).is_ok());
    }
}
