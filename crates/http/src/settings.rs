//! Authentication settings as configured, and the runtime state built from them once at start-up; the
//! trusted reverse proxies, and from them the one rule that says which address a request came from.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
    #[error("trusted proxy {given:?}: {why}; expected comma-separated addresses or CIDRs, e.g. 10.0.0.0/8,::1")]
    TrustedProxy { given: String, why: &'static str },
}

/// A network in CIDR notation: an address and how many leading bits of it count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `fd00::/8`, or a single address (`127.0.0.1`, `::1`). Bits after the prefix are
    /// ignored (`192.168.1.7/24` is `192.168.1.0/24`).
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let bad = |why| SettingsError::TrustedProxy { given: text.to_owned(), why };
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| bad("not an IPv4 or IPv6 address"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| bad("the prefix length is out of range"))?
            }
            Some(_) => return Err(bad("the prefix length is not a number")),
        };
        Ok(Self { network: mask(address, prefix), prefix })
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// `ip` with every bit after the first `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            // A shift by the full width (prefix 0) overflows: nothing is kept then.
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed (`MIGRATE_HUB_TRUSTED_PROXIES`); none by
/// default, so a client cannot choose the address its rate limits and audit rows are keyed on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Comma-separated addresses or CIDRs; blanks around and between them are ignored, so an empty
    /// text trusts no proxy.
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        text.split(',').map(str::trim).filter(|p| !p.is_empty()).map(Cidr::parse).collect::<Result<_, _>>().map(Self)
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    /// The address a request came from, given the TCP peer and the `X-Forwarded-For` headers in the
    /// order received. A peer that is not a trusted proxy is the client, whatever it forwards. Otherwise
    /// the list is read from the right (each proxy appends the address it was reached from) and the
    /// first address that is not itself a trusted proxy is the client: addresses left of it were written
    /// by the client and prove nothing. An entry that is not an address ends the walk at the proxy that
    /// wrote it; a list of trusted proxies only gives its left-most one.
    pub fn client_address<'a>(&self, peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a str>) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let entries: Vec<&str> = forwarded_for.into_iter().flat_map(|header| header.split(',')).collect();
        let mut client = peer;
        for entry in entries.into_iter().rev() {
            let Some(ip) = forwarded_address(entry) else { return client };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        client
    }
}

impl std::fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&list.join(","))
    }
}

/// One `X-Forwarded-For` entry: an address, also as `[v6]`, `[v6]:port` or `v4:port` as some proxies
/// write it.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Some(socket.ip().to_canonical());
    }
    entry.strip_prefix('[')?.strip_suffix(']')?.parse::<Ipv6Addr>().ok().map(|ip| IpAddr::V6(ip).to_canonical())
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

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_mask_and_contain() {
        let net = Cidr::parse("192.168.1.7/24").unwrap();
        assert_eq!(net.to_string(), "192.168.1.0/24");
        assert!(net.contains(ip("192.168.1.200")) && !net.contains(ip("192.168.2.1")));
        assert!(net.contains(ip("::ffff:192.168.1.9")), "an IPv4-mapped address is its IPv4 address");
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::1")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fdab::1")) && !v6.contains(ip("fe80::1")) && !v6.contains(ip("10.0.0.1")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        for bad in
            ["", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/-1", "10.0.0/8", "host", "1.2.3.4/+8"]
        {
            let err = Cidr::parse(bad).unwrap_err();
            assert!(err.to_string().contains("expected comma-separated"), "{bad}: {err}");
        }
    }

    #[test]
    fn trusted_proxy_lists_parse_or_name_the_bad_entry() {
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse(" , ").unwrap().is_empty());
        let list = TrustedProxies::parse(" 10.0.0.0/8, ::1 ,127.0.0.1/32").unwrap();
        assert_eq!(list.to_string(), "10.0.0.0/8,::1/128,127.0.0.1/32");
        let err = TrustedProxies::parse("10.0.0.0/8,10.0.0.300").unwrap_err();
        assert!(err.to_string().contains("\"10.0.0.300\""), "{err}");
    }

    #[test]
    fn the_client_address_believes_forwarding_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(none.client_address(ip("127.0.0.1"), ["203.0.113.9"]), ip("127.0.0.1"));
        let proxies = TrustedProxies::parse("127.0.0.1/32,10.0.0.0/8").unwrap();
        // An untrusted peer is the client, whatever it forwards.
        assert_eq!(proxies.client_address(ip("198.51.100.1"), ["203.0.113.9"]), ip("198.51.100.1"));
        // A trusted peer without the header is the client itself.
        assert_eq!(proxies.client_address(ip("127.0.0.1"), []), ip("127.0.0.1"));
        assert_eq!(proxies.client_address(ip("127.0.0.1"), ["203.0.113.9"]), ip("203.0.113.9"));
        // The right-most address that is not a trusted proxy: what the client wrote on the left is ignored.
        assert_eq!(proxies.client_address(ip("127.0.0.1"), ["1.1.1.1, 203.0.113.9, 10.1.2.3"]), ip("203.0.113.9"));
        // Several headers are one list, in order.
        assert_eq!(proxies.client_address(ip("127.0.0.1"), ["1.1.1.1", "203.0.113.9", "10.1.2.3"]), ip("203.0.113.9"));
        // Ports and brackets as some proxies write them.
        assert_eq!(proxies.client_address(ip("127.0.0.1"), ["203.0.113.9:4711"]), ip("203.0.113.9"));
        assert_eq!(proxies.client_address(ip("127.0.0.1"), ["[2001:db8::7]:443"]), ip("2001:db8::7"));
        assert_eq!(proxies.client_address(ip("127.0.0.1"), ["[2001:db8::7]"]), ip("2001:db8::7"));
        // Garbage stops the walk at the proxy that passed it on.
        assert_eq!(proxies.client_address(ip("127.0.0.1"), ["203.0.113.9, unknown"]), ip("127.0.0.1"));
        assert_eq!(proxies.client_address(ip("127.0.0.1"), ["203.0.113.9, nonsense, 10.0.0.5"]), ip("10.0.0.5"));
        // Only trusted proxies: the left-most one.
        assert_eq!(proxies.client_address(ip("127.0.0.1"), ["10.0.0.9, 10.0.0.5"]), ip("10.0.0.9"));
        // An IPv4-mapped peer is its IPv4 address.
        assert_eq!(proxies.client_address(ip("::ffff:127.0.0.1"), ["203.0.113.9"]), ip("203.0.113.9"));
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
