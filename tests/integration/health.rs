//! The HTTP server in-process: health and readiness, including when the tool database is behind or gone.

use std::net::TcpListener;

use migrate_hub_tests::PgDatabase;

/// Starts the server on a free port with `pool` and returns its base URL.
fn spawn_app(pool: sqlx::PgPool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let settings = http::AuthSettings {
        oidc: None,
        password_login: false,
        server_secret: auth::keys::ServerSecret::random().unwrap().0,
        public_url: "http://127.0.0.1:8080".into(),
        secure_cookies: true,
        session_idle: std::time::Duration::from_secs(1800),
        session_absolute: std::time::Duration::from_secs(43_200),
    };
    let state = http::AppState::new(pool, settings).unwrap();
    let server = http::Server::build(listener, state, &http::ServerSettings { workers: 1 }).unwrap();
    let address = format!("http://127.0.0.1:{}", server.port);
    tokio::spawn(server.run());
    address
}

#[tokio::test]
async fn ready_when_the_schema_is_current() {
    let db = PgDatabase::migrated().await;
    let app = spawn_app(db.pool.clone());
    let response = reqwest::get(format!("{app}/readyz")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ready", "database": "ok", "schema": "current"}));
    assert_eq!(reqwest::get(format!("{app}/healthz")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn not_ready_when_the_schema_is_behind() {
    let db = PgDatabase::fresh().await;
    let app = spawn_app(db.pool.clone());
    let response = reqwest::get(format!("{app}/readyz")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "not_ready", "database": "ok", "schema": "not_current"}));
    // The process itself is alive.
    assert_eq!(reqwest::get(format!("{app}/healthz")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn not_ready_when_the_database_is_unreachable() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let options: sqlx::postgres::PgConnectOptions = format!("postgres://postgres@127.0.0.1:{port}/x").parse().unwrap();
    let pool = storage::pool::connect_lazy(
        options,
        &storage::pool::PoolSettings { acquire_timeout: std::time::Duration::from_millis(500), ..Default::default() },
    );
    let app = spawn_app(pool);
    let response = reqwest::get(format!("{app}/readyz")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_ne!(body["database"], "ok");
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let db = PgDatabase::migrated().await;
    let app = spawn_app(db.pool.clone());
    assert_eq!(reqwest::get(format!("{app}/nope")).await.unwrap().status(), 404);
}

#[tokio::test]
async fn a_pool_for_generic_plans_plans_each_statement_once_and_keeps_the_url_s_own_options() {
    let db = PgDatabase::migrated().await;
    let options: sqlx::postgres::PgConnectOptions = format!("{}?options=-c%20work_mem%3D5MB", db.url).parse().unwrap();
    for (generic, mode) in [(true, "force_generic_plan"), (false, "auto")] {
        let settings = storage::pool::PoolSettings { generic_plans: generic, ..Default::default() };
        let pool = storage::pool::connect(options.clone(), &settings).await.unwrap();
        let (plans, memory): (String, String) =
            sqlx::query_as("SELECT current_setting('plan_cache_mode'), current_setting('work_mem')")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!((plans.as_str(), memory.as_str()), (mode, "5MB"));
        pool.close().await;
    }
}
