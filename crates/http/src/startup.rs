//! Building the actix-web server: shared state, middleware and routes.

use std::net::TcpListener;

use actix_web::dev::Server as ActixServer;
use actix_web::{App, HttpServer, web};
use storage::PgPool;
use tracing_actix_web::TracingLogger;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
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

impl Server {
    /// Binds the listener and builds the app; run it with [`Server::run`].
    pub fn build(listener: TcpListener, state: AppState, settings: &ServerSettings) -> std::io::Result<Self> {
        let port = listener.local_addr()?.port();
        let data = web::Data::new(state);
        let mut http =
            HttpServer::new(move || App::new().wrap(TracingLogger::default()).app_data(data.clone()).configure(routes))
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

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::health::healthz).service(crate::health::readyz);
}
