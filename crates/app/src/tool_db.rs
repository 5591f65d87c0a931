//! The tool database itself, for the server binary: connecting to it, applying its schema and telling
//! whether the schema is the one this build expects. The binaries reach it only through here (and the use
//! cases), so no caller above `app` speaks to `storage`.

use storage::StorageError;

pub use storage::PgPool;
pub use storage::pool::{PgConnectOptions, PoolSettings};
pub use storage::schema::SchemaStatus;

/// A failure of the tool database, with what went wrong below kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum ToolDbError {
    /// No connection could be had.
    #[error(transparent)]
    Connect(StorageError),
    /// The database answered, with an error.
    #[error(transparent)]
    Query(StorageError),
}

impl ToolDbError {
    /// Whether no connection could be had at all.
    pub fn did_not_connect(&self) -> bool {
        matches!(self, ToolDbError::Connect(_))
    }

    /// Whether the database did not answer as a database (down, unreachable, no connection in time, a
    /// failure of the server itself), rather than refuse something.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ToolDbError::Connect(_) | ToolDbError::Query(StorageError::Database(_)))
    }
}

/// A pool on the tool database that connects when first used, so it succeeds while the database is down
/// (see [`schema_status`] for readiness).
pub fn connect_lazy(options: PgConnectOptions, settings: &PoolSettings) -> PgPool {
    storage::pool::connect_lazy(options, settings)
}

/// A pool on the tool database, once it answers.
pub async fn connect(options: PgConnectOptions, settings: &PoolSettings) -> Result<PgPool, ToolDbError> {
    storage::pool::connect(options, settings).await.map_err(ToolDbError::Connect)
}

/// Applies every pending migration of the tool schema (idempotent) and says where the schema stands after.
pub async fn migrate(pool: &PgPool) -> Result<SchemaStatus, ToolDbError> {
    storage::schema::migrate(pool).await.map_err(ToolDbError::Query)?;
    schema_status(pool).await
}

/// How the database's schema compares with the one this build embeds; nothing is changed.
pub async fn schema_status(pool: &PgPool) -> Result<SchemaStatus, ToolDbError> {
    let mut conn = pool.acquire().await.map_err(|e| ToolDbError::Connect(e.into()))?;
    storage::schema::status(&mut conn).await.map_err(ToolDbError::Query)
}
