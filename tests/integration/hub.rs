//! The test app: an in-process hub server on a fresh tool database, its people (`Hub::user`, `Hub::token`,
//! `Hub::signed_in`), and a cookie-keeping browser-like client that follows no redirect by itself (so each
//! hop of a login can be inspected) and asks for pages and posts forms as the hub's own pages do
//! (`Browser::page`, `Browser::html`, `Browser::post_form`). Every test module uses these; none keeps a copy.

use std::net::TcpListener;
use std::time::Duration;

use domain::enums::{Role, TokenScope};
use domain::ids::UserId;
use domain::model::{NewUser, User};
use domain::values::{DisplayName, Email};
use migrate_hub_tests::PgDatabase;
use migrate_hub_tests::oidc::Provider;
use reqwest::header::{LOCATION, ORIGIN};
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};

pub const CLIENT_ID: &str = "migrate-hub-test";
pub const CLIENT_SECRET: &str = "test-client-secret-0123456789";
/// The password of every user signed in with [`Hub::signed_in`].
pub const TEST_PASSWORD: &str = "a long enough test password";

#[derive(Debug, Clone)]
pub struct HubOptions {
    pub oidc_issuer: Option<String>,
    pub password_login: bool,
    pub allowed_domains: Vec<String>,
    pub idle: Duration,
    pub absolute: Duration,
    pub secure_cookies: bool,
    /// `MIGRATE_HUB_MASTER_KEYS` for sealing target passwords.
    pub master_keys: Option<String>,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            oidc_issuer: None,
            password_login: false,
            allowed_domains: Vec::new(),
            idle: Duration::from_secs(1800),
            absolute: Duration::from_secs(43_200),
            secure_cookies: false,
            master_keys: None,
        }
    }
}

impl HubOptions {
    pub fn oidc(provider: &Provider) -> Self {
        Self { oidc_issuer: Some(provider.issuer.clone()), ..Self::default() }
    }
}

/// A running hub.
#[derive(Debug)]
pub struct Hub {
    pub url: String,
    pub db: PgDatabase,
    pub secret: SecretString,
}

impl Hub {
    pub async fn start(options: HubOptions) -> Self {
        migrate_hub_tests::init_logging();
        let db = PgDatabase::migrated().await;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (server_secret, secret) = auth::keys::ServerSecret::random().unwrap();
        let oidc = options.oidc_issuer.map(|issuer| auth::oidc::OidcConfig {
            issuer,
            client_id: CLIENT_ID.into(),
            client_secret: Some(SecretString::from(CLIENT_SECRET)),
            redirect_url: format!("{url}/auth/callback"),
            allowed_domains: options.allowed_domains.clone(),
        });
        let settings = http::AuthSettings {
            oidc,
            password_login: options.password_login,
            server_secret,
            public_url: url.clone(),
            secure_cookies: options.secure_cookies,
            session_idle: options.idle,
            session_absolute: options.absolute,
        };
        let keys = options.master_keys.map(|k| auth::secrets::KeyRing::parse(&SecretString::from(k)).unwrap());
        let state = http::AppState::new(db.pool.clone(), settings).unwrap().with_keys(keys);
        let server = http::Server::build(listener, state, &http::ServerSettings { workers: 1 }).unwrap();
        tokio::spawn(server.run());
        Self { url, db, secret }
    }

