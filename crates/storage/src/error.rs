//! What went wrong in the tool database, in terms callers can act on.

use sqlx::error::ErrorKind;

/// The outcome of a storage call that failed.
///
/// Constraint names are kept so the HTTP layer can say *which* rule was broken (e.g. `users_email_key`
/// → "a user with this email exists") without ever showing database error text.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique constraint: the thing exists already.
    #[error("conflicts with existing data ({constraint})")]
    Conflict { constraint: String },
    /// A foreign key: a referenced row is missing, or a row is still referenced.
    #[error("refers to missing data or is still in use ({constraint})")]
    Reference { constraint: String },
    /// A CHECK or NOT NULL constraint: validation above storage should have caught it.
    #[error("violates a rule of the schema ({constraint})")]
    Invalid { constraint: String },
    /// A trigger refused the change (immutable versions, append-only audit).
    #[error("the database refused the change: {0}")]
    Refused(String),
    /// A stored value that the domain types reject: the schema and the domain rules disagree.
    #[error("stored data does not satisfy the domain rules: {0}")]
    Corrupt(String),
    #[error("tool database error")]
    Database(#[source] sqlx::Error),
}

pub type StorageResult<T> = Result<T, StorageError>;

/// The `constraint` of [`StorageError::Invalid`] for text Postgres cannot store (a NUL character).
pub const TEXT_ENCODING: &str = "text_encoding";

impl From<sqlx::Error> for StorageError {
    fn from(error: sqlx::Error) -> Self {
        let sqlx::Error::Database(db) = &error else {
            return match error {
                sqlx::Error::RowNotFound => StorageError::NotFound("row"),
                other => StorageError::Database(other),
            };
        };
        let constraint = db.constraint().unwrap_or("unnamed").to_owned();
        match db.kind() {
            ErrorKind::UniqueViolation => StorageError::Conflict { constraint },
            ErrorKind::ForeignKeyViolation => StorageError::Reference { constraint },
            ErrorKind::CheckViolation | ErrorKind::NotNullViolation => StorageError::Invalid { constraint },
            // 22021: text Postgres cannot store (a NUL character): bad input, not a failure of the database.
            // 22P05: the same inside jsonb (a NUL escape in a key or value).
            _ if matches!(db.code().as_deref(), Some("22021" | "22P05")) => {
                StorageError::Invalid { constraint: TEXT_ENCODING.into() }
            }
            // 23001 restrict_violation is what our triggers raise; their message is ours, not user data.
            _ if db.code().as_deref() == Some("23001") => StorageError::Refused(db.message().to_owned()),
            _ => StorageError::Database(error),
        }
    }
}

impl StorageError {
    /// Whether this is a unique-constraint conflict on `constraint`.
    pub fn is_conflict_on(&self, name: &str) -> bool {
        matches!(self, StorageError::Conflict { constraint } if constraint == name)
    }
}
