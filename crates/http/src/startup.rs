//! Building the actix-web server: shared state, middleware and routes.
//!
//! Middleware, outermost first: request id and root span (path only: query strings such as an OIDC
//! callback's code never reach a log), security headers, the 5xx rewrite (every 5xx body is ours, with a
//! request id), then sessions. Each route then passes its own guard (`guard`, registered by `routes`).

use std::net::TcpListener;
use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, TtlExtensionPolicy};
use actix_web::body::MessageBody;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Server as ActixServer, ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, ErrorHandlers, Next, from_fn};
use actix_web::{App, HttpMessage, HttpServer, ResponseError, web};
use app::{Hub, PgPool};
use domain::ErrorCode;
use domain::secret_ref::SecretRefPolicy;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder, TracingLogger};

use crate::error::{ApiError, rewrite_server_errors};
use crate::session::PgSessionStore;
use crate::settings::{Auth, AuthSettings, SettingsError, TrustedProxies};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// What the use cases run against: the tool database and the hub's configuration.
    pub hub: Hub,
    pub(crate) auth: Arc<Auth>,
    /// The master keys that seal target passwords; without them only secret references can be set.
    pub(crate) keys: Option<Arc<auth::secrets::KeyRing>>,
    pub(crate) limits: app::migrations::Limits,
    /// Imports running now: bounded per user and in all (`app::migrations::ImportGate`).
    pub(crate) imports: Arc<app::migrations::ImportGate>,
    /// Whose `X-Forwarded-For` names the client (see [`crate::login::client_ip`]).
    pub(crate) proxies: TrustedProxies,
}

impl AppState {
    /// Checks the settings and builds the state. The audit chain is unkeyed and no secret reference is allowed
    /// until [`AppState::with_audit_key`] and [`AppState::with_secret_refs`] say otherwise.
    pub fn new(pool: PgPool, auth: AuthSettings) -> Result<Self, SettingsError> {
        let public_url = auth.public_url.clone();
        Ok(Self {
            hub: Hub::new(pool).with_addresses(Some(&public_url), None),
            auth: Auth::new(auth)?,
            keys: None,
            limits: app::migrations::Limits::default(),
            imports: Arc::default(),
            proxies: TrustedProxies::default(),
        })
    }

    /// Keys the audit events the use cases write, and lets them verify keyed ones.
    pub fn with_audit_key(mut self, key: Option<audit::ChainKey>) -> Self {
        self.hub = self.hub.with_audit_key(key);
        self
    }

    /// The secret references targets may name (`MIGRATE_HUB_SECRET_REFS`).
    pub fn with_secret_refs(mut self, policy: SecretRefPolicy) -> Self {
        self.hub = self.hub.with_secret_refs(policy);
        self
    }

    /// The socket the server listens on (webhooks are never sent to it).
    pub fn with_bind_address(mut self, bind: std::net::SocketAddr) -> Self {
        self.hub = self.hub.with_bind(bind);
        self
    }

    /// Lets the hub seal target passwords with `keys`.
    pub fn with_keys(mut self, keys: Option<auth::secrets::KeyRing>) -> Self {
        self.keys = keys.map(Arc::new);
        self
    }

    /// Believes `X-Forwarded-For` from these proxies (none by default).
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// Size limits on migration SQL.
    pub fn with_limits(mut self, limits: app::migrations::Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// Server settings that come from configuration.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Worker threads of the HTTP server (0: one per core).
    pub workers: usize,
}

/// A bound, not yet running server, and the port it listens on (useful when binding port 0 in tests).
pub struct Server {
    pub port: u16,
    server: ActixServer,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("port", &self.port).finish_non_exhaustive()
    }
}

/// Largest JSON or form body accepted (SPEC §7: migration SQL is limited to 1 MiB; bodies carry a little
/// more than the SQL).
const BODY_LIMIT: usize = 4 << 20;

/// Root spans that carry the method, path and request id, and never the query string. The method is the
/// metrics label (a standard method or `other`): a client can send any token, tens of kilobytes long.
struct PathOnlySpans;

