//! Database targets: connection settings, labels and variables, and their secret (sealed or a reference).

use chrono::{DateTime, Utc};
use domain::ids::{EnvironmentId, TargetId};
use domain::model::{SealedSecret, SecretSource, Target, TargetSpec};
use domain::values::Name;
use uuid::Uuid;

use crate::convert::{parse, string_map, to_json, unsigned};
use crate::{Page, PageRequest, PgConnection, PgTransaction, StorageError, StorageResult};

pub(crate) struct Row {
    pub(crate) id: Uuid,
    pub(crate) environment_id: Uuid,
    pub(crate) name: String,
    pub(crate) engine: String,
    pub(crate) host: String,
    pub(crate) port: i32,
    pub(crate) database_name: String,
    pub(crate) schema_name: Option<String>,
    pub(crate) username: String,
    pub(crate) secret_key_id: Option<String>,
    pub(crate) secret_ref: Option<String>,
    pub(crate) tls_mode: String,
    pub(crate) labels: serde_json::Value,
    pub(crate) variables: serde_json::Value,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for Target {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        let secret = match (row.secret_key_id, row.secret_ref) {
            (Some(key_id), _) => SecretSource::Sealed { key_id },
            (None, Some(reference)) => SecretSource::Reference { reference },
            (None, None) => SecretSource::None,
        };
        Ok(Target {
            id: TargetId::from_uuid(row.id),
            environment_id: EnvironmentId::from_uuid(row.environment_id),
            name: parse("db_targets.name", &row.name)?,
            engine: parse("db_targets.engine", &row.engine)?,
            host: row.host,
            port: unsigned("db_targets.port", row.port)?,
            database: row.database_name,
            schema: row.schema_name.as_deref().map(|s| parse("db_targets.schema_name", s)).transpose()?,
            username: row.username,
            secret,
            tls_mode: parse("db_targets.tls_mode", &row.tls_mode)?,
            labels: string_map("db_targets.labels", row.labels)?,
            variables: string_map("db_targets.variables", row.variables)?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Creates a target. `secret_ref` is the optional `env:NAME` / `file:/path` reference; a sealed password is
/// set afterwards with [`set_sealed_secret`], because sealing binds the ciphertext to the target's id.
#[tracing::instrument(skip_all, fields(target.name = %spec.name))]
pub async fn create(
    conn: &mut PgConnection,
    id: TargetId,
    environment: EnvironmentId,
    spec: &TargetSpec,
    secret_ref: Option<&str>,
) -> StorageResult<Target> {
    sqlx::query_file_as!(
        Row,
        "../../sql/targets/create.sql",
        id.as_uuid(),
        environment.as_uuid(),
        spec.name.as_str(),
        spec.engine.as_str(),
        spec.host,
        i32::from(spec.port),
        spec.database,
        spec.schema.as_ref().map(|s| s.as_str()),
        spec.username,
        spec.tls_mode.as_str(),
        to_json(&spec.labels)?,
        to_json(&spec.variables)?,
        secret_ref,
    )
    .fetch_one(conn)
    .await?
    .try_into()
}

#[tracing::instrument(skip_all, fields(target.id = %id))]
pub async fn get(conn: &mut PgConnection, id: TargetId) -> StorageResult<Target> {
    sqlx::query_file_as!(Row, "../../sql/targets/get.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("target"))?
        .try_into()
}

/// A target, its row locked for the rest of the transaction.
#[tracing::instrument(skip_all, fields(target.id = %id))]
pub async fn get_for_update(tx: &mut PgTransaction<'_>, id: TargetId) -> StorageResult<Target> {
    sqlx::query_file_as!(Row, "../../sql/targets/get_for_update.sql", id.as_uuid())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StorageError::NotFound("target"))?
        .try_into()
}

#[tracing::instrument(skip_all, fields(target.name = %name))]
pub async fn find_by_name(
    conn: &mut PgConnection,
    environment: EnvironmentId,
    name: &Name,
) -> StorageResult<Option<Target>> {
    sqlx::query_file_as!(Row, "../../sql/targets/find_by_name.sql", environment.as_uuid(), name.as_str())
        .fetch_optional(conn)
        .await?
        .map(Target::try_from)
        .transpose()
}

/// Targets of an environment by name, optionally only those whose name contains `search`.
#[tracing::instrument(skip_all, fields(environment.id = %environment))]
pub async fn list(
    conn: &mut PgConnection,
    environment: EnvironmentId,
    search: Option<&str>,
    page: &PageRequest<Name>,
) -> StorageResult<Page<Target, Name>> {
    let limit = page.sql_limit();
    let rows = sqlx::query_file_as!(
        Row,
        "../../sql/targets/list.sql",
        environment.as_uuid(),
        search,
        page.after.as_ref().map(Name::as_str),
        limit
    )
    .fetch_all(conn)
    .await?;
    let items = rows.into_iter().map(Target::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |t| t.name.clone()))
}

/// Replaces a target's connection settings (not its secret).
#[tracing::instrument(skip_all, fields(target.id = %id))]
pub async fn update(conn: &mut PgConnection, id: TargetId, spec: &TargetSpec) -> StorageResult<Target> {
    sqlx::query_file_as!(
        Row,
        "../../sql/targets/update.sql",
        id.as_uuid(),
        spec.name.as_str(),
        spec.engine.as_str(),
        spec.host,
        i32::from(spec.port),
        spec.database,
        spec.schema.as_ref().map(|s| s.as_str()),
        spec.username,
        spec.tls_mode.as_str(),
        to_json(&spec.labels)?,
        to_json(&spec.variables)?,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(StorageError::NotFound("target"))?
    .try_into()
}

/// Stores a sealed password, replacing any previous secret.
#[tracing::instrument(skip_all, fields(target.id = %id, key.id = %sealed.key_id))]
pub async fn set_sealed_secret(conn: &mut PgConnection, id: TargetId, sealed: &SealedSecret) -> StorageResult<Target> {
    sqlx::query_file_as!(
        Row,
        "../../sql/targets/set_sealed_secret.sql",
        id.as_uuid(),
        sealed.ciphertext,
        &sealed.nonce[..],
        sealed.key_id,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(StorageError::NotFound("target"))?
    .try_into()
}

/// Key rotation: replaces `old` with `new` only if the stored secret is still `old`. Returns whether it did.
#[tracing::instrument(skip_all, fields(target.id = %id, key.old = %old.key_id, key.new = %new.key_id))]
pub async fn reseal_secret(
    conn: &mut PgConnection,
    id: TargetId,
    old: &SealedSecret,
    new: &SealedSecret,
) -> StorageResult<bool> {
    let done = sqlx::query_file!(
        "../../sql/targets/reseal_secret.sql",
        id.as_uuid(),
        new.ciphertext,
        &new.nonce[..],
        new.key_id,
        old.key_id,
        &old.nonce[..],
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets (or with `None`, clears) the secret reference, dropping any sealed secret.
#[tracing::instrument(skip_all, fields(target.id = %id))]
pub async fn set_secret_ref(conn: &mut PgConnection, id: TargetId, reference: Option<&str>) -> StorageResult<Target> {
    sqlx::query_file_as!(Row, "../../sql/targets/set_secret_ref.sql", id.as_uuid(), reference)
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("target"))?
        .try_into()
}

/// The sealed password of a target, for the code that connects to it.
#[tracing::instrument(skip_all, fields(target.id = %id))]
pub async fn sealed_secret(conn: &mut PgConnection, id: TargetId) -> StorageResult<Option<SealedSecret>> {
    let Some(row) = sqlx::query_file!("../../sql/targets/sealed_secret.sql", id.as_uuid()).fetch_optional(conn).await?
    else {
        return Ok(None);
    };
    Ok(Some(crate::convert::sealed("db_targets", row.key_id, &row.nonce, row.ciphertext)?))
}

/// Ids of targets whose secret is sealed under a key other than `current_key`, in id order after `after`.
#[tracing::instrument(skip_all)]
pub async fn sealed_not_under_key(
    conn: &mut PgConnection,
    current_key: &str,
    page: &PageRequest<TargetId>,
) -> StorageResult<Page<TargetId, TargetId>> {
    let limit = page.sql_limit();
    let ids = sqlx::query_file_scalar!(
        "../../sql/targets/list_sealed_not_under_key.sql",
        current_key,
        page.after.map(|t| t.as_uuid()),
        limit
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(TargetId::from_uuid)
    .collect();
    Ok(Page::from_items(ids, limit, |id| *id))
}

/// Ids of targets whose secret is sealed, in id order after `after`.
#[tracing::instrument(skip_all)]
pub async fn sealed(conn: &mut PgConnection, page: &PageRequest<TargetId>) -> StorageResult<Page<TargetId, TargetId>> {
    let limit = page.sql_limit();
    let ids = sqlx::query_file_scalar!("../../sql/targets/list_sealed.sql", page.after.map(|t| t.as_uuid()), limit)
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(TargetId::from_uuid)
        .collect();
    Ok(Page::from_items(ids, limit, |id| *id))
}

/// Which Postgres server and database a session is on (see [`database_identity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseIdentity {
    /// `pg_control_system().system_identifier`: the cluster (and its physical replicas).
    pub system_identifier: i64,
    /// The database's OID in that cluster.
    pub database_oid: i64,
    /// Its name, for messages.
    pub database: String,
}

/// The identity of the tool database, to refuse targets that are the tool database itself.
#[tracing::instrument(skip_all)]
pub async fn database_identity(conn: &mut PgConnection) -> StorageResult<DatabaseIdentity> {
    let row = sqlx::query_file!("../../sql/targets/database_identity.sql").fetch_one(conn).await?;
    Ok(DatabaseIdentity {
        system_identifier: row.system_identifier,
        database_oid: row.database_oid,
        database: row.database,
    })
}

/// Deletes a target that no run refers to (runs keep their history, so a used target cannot go).
#[tracing::instrument(skip_all, fields(target.id = %id))]
pub async fn delete(conn: &mut PgConnection, id: TargetId) -> StorageResult<()> {
    let done = sqlx::query_file!("../../sql/targets/delete.sql", id.as_uuid()).execute(conn).await?;
    if done.rows_affected() == 0 {
        return Err(StorageError::NotFound("target"));
    }
    Ok(())
}

/// The names of the given targets; ids that do not exist (deleted targets) are left out.
#[tracing::instrument(skip_all, fields(targets = ids.len()))]
pub async fn names(conn: &mut PgConnection, ids: &[TargetId]) -> StorageResult<Vec<(TargetId, Name)>> {
    let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
    let rows = sqlx::query_file!("../../sql/targets/names.sql", &ids).fetch_all(conn).await?;
    rows.into_iter().map(|r| Ok((TargetId::from_uuid(r.id), parse("db_targets.name", &r.name)?))).collect()
}
