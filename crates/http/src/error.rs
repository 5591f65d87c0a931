//! Every error response of the server is made here.
//!
//! The body is always JSON `{"error": {"code", "message", "request_id"}}`. A 4xx message says what was
//! wrong with the request; a 5xx message is a fixed sentence and the request id, which is also in the log
//! line that carries the full cause chain, so an operator can find it and a client learns nothing inside.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error as a response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The tool database or another dependency is not available right now.
    #[error("service unavailable")]
    Unavailable { request_id: String },
    /// Anything unexpected: logged with its cause at the edge, shown as a request id.
    #[error("internal error")]
    Internal { request_id: String },
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    request_id: &'a str,
}

impl ApiError {
    fn parts(&self) -> (&'static str, &'static str, &str) {
        match self {
            ApiError::Unavailable { request_id } => {
                ("unavailable", "the service is temporarily unavailable; try again later", request_id)
            }
            ApiError::Internal { request_id } => {
                ("internal", "an internal error occurred; quote the request id when reporting it", request_id)
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, message, request_id) = self.parts();
        HttpResponse::build(self.status_code()).json(Body { error: Detail { code, message, request_id } })
    }
}

/// Logs the full cause chain of an internal failure once, with the request id, and turns it into the
/// response the client sees.
pub fn internal(request_id: &str, error: &(dyn std::error::Error + 'static)) -> ApiError {
    tracing::error!(request_id, error = %chain(error), "request failed");
    ApiError::Internal { request_id: request_id.to_owned() }
}

/// `error: cause: cause…` on one line.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
