//! Prometheus metrics of the server: request counts and latencies by route and status, runs by status and
//! runs awaiting approval (read from the tool database at scrape time), served at `/metrics`.
//!
//! The recorder is process-wide (the `metrics` facade has one), installed by the first server built in the
//! process. Series never expire, so every label value comes from a closed set the server owns, never from
//! the client: the method is one of the standard ones or `other` (a client may send any token as a method,
//! tens of kilobytes long), the route is a pattern of the route table (`/api/v1/runs/{id}`) or `unmatched`,
//! never the concrete path, and the status is the one the server answered with. The number of series is
//! thus bounded by methods × routes × statuses, whatever clients send.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::error::{ApiError, app_error};
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

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// The method as a label: one of the standard methods, else `other`.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The status as a label. Statuses are the server's own answers, but a handler or middleware could still
/// build any number in 100..=999: those outside the standard classes share `other`.
fn status_label(status: StatusCode) -> String {
    match status.as_u16() {
        code @ 100..=599 => code.to_string(),
        _ => "other".to_owned(),
    }
}

/// Counts and times every request.
pub(crate) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let response = next.call(req).await?;
    // The pattern of the route that matched: one of the route table's, so a bounded set.
    let route = response.request().match_pattern().unwrap_or_else(|| UNMATCHED.to_owned());
    let status = status_label(response.status());
    let labels = [("method", method.to_owned()), ("route", route), ("status", status)];
    metrics::counter!("migrate_hub_http_requests_total", &labels).increment(1);
    metrics::histogram!("migrate_hub_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// `GET /metrics`.
pub(crate) async fn serve(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let Some(handle) = handle() else {
        return Err(ApiError::Unavailable { request_id: request_id(&req) });
    };
    let counts = app::runs::count_by_status(&state.hub).await.map_err(|e| app_error(&request_id(&req), e))?;
    let drifted = app::drift::count_drifted(&state.hub).await.map_err(|e| app_error(&request_id(&req), e))?;
    metrics::gauge!("migrate_hub_drifted_targets").set(drifted as f64);
    for status in domain::run::RunStatus::ALL {
        let n = counts.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
        metrics::gauge!("migrate_hub_runs", "status" => status.as_str()).set(n as f64);
        if *status == domain::run::RunStatus::AwaitingApproval {
            metrics::gauge!("migrate_hub_approvals_pending").set(n as f64);
        }
    }
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(handle.render()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn method_labels_are_the_standard_methods_or_other() {
        for (method, label) in [
            ("GET", "GET"),
            ("HEAD", "HEAD"),
            ("POST", "POST"),
            ("PUT", "PUT"),
            ("PATCH", "PATCH"),
            ("DELETE", "DELETE"),
            ("OPTIONS", "OPTIONS"),
            ("TRACE", "other"),
            ("CONNECT", "other"),
            ("get", "other"),
            ("PROPFIND", "other"),
        ] {
            assert_eq!(method_label(&Method::from_bytes(method.as_bytes()).unwrap()), label, "{method}");
        }
        let long = "A".repeat(30_000);
        assert_eq!(method_label(&Method::from_bytes(long.as_bytes()).unwrap()), "other");
    }

    #[test]
    fn status_labels_are_standard_codes_or_other() {
        assert_eq!(status_label(StatusCode::OK), "200");
        assert_eq!(status_label(StatusCode::SERVICE_UNAVAILABLE), "503");
        assert_eq!(status_label(StatusCode::from_u16(999).unwrap()), "other");
    }
}