impl RootSpanBuilder for PathOnlySpans {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().map(ToString::to_string).unwrap_or_default();
        tracing::info_span!(
            "request",
            method = crate::metrics::method_label(request.method()),
            path = %request.path(),
            request_id = %request_id,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

fn security_headers(hsts: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"))
        .add(("Cache-Control", "no-store"));
    if hsts { headers.add(("Strict-Transport-Security", "max-age=31536000; includeSubDomains")) } else { headers }
}

/// Gives a middleware's error (e.g. the session store's) our body: the cause is logged with the request
/// id, the client gets the id only.
async fn errors_as_responses(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = req.extensions().get::<RequestId>().map(ToString::to_string).unwrap_or_default();
    next.call(req).await.map_err(|error| {
        if error.as_response_error().status_code().is_server_error() {
            tracing::error!(request_id, error = %error, "request failed in a middleware");
            ApiError::Internal { request_id }.into()
        } else {
            error
        }
    })
}

fn bad_input(code: ErrorCode, error: &dyn std::fmt::Display) -> actix_web::Error {
    ApiError::bad_request(code, error.to_string()).into()
}

/// A body that is too big is 413; one that does not parse, or has a field the route does not know, is 400
/// with serde's description (which names the field, line and column, never echoes the body).
fn json_error(error: &actix_web::error::JsonPayloadError) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    match error {
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => {
            ApiError::TooLarge { message: format!("the request body is larger than {limit} bytes") }.into()
        }
        E::ContentType => {
            ApiError::bad_request(ErrorCode::UnsupportedContentType, "send the body as application/json").into()
        }
        other => bad_input(ErrorCode::InvalidJson, other),
    }
}

/// Anything no route matches: an HTML page with the request id for a browser, JSON for the API.
async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    if crate::web::wants_html(&req) {
        let request_id = crate::guard::request_id(&req);
        crate::web::error_page(&ApiError::NotFound { what: "page" }, Some(&request_id))
    } else {
        ApiError::NotFound { what: "route" }.error_response()
    }
}

impl Server {
    /// Binds the listener and builds the app; run it with [`Server::run`].
    pub fn build(listener: TcpListener, state: AppState, settings: &ServerSettings) -> std::io::Result<Self> {
        let port = listener.local_addr()?.port();
        let auth = state.auth.clone();
        let store = PgSessionStore { hub: state.hub.clone(), idle: auth.session_idle, absolute: auth.session_absolute };
        let cookie_key = Key::try_from(&auth.cookie_key[..]).map_err(std::io::Error::other)?;
        let data = web::Data::new(state);
        crate::metrics::handle();
        let mut http = HttpServer::new(move || {
            let absolute = actix_web::cookie::time::Duration::seconds(
                i64::try_from(auth.session_absolute.as_secs()).unwrap_or(i64::MAX),
            );
            let sessions = SessionMiddleware::builder(store.clone(), cookie_key.clone())
                // `__Host-` pins the cookie to this host, path `/` and https.
                .cookie_name(if auth.secure_cookies { "__Host-mh_session" } else { "mh_session" }.to_owned())
                .cookie_secure(auth.secure_cookies)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .session_lifecycle(
                    BrowserSession::default()
                        .state_ttl(absolute)
                        .state_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
                )
                .build();
            App::new()
                .wrap(sessions)
                .wrap(from_fn(errors_as_responses))
                .wrap(ErrorHandlers::new().default_handler_server(rewrite_server_errors))
                .wrap(security_headers(auth.hsts()))
                .wrap(from_fn(crate::metrics::observe))
                .wrap(TracingLogger::<PathOnlySpans>::new())
                .app_data(data.clone())
                .app_data(web::JsonConfig::default().limit(BODY_LIMIT).error_handler(|e, _| json_error(&e)))
                .app_data(
                    web::FormConfig::default()
                        .limit(BODY_LIMIT)
                        .error_handler(|e, _| bad_input(ErrorCode::InvalidForm, &e)),
                )
                .app_data(web::QueryConfig::default().error_handler(|e, _| bad_input(ErrorCode::InvalidQuery, &e)))
                .app_data(web::PathConfig::default().error_handler(|e, _| bad_input(ErrorCode::InvalidPath, &e)))
                .configure(crate::routes::configure)
                .default_service(web::to(not_found))
        })
        .shutdown_timeout(10);
        if settings.workers > 0 {
            http = http.workers(settings.workers);
        }
        let server = http.listen(listener)?.run();
        Ok(Self { port, server })
    }

    /// Serves until the process gets SIGINT/SIGTERM (actix handles both, draining open requests).
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}
