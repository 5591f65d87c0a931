//! The tool database: the one crate in the workspace that speaks SQL to it.
//!
//! Every query is a file under `sql/` at the workspace root, used through `sqlx::query_file*!` so it is
//! checked against the schema in `migrations/` at compile time (offline, from the committed `.sqlx/`).
//! Row types are private to each module and converted into `domain::model` records at the boundary;
//! `sqlx::Error` is translated into [`StorageError`] there too, so no caller ever matches on SQLSTATEs.
//!
//! Functions that run one statement take `&mut PgConnection` (pass `&mut *tx` inside a transaction);
//! functions that must run several statements atomically take `&mut PgTransaction`.
//!
//! This crate must never know about HTTP, sessions, target databases or the worker loop; it must never
//! hold a secret in the clear (sealed ciphertexts pass through it untouched).

pub mod approvals;
pub mod audit;
pub mod db_sets;
pub mod drift;
pub mod environments;
mod error;
pub mod logs;
pub mod migrations;
pub mod oidc_logins;
mod page;
pub mod pool;
pub mod projects;
pub mod queue;
pub mod run_items;
pub mod runs;
pub mod schema;
pub mod sessions;
pub mod targets;
pub mod tokens;
pub mod users;
pub mod versions;
pub mod webhooks;
pub mod windows;
pub mod workers;

pub use error::{StorageError, StorageResult, TEXT_ENCODING};
pub use page::{MAX_PAGE, Page, PageRequest};
pub use sqlx::postgres::{PgConnection, PgPool};

/// A transaction on the tool database.
pub type PgTransaction<'c> = sqlx::Transaction<'c, sqlx::Postgres>;

mod convert;
