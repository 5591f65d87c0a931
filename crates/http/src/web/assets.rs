//! The stylesheet and the one script, compiled into the binary and served with a long cache lifetime
//! (their URLs carry a hash of the content, so a new build is a new URL).

use std::sync::LazyLock;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

const CSS: &str = include_str!("../../static/app.css");
const JS: &str = include_str!("../../static/live.js");

/// Where the stylesheet is (`/static/app.css?v=<hash>`).
pub(crate) static STYLESHEET_PATH: LazyLock<String> = LazyLock::new(|| format!("/static/app.css?v={}", version(CSS)));
/// Where the script is.
pub(crate) static SCRIPT_PATH: LazyLock<String> = LazyLock::new(|| format!("/static/live.js?v={}", version(JS)));

fn version(content: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, content.as_bytes());
    hex::encode(&digest.as_ref()[..6])
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type))
        .insert_header((CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .body(body)
}

/// `GET /static/app.css`.
pub(crate) async fn stylesheet(_: web::Query<Vec<(String, String)>>) -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

/// `GET /static/live.js`.
pub(crate) async fn script(_: web::Query<Vec<(String, String)>>) -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}
