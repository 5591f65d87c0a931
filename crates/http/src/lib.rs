//! The HTTP face of migrate-hub: actix-web routes, extractors, middleware, views and JSON DTOs.
//!
//! Handlers parse a request, call one use case below this layer, and render its result. This crate reaches
//! the tool database only through the use cases of `app` (it must never import `storage` or `sqlx`: a tidy
//! rule) and never decides a rule of the product itself (that is `domain`'s); it maps errors to responses in one place ([`error`]), where 5xx bodies carry a request id
//! and never the text of an internal error. Every route is declared once in [`routes`] with the policy
//! its guard ([`guard`]) enforces.

mod api;
mod dto;
pub mod error;
pub mod guard;
mod health;
mod login;
mod metrics;
pub mod openapi;
mod rest;
pub mod routes;
mod session;
pub mod settings;
pub mod startup;
mod web;

pub use settings::{AuthSettings, TrustedProxies};
pub use startup::{AppState, Server, ServerSettings};