    pub fn browser(&self) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            hub: self.url.clone(),
        }
    }

    /// A user made directly in the tool database.
    pub async fn user(&self, email: &str, role: Role) -> User {
        let mut conn = self.db.pool.acquire().await.unwrap();
        let new = NewUser {
            email: Email::parse(email).unwrap(),
            display_name: DisplayName::parse(email.split('@').next().unwrap()).unwrap(),
            role,
            oidc_identity: None,
            password_hash: None,
        };
        storage::users::create(&mut conn, &new).await.unwrap()
    }

    /// An API token for `user`, minted with this hub's key.
    pub async fn token(&self, user: &User, scope: TokenScope) -> String {
        let key = auth::keys::ServerSecret::parse(&self.secret).unwrap().token_key();
        let minted = auth::tokens::mint(&key, user.id, user.id, "test".into(), scope, None).unwrap();
        let mut conn = self.db.pool.acquire().await.unwrap();
        storage::tokens::create(&mut conn, &minted.new).await.unwrap();
        minted.token.expose_secret().to_owned()
    }

    /// A user with `role` and the password [`TEST_PASSWORD`], signed in through `/login/password` in a new
    /// browser (the hub must allow password login).
    pub async fn signed_in(&self, email: &str, role: Role) -> Browser {
        let user = self.user(email, role).await;
        self.password_session(user.id, email).await
    }

    /// Gives user `id` the password [`TEST_PASSWORD`] and signs them in with it in a new browser.
    pub async fn password_session(&self, id: UserId, email: &str) -> Browser {
        let hash = auth::password::hash(SecretString::from(TEST_PASSWORD)).await.unwrap();
        let mut conn = self.db.pool.acquire().await.unwrap();
        storage::users::set_password_hash(&mut conn, id, Some(&hash)).await.unwrap();
        let browser = self.browser();
        let response = browser
            .client
            .post(format!("{}/login/password", self.url))
            .header(ORIGIN, &self.url)
            .form(&[("email", email), ("password", TEST_PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
        browser
    }

    /// Audit actions recorded so far, oldest first.
    pub async fn audit_actions(&self) -> Vec<String> {
        sqlx::query_scalar::<_, String>("SELECT action FROM audit_events ORDER BY id")
            .fetch_all(&self.db.pool)
            .await
            .unwrap()
    }
}

/// A browser: keeps cookies, follows no redirect by itself.
#[derive(Debug, Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    pub hub: String,
}

/// Where a redirect sends the browser.
pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location in a {} response", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

impl Browser {
    pub async fn get(&self, path: &str) -> Response {
        self.client.get(format!("{}{path}", self.hub)).send().await.unwrap()
    }

    /// Step 1: `/login/oidc`; returns the provider's authorize URL.
    pub async fn start_login(&self) -> String {
        let response = self.get("/login/oidc").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
        location(&response)
    }

    /// Step 2: the provider's authorize endpoint; returns the callback URL it sends the browser to.
    pub async fn authorize(&self, authorize_url: &str) -> String {
        let response = self.client.get(authorize_url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{}", response.text().await.unwrap());
        location(&response)
    }

    /// Step 3: the callback on the hub.
    pub async fn callback(&self, callback_url: &str) -> Response {
        self.client.get(callback_url).send().await.unwrap()
    }

    /// The whole round trip; returns the callback's response.
    pub async fn oidc_login(&self) -> Response {
        let authorize = self.start_login().await;
        let callback = self.authorize(&authorize).await;
        self.callback(&callback).await
    }

    /// The whole round trip, which must succeed.
    pub async fn sign_in(&self) {
        let response = self.oidc_login().await;
        let status = response.status();
        assert_eq!(status, StatusCode::SEE_OTHER, "login failed: {}", response.text().await.unwrap());
    }

    /// `GET /api/v1/me` as JSON, or the status when it fails.
    pub async fn me(&self) -> Result<serde_json::Value, StatusCode> {
        let response = self.get("/api/v1/me").await;
        if response.status().is_success() { Ok(response.json().await.unwrap()) } else { Err(response.status()) }
    }

    /// The session's CSRF token.
    pub async fn csrf(&self) -> String {
        self.me().await.unwrap()["csrf_token"].as_str().unwrap().to_owned()
    }

    /// A page as a browser asks for it: its status and HTML.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.hub))
            .header(reqwest::header::ACCEPT, "text/html")
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.text().await.unwrap())
    }

    /// A page that must answer 200: its HTML.
    pub async fn html(&self, path: &str) -> String {
        let (status, body) = self.page(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// Posts a form as the hub's pages do (same origin, the CSRF field, asking for HTML).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = self.csrf().await;
        let mut pairs: Vec<(&str, &str)> = vec![("csrf_token", csrf.as_str())];
        pairs.extend_from_slice(fields);
        self.client
            .post(format!("{}{path}", self.hub))
            .header(ORIGIN, &self.hub)
            .header(reqwest::header::ACCEPT, "text/html")
            .form(&pairs)
            .send()
            .await
            .unwrap()
    }

    /// A state-changing request as the hub's own pages send it (same origin, CSRF header).
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) -> Response {
        let csrf = self.csrf().await;
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.hub))
            .header(ORIGIN, &self.hub)
            .header("x-csrf-token", csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }
}
