//! `/healthz` (the process answers) and `/readyz` (it can do its job: tool database reachable and its
//! schema the one this binary was built for).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use tracing_actix_web::RequestId;

use crate::error::{ApiError, internal};
use crate::startup::AppState;

#[derive(Serialize)]
struct Status<'a> {
    status: &'a str,
}

pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

#[derive(Serialize)]
struct Readiness<'a> {
    status: &'a str,
    database: &'a str,
    schema: &'a str,
}

/// How long readiness may wait for the database before saying no.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) async fn readyz(state: web::Data<AppState>, request_id: RequestId) -> Result<HttpResponse, ApiError> {
    let request_id = request_id.to_string();
    let status = match tokio::time::timeout(READY_TIMEOUT, app::tool_db::schema_status(state.hub.pool())).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) if e.is_unreachable() => {
            tracing::warn!(request_id, error = %crate::error::chain(&e), "readiness: tool database unreachable");
            return Ok(unready("unreachable", "unknown"));
        }
        Ok(Err(other)) => return Err(internal(&request_id, &other)),
        Err(_elapsed) => {
            tracing::warn!(request_id, "readiness: tool database did not answer in time");
            return Ok(unready("timeout", "unknown"));
        }
    };
    if status.is_current() {
        Ok(HttpResponse::Ok().json(Readiness { status: "ready", database: "ok", schema: "current" }))
    } else {
        tracing::warn!(request_id, schema = %status.describe(), "readiness: schema not current");
        Ok(unready("ok", "not_current"))
    }
}

fn unready(database: &str, schema: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(Readiness { status: "not_ready", database, schema })
}
