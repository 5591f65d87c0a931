//! Environments and their policies.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::enums::Role;
use domain::ids::EnvironmentId;
use domain::model::{Environment, NewEnvironment};
use domain::policy::{EnvironmentPolicy, RoleSet};
use domain::values::Name;
use uuid::Uuid;

use crate::convert::{parse, unsigned};
use crate::{Page, PageRequest, PgConnection, StorageError, StorageResult};

struct Row {
    id: Uuid,
    name: String,
    description: String,
    approval_required: bool,
    approvals_required: i16,
    execute_roles: Vec<String>,
    lock_timeout_ms: i32,
    statement_timeout_ms: Option<i32>,
    target_lock_wait_ms: i32,
    allow_out_of_order: bool,
    lock_retries: i16,
    lock_retry_max_delay_ms: i32,
    lint_block: String,
    high_risk_approvals: i16,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn millis(column: &'static str, value: i32) -> StorageResult<Duration> {
    Ok(Duration::from_millis(unsigned::<u64, _>(column, value)?))
}

impl TryFrom<Row> for Environment {
    type Error = StorageError;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        let roles = row
            .execute_roles
            .iter()
            .map(|r| parse::<Role>("environments.execute_roles", r))
            .collect::<StorageResult<Vec<_>>>()?;
        let policy = EnvironmentPolicy {
            approval_required: row.approval_required,
            approvals_required: unsigned("environments.approvals_required", row.approvals_required)?,
            execute_roles: RoleSet::from_roles(&roles),
            lock_timeout: millis("environments.lock_timeout_ms", row.lock_timeout_ms)?,
            statement_timeout: row
                .statement_timeout_ms
                .map(|ms| millis("environments.statement_timeout_ms", ms))
                .transpose()?,
            target_lock_wait: millis("environments.target_lock_wait_ms", row.target_lock_wait_ms)?,
            allow_out_of_order: row.allow_out_of_order,
            lock_retries: unsigned("environments.lock_retries", row.lock_retries)?,
            lock_retry_max_delay: millis("environments.lock_retry_max_delay_ms", row.lock_retry_max_delay_ms)?,
            lint_block: parse("environments.lint_block", &row.lint_block)?,
            high_risk_approvals: unsigned("environments.high_risk_approvals", row.high_risk_approvals)?,
        };
        Ok(Environment {
            id: EnvironmentId::from_uuid(row.id),
            name: parse("environments.name", &row.name)?,
            description: row.description,
            policy,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// The policy as SQL parameters.
struct PolicyParams {
    approvals_required: i16,
    execute_roles: Vec<String>,
    lock_timeout_ms: i32,
    statement_timeout_ms: Option<i32>,
    target_lock_wait_ms: i32,
    lock_retries: i16,
    lock_retry_max_delay_ms: i32,
    high_risk_approvals: i16,
}

fn ms(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

impl From<&EnvironmentPolicy> for PolicyParams {
    fn from(policy: &EnvironmentPolicy) -> Self {
        Self {
            approvals_required: i16::from(policy.approvals_required),
            execute_roles: policy.execute_roles.iter().map(|r| r.as_str().to_owned()).collect(),
            lock_timeout_ms: ms(policy.lock_timeout),
            statement_timeout_ms: policy.statement_timeout.map(ms),
            target_lock_wait_ms: ms(policy.target_lock_wait),
            lock_retries: i16::from(policy.lock_retries),
            lock_retry_max_delay_ms: ms(policy.lock_retry_max_delay),
            high_risk_approvals: i16::from(policy.high_risk_approvals),
        }
    }
}

#[tracing::instrument(skip_all, fields(environment.name = %new.name))]
pub async fn create(conn: &mut PgConnection, new: &NewEnvironment) -> StorageResult<Environment> {
    let p = PolicyParams::from(&new.policy);
    let policy_lint_block = new.policy.lint_block.as_str();
    sqlx::query_file_as!(
        Row,
        "../../sql/environments/create.sql",
        EnvironmentId::new().as_uuid(),
        new.name.as_str(),
        new.description,
        new.policy.approval_required,
        p.approvals_required,
        &p.execute_roles,
        p.lock_timeout_ms,
        p.statement_timeout_ms,
        p.target_lock_wait_ms,
        new.policy.allow_out_of_order,
        p.lock_retries,
        p.lock_retry_max_delay_ms,
        policy_lint_block,
        p.high_risk_approvals,
    )
    .fetch_one(conn)
    .await?
    .try_into()
}

#[tracing::instrument(skip_all, fields(environment.id = %id))]
pub async fn get(conn: &mut PgConnection, id: EnvironmentId) -> StorageResult<Environment> {
    sqlx::query_file_as!(Row, "../../sql/environments/get.sql", id.as_uuid())
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("environment"))?
        .try_into()
}

#[tracing::instrument(skip_all, fields(environment.name = %name))]
pub async fn find_by_name(conn: &mut PgConnection, name: &Name) -> StorageResult<Option<Environment>> {
    sqlx::query_file_as!(Row, "../../sql/environments/find_by_name.sql", name.as_str())
        .fetch_optional(conn)
        .await?
        .map(Environment::try_from)
        .transpose()
}

/// Environments by name.
#[tracing::instrument(skip_all)]
pub async fn list(conn: &mut PgConnection, page: &PageRequest<Name>) -> StorageResult<Page<Environment, Name>> {
    let limit = page.sql_limit();
    let rows =
        sqlx::query_file_as!(Row, "../../sql/environments/list.sql", page.after.as_ref().map(Name::as_str), limit)
            .fetch_all(conn)
            .await?;
    let items = rows.into_iter().map(Environment::try_from).collect::<StorageResult<Vec<_>>>()?;
    Ok(Page::from_items(items, limit, |e| e.name.clone()))
}

/// Replaces an environment's description and policy.
#[tracing::instrument(skip_all, fields(environment.id = %id))]
pub async fn update(
    conn: &mut PgConnection,
    id: EnvironmentId,
    description: &str,
    policy: &EnvironmentPolicy,
) -> StorageResult<Environment> {
    let p = PolicyParams::from(policy);
    let policy_lint_block = policy.lint_block.as_str();
    sqlx::query_file_as!(
        Row,
        "../../sql/environments/update.sql",
        id.as_uuid(),
        description,
        policy.approval_required,
        p.approvals_required,
        &p.execute_roles,
        p.lock_timeout_ms,
        p.statement_timeout_ms,
        p.target_lock_wait_ms,
        policy.allow_out_of_order,
        p.lock_retries,
        p.lock_retry_max_delay_ms,
        policy_lint_block,
        p.high_risk_approvals,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(StorageError::NotFound("environment"))?
    .try_into()
}
