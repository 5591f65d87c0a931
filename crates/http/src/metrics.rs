//! Prometheus metrics of the server: request counts and latencies by route and status, runs by status and
//! runs awaiting approval (read from the tool database at scrape time), served at `/metrics`.
//!
//! The recorder is process-wide (the `metrics` facade has one), installed by the first server built in the
//! process; labels use the route pattern (`/api/v1/runs/{id}`), never the concrete path, so ids cannot blow
//! up the number of series.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::error::{ApiError, internal};
use crate::guard::request_id;
use crate::startup::AppState;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use. `None` when another recorder
/// was installed first (then `/metrics` answers 503).
pub(crate) fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// Counts and times every request.
pub(crate) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let response = next.call(req).await?;
    let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("migrate_hub_http_requests_total", &labels).increment(1);
    metrics::histogram!("migrate_hub_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// `GET /metrics`.
pub(crate) async fn serve(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let Some(handle) = handle() else {
        return Err(ApiError::Unavailable { request_id: request_id(&req) });
    };
    let mut conn = state.pool.acquire().await.map_err(|e| internal(&request_id(&req), &e))?;
    let counts = storage::runs::count_by_status(&mut conn).await.map_err(|e| internal(&request_id(&req), &e))?;
    for status in domain::run::RunStatus::ALL {
        let n = counts.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
        metrics::gauge!("migrate_hub_runs", "status" => status.as_str()).set(n as f64);
        if *status == domain::run::RunStatus::AwaitingApproval {
            metrics::gauge!("migrate_hub_approvals_pending").set(n as f64);
        }
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(handle.render()))
}
