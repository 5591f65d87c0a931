//! Applying migrations to target databases, and the worker daemon around it.
//!
//! This crate owns target connections (Postgres and MySQL), per-target locks, history tables and the
//! apply loop, and the worker's life in the tool database (registration, heartbeats, claiming). It reaches
//! the tool database only through `storage`, and must never know about HTTP, sessions or HTML. What a worker
//! must never send or touch (its own secrets, the tool database as a target) is decided in `secrets`.

pub mod adopt;
pub mod apply;
pub mod drift;
pub mod history;
pub mod local;
pub mod queue;
pub mod recovery;
pub mod secrets;
pub mod target;
pub mod webhooks;
pub mod worker;
