//! Every error response of the server is made here.
//!
//! The body is always JSON `{"error": {"code", "message", "request_id"?}}`, where `code` is a
//! [`domain::ErrorCode`] (one closed list, documented in the README). A 4xx message says what was
//! wrong with the request; a 5xx message is a fixed sentence and the request id, which is also in the log
//! line that carries the full cause chain, so an operator can find it and a client learns nothing inside.
//! 5xx responses made elsewhere (a middleware's own error) are rewritten into the same shape by
//! [`rewrite_server_errors`].

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use domain::ErrorCode;
use serde::Serialize;
use tracing_actix_web::RequestId;

/// An error as a response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a value in it is invalid; the message says which.
    #[error("{message}")]
    BadRequest { code: ErrorCode, message: String },
    /// No valid credentials: not signed in, or a bad, expired or revoked token.
    #[error("{message}")]
    Unauthenticated { message: String },
    /// Signed in, but not allowed to do this; the message says why.
    #[error("{message}")]
    Forbidden { code: ErrorCode, message: String },
    /// No such thing (or one the caller may not know exists).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The request conflicts with the current state (e.g. a name in use).
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },
    /// A value in the request is well-formed but invalid; `field` names it when there is one.
    #[error("{message}")]
    Unprocessable { code: ErrorCode, message: String, field: Option<&'static str> },
    /// The body, or a text in it, is over its size limit.
    #[error("{message}")]
    TooLarge { message: String },
    /// Too many attempts; try again later.
    #[error("too many attempts; try again in a minute")]
    TooManyRequests,
    /// Too much of this is running already (e.g. an import); the code says what, the message when to retry.
    #[error("{message}")]
    Busy { code: ErrorCode, message: String },
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
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    request_id: &'a str,
}

const UNAVAILABLE: &str = "the service is temporarily unavailable; try again later";
const INTERNAL: &str = "an internal error occurred; quote the request id when reporting it";

impl ApiError {
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn forbidden(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Forbidden { code, message: message.into() }
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError::Unauthenticated { message: message.into() }
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Conflict { code, message: message.into() }
    }

    /// The stable code of this answer.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unprocessable { code, .. }
            | ApiError::Busy { code, .. } => *code,
            ApiError::TooLarge { .. } => ErrorCode::TooLarge,
            ApiError::Unauthenticated { .. } => ErrorCode::Unauthenticated,
            ApiError::NotFound { .. } => ErrorCode::NotFound,
            ApiError::TooManyRequests => ErrorCode::TooManyRequests,
            ApiError::Unavailable { .. } => ErrorCode::Unavailable,
            ApiError::Internal { .. } => ErrorCode::Internal,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests | ApiError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = self.to_string();
        let (message, request_id) = match self {
            ApiError::Unavailable { request_id } => (UNAVAILABLE, request_id.as_str()),
            ApiError::Internal { request_id } => (INTERNAL, request_id.as_str()),
            _ => (message.as_str(), ""),
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthenticated { .. }) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        let field = match self {
            ApiError::Unprocessable { field, .. } => *field,
            _ => None,
        };
        response.json(Body { error: Detail { code: self.code().as_str(), message, field, request_id } })
    }
}

/// Logs the full cause chain of an internal failure once, with the request id, and turns it into the
/// response the client sees.
pub fn internal(request_id: &str, error: &(dyn std::error::Error + 'static)) -> ApiError {
    tracing::error!(request_id, error = %chain(error), "request failed");
    ApiError::Internal { request_id: request_id.to_owned() }
}

pub use auth::error_chain as chain;

/// A use case's refusal or failure as a response.
pub fn app_error(request_id: &str, error: app::AppError) -> ApiError {
    use app::AppError as E;
    let code = error.code();
    let forbidden = error.is_forbidden();
    match error {
        E::Invalid { field, code, message } => ApiError::Unprocessable { code, message, field },
        E::NotFound { what } => ApiError::NotFound { what },
        E::Conflict { code, message } => ApiError::Conflict { code, message },
        E::Denied(denial) if forbidden => ApiError::Forbidden { code, message: denial.to_string() },
        E::Denied(denial) => ApiError::Conflict { code, message: denial.to_string() },
        E::TooLarge { .. } => ApiError::TooLarge { message: error.to_string() },
        E::Busy { code, message } => ApiError::Busy { code, message },
        E::Internal(cause) => internal(request_id, cause.as_ref()),
    }
}

/// Gives every 5xx response that is not already ours (a middleware's, e.g. the session store's, or
/// actix's own) the JSON body with a request id, dropping whatever text it had.
pub fn rewrite_server_errors<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // Ours: the JSON error body, or an HTML error page of the web UI (which carries the request id too).
    let ours = res.response().headers().get(CONTENT_TYPE).is_some_and(|v| {
        v == HeaderValue::from_static("application/json") || v == HeaderValue::from_static("text/html; charset=utf-8")
    });
    if ours {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let request_id = res.request().extensions().get::<RequestId>().map(ToString::to_string).unwrap_or_default();
    if let Some(error) = res.response().error() {
        tracing::error!(request_id, status = status.as_u16(), error = %error, "request failed");
    }
    let error = if status == StatusCode::SERVICE_UNAVAILABLE {
        ApiError::Unavailable { request_id }
    } else {
        ApiError::Internal { request_id }
    };
    let (req, _) = res.into_parts();
    let mut response = error.error_response();
    *response.status_mut() = status;
    let res: ServiceResponse<EitherBody<B, BoxBody>> = ServiceResponse::new(req, response).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}
