//! Environments and their policies, targets and their secrets, db sets and their members. Changing any of
//! them is for admins; reading them is for everyone signed in (requesting a run means choosing them).
//!
//! Two rules keep a target from becoming a way to read the hub's secrets or rewrite its history:
//! - A secret reference must match the hub's allowlist (`MIGRATE_HUB_SECRET_REFS`, given to the use cases
//!   in [`Hub`], the same setting the workers resolve with; nothing by default), and never names the hub's
//!   own settings or `/proc` (`domain::secret_ref`). A sealed password is bound to the connection it was
//!   entered for: changing the engine, host, port, database or user without a new password drops it, and
//!   the change says so.
//! - A target may not be the tool database itself: refused at creation and change when the target is
//!   reachable, at each connection check, and by the worker before every apply (`executor::secrets`).

use audit::Action;
use std::collections::BTreeMap;
use std::time::Duration;

use auth::secrets::Binding;
use domain::ErrorCode;
use domain::enums::{Engine, LintBlock, Role, TlsMode};
use domain::ids::{DbSetId, EnvironmentId, ProjectId, TargetId};
use domain::model::{DbSet, Environment, NewEnvironment, SecretSource, Target, TargetSpec};
use domain::policy::{EnvironmentPolicy, RoleSet, may_administer};
use domain::secret_ref::{Refusal, SecretRef};
use domain::values::{Identifier, Name};
pub use executor::history::ShownRow;
use executor::target::{TargetConnection, TargetError};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use storage::{Page, PageRequest};

use crate::error::db;
use crate::{AppError, AppResult, Caller, Hub, record};

/// How long the server tries to reach a new or changed target to make sure it is not the tool database.
const TOOL_DATABASE_CHECK: Duration = Duration::from_secs(3);

/// Most targets one membership change may name.
pub const MAX_MEMBERS_PER_CHANGE: usize = 5000;
const MAX_MAP_BYTES: usize = 16 * 1024;

/// A password sent to the hub: held as a `SecretString` from the moment it is parsed, never printed.
#[derive(Clone)]
pub struct Password(pub SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Password(SecretString::from(s)))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Password {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Password)))
            .min_length(Some(1))
            .max_length(Some(1024))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Password {}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn explicit_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

fn description(text: Option<String>) -> AppResult<String> {
    crate::free_text("description", text)
}

// --- environments ---

/// A new environment. Settings left out get the defaults of a production-like environment when approval
/// is required (the default), or of a development one when it is not.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewEnvironmentInput {
    /// Lower-case slug, e.g. `prod`.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub approval_required: Option<bool>,
    /// 1 to 10 when approval is required, else 0.
    #[serde(default)]
    pub approvals_required: Option<u8>,
    #[serde(default)]
    pub execute_roles: Option<Vec<Role>>,
    #[serde(default)]
    pub lock_timeout_ms: Option<u32>,
    /// `null` or absent: no statement timeout.
    #[serde(default)]
    pub statement_timeout_ms: Option<u32>,
    #[serde(default)]
    pub target_lock_wait_ms: Option<u32>,
    #[serde(default)]
    pub allow_out_of_order: Option<bool>,
    /// Retries of a statement that gave up waiting for a lock, 0 to 10 (default 3).
    #[serde(default)]
    pub lock_retries: Option<u8>,
    /// The longest wait between two of those tries, up to 300000 (default 10000).
    #[serde(default)]
    pub lock_retry_max_delay_ms: Option<u32>,
    /// Which SQL review findings refuse a release at request: `error` (default), `warning` or `never`.
    #[serde(default)]
    pub lint_block: Option<LintBlock>,
    /// Approvals a high-risk release needs on top of `approvals_required`, 0 to 10 (default 1 where
    /// approval is required).
    #[serde(default)]
    pub high_risk_approvals: Option<u8>,
}

/// Changes to an environment; absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentPatch {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub approval_required: Option<bool>,
    #[serde(default)]
    pub approvals_required: Option<u8>,
    #[serde(default)]
    pub execute_roles: Option<Vec<Role>>,
    #[serde(default)]
    pub lock_timeout_ms: Option<u32>,
    /// `null` removes the statement timeout.
    #[serde(default, deserialize_with = "explicit_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>))]
    pub statement_timeout_ms: Option<Option<u32>>,
    #[serde(default)]
    pub target_lock_wait_ms: Option<u32>,
    #[serde(default)]
    pub allow_out_of_order: Option<bool>,
    #[serde(default)]
    pub lock_retries: Option<u8>,
    #[serde(default)]
    pub lock_retry_max_delay_ms: Option<u32>,
    #[serde(default)]
    pub lint_block: Option<LintBlock>,
    #[serde(default)]
    pub high_risk_approvals: Option<u8>,
}

fn ms(value: u32) -> Duration {
    Duration::from_millis(u64::from(value))
}

fn apply_patch(base: EnvironmentPolicy, p: &EnvironmentPatch) -> AppResult<EnvironmentPolicy> {
    let mut policy = base;
    if let Some(required) = p.approval_required {
        if required != policy.approval_required {
            // Switching approval on or off moves the count to its natural value unless one is given.
            policy.approvals_required = u8::from(required);
        }
        policy.approval_required = required;
    }
    if let Some(n) = p.approvals_required {
        policy.approvals_required = n;
    }
    if let Some(roles) = &p.execute_roles {
        policy.execute_roles = RoleSet::from_roles(roles);
    }
    if let Some(v) = p.lock_timeout_ms {
        policy.lock_timeout = ms(v);
    }
    if let Some(v) = p.statement_timeout_ms {
        policy.statement_timeout = v.map(ms);
    }
    if let Some(v) = p.target_lock_wait_ms {
        policy.target_lock_wait = ms(v);
    }
    if let Some(v) = p.allow_out_of_order {
        policy.allow_out_of_order = v;
    }
    if let Some(v) = p.lock_retries {
        policy.lock_retries = v;
    }
    if let Some(v) = p.lock_retry_max_delay_ms {
        policy.lock_retry_max_delay = ms(v);
    }
    if let Some(v) = p.lint_block {
        policy.lint_block = v;
    }
    if let Some(v) = p.high_risk_approvals {
        policy.high_risk_approvals = v;
    }
    policy.validate().map_err(AppError::policy)?;
    Ok(policy)
}

fn policy_details(p: &EnvironmentPolicy) -> serde_json::Value {
    json!({
        "approval_required": p.approval_required,
        "approvals_required": p.approvals_required,
        "execute_roles": p.execute_roles.iter().map(Role::as_str).collect::<Vec<_>>(),
        "lock_timeout_ms": p.lock_timeout.as_millis() as u64,
        "statement_timeout_ms": p.statement_timeout.map(|d| d.as_millis() as u64),
        "target_lock_wait_ms": p.target_lock_wait.as_millis() as u64,
        "allow_out_of_order": p.allow_out_of_order,
        "lock_retries": p.lock_retries,
        "lock_retry_max_delay_ms": p.lock_retry_max_delay.as_millis() as u64,
        "lint_block": p.lint_block.as_str(),
        "high_risk_approvals": p.high_risk_approvals,
    })
}

pub async fn create_environment(hub: &Hub, caller: &Caller, input: NewEnvironmentInput) -> AppResult<Environment> {
    may_administer(&caller.actor)?;
    let name = Name::parse(input.name).map_err(AppError::value("name"))?;
    let description = description(input.description)?;
    let required = input.approval_required.unwrap_or(true);
    let base = if required { EnvironmentPolicy::production_default() } else { EnvironmentPolicy::permissive_default() };
    let patch = EnvironmentPatch {
        description: None,
        approval_required: None,
        approvals_required: input.approvals_required,
        execute_roles: input.execute_roles,
        lock_timeout_ms: input.lock_timeout_ms,
        statement_timeout_ms: input.statement_timeout_ms.map(Some),
        target_lock_wait_ms: input.target_lock_wait_ms,
        allow_out_of_order: input.allow_out_of_order,
        lock_retries: input.lock_retries,
        lock_retry_max_delay_ms: input.lock_retry_max_delay_ms,
        lint_block: input.lint_block,
        high_risk_approvals: input.high_risk_approvals,
    };
    let policy = apply_patch(base, &patch)?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let env = storage::environments::create(&mut tx, &NewEnvironment { name, description, policy }).await?;
    record(
        &mut tx,
        hub,
        caller,
        Action::EnvironmentCreate,
        "environment",
        env.id,
        json!({"name": env.name.as_str(), "policy": policy_details(&env.policy)}),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(env)
}

pub async fn update_environment(
    hub: &Hub,
    caller: &Caller,
    id: EnvironmentId,
    patch: EnvironmentPatch,
) -> AppResult<Environment> {
    may_administer(&caller.actor)?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let current = storage::environments::get(&mut tx, id).await?;
    let description = match patch.description.clone() {
        Some(text) => description(Some(text))?,
        None => current.description.clone(),
    };
    let policy = apply_patch(current.policy, &patch)?;
    let env = storage::environments::update(&mut tx, id, &description, &policy).await?;
    record(
        &mut tx,
        hub,
        caller,
        Action::EnvironmentUpdate,
        "environment",
        env.id,
        json!({"name": env.name.as_str(), "before": policy_details(&current.policy), "after": policy_details(&env.policy)}),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(env)
}

pub async fn get_environment(hub: &Hub, id: EnvironmentId) -> AppResult<Environment> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::environments::get(&mut conn, id).await?)
}

pub async fn list_environments(hub: &Hub, page: &PageRequest<Name>) -> AppResult<Page<Environment, Name>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::environments::list(&mut conn, page).await?)
}

// --- targets ---

/// A new target database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewTargetInput {
    pub environment_id: EnvironmentId,
    pub name: String,
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub database: String,
    #[serde(default)]
    pub schema: Option<String>,
    pub username: String,
    #[serde(default)]
    pub tls_mode: Option<TlsMode>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Per-target values for `${name}` placeholders in migrations.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// The password, sealed at rest and never returned.
    #[serde(default)]
    pub password: Option<Password>,
    /// Or where the worker finds it: `env:NAME` or `file:/path`.
    #[serde(default)]
    pub secret_ref: Option<String>,
}

/// Changes to a target's connection settings; absent fields keep their value. The secret has its own
/// use case ([`set_target_secret`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub database: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "explicit_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub schema: Option<Option<String>>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub tls_mode: Option<TlsMode>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub variables: Option<BTreeMap<String, String>>,
    /// A new password, sealed for the new settings. A sealed password is bound to the engine, host, port,
    /// database and user it was entered for: changing any of them without giving it again drops it.
    #[serde(default)]
    pub password: Option<Password>,
}

/// A changed target, and whether its sealed password was dropped because its connection changed.
#[derive(Debug, Clone)]
pub struct UpdatedTarget {
    pub target: Target,
    /// The target had a sealed password entered for the old connection settings, and no new one was given.
    pub secret_dropped: bool,
}

/// A new secret for a target: exactly one of the two.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretInput {
    #[serde(default)]
    pub password: Option<Password>,
    #[serde(default)]
    pub secret_ref: Option<String>,
}

fn text(field: &'static str, value: &str, max: usize) -> AppResult<String> {
    let value = value.trim().to_owned();
    if value.is_empty() || value.chars().count() > max || value.chars().any(|c| c.is_control()) {
        return Err(AppError::invalid(
            field,
            ErrorCode::InvalidValue,
            format!("{field} must be 1 to {max} characters, without control characters"),
        ));
    }
    Ok(value)
}

fn host(value: &str) -> AppResult<String> {
    let value = text("host", value, 253)?;
    if value.chars().any(char::is_whitespace) {
        return Err(AppError::invalid("host", ErrorCode::InvalidValue, "host must not contain spaces"));
    }
    Ok(value)
}

fn port(value: u16) -> AppResult<u16> {
    if value == 0 {
        return Err(AppError::invalid("port", ErrorCode::InvalidValue, "port must be between 1 and 65535"));
    }
    Ok(value)
}

fn string_map(field: &'static str, map: BTreeMap<String, String>) -> AppResult<BTreeMap<String, String>> {
    let size: usize = map.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
    if size > MAX_MAP_BYTES {
        return Err(AppError::invalid(
            field,
            ErrorCode::TooLong,
            format!("{field} must be at most {MAX_MAP_BYTES} bytes"),
        ));
    }
    if map.keys().any(|k| k.is_empty() || k.len() > 128) {
        return Err(AppError::invalid(field, ErrorCode::InvalidValue, format!("{field} keys must be 1 to 128 bytes")));
    }
    Ok(map)
}

/// A secret reference, if well-formed and one the hub's allowlist ([`Hub::with_secret_refs`]) permits.
fn secret_ref(hub: &Hub, value: String) -> AppResult<String> {
    let parsed = SecretRef::parse(&value).map_err(|e| {
        AppError::invalid(
            "secret_ref",
            ErrorCode::InvalidValue,
            format!("secret_ref must be env:NAME (letters, digits, underscores) or file:/absolute/path: {e}"),
        )
    })?;
    hub.secret_refs().check(&parsed).map_err(|refusal| {
        let message = match &refusal {
            Refusal::NotAllowed { .. } => format!(
                "{refusal}; the workers resolve only references that MIGRATE_HUB_SECRET_REFS allows, set it on the hub and the workers (e.g. env:TARGET_*,file:/run/secrets/*)"
            ),
            Refusal::HubSetting(_) | Refusal::SystemPath(_) => refusal.to_string(),
        };
        AppError::invalid("secret_ref", ErrorCode::SecretRefNotAllowed, message)
    })?;
    Ok(value)
}

fn password(value: &Password) -> AppResult<()> {
    let len = value.0.expose_secret().len();
    if len == 0 || len > 1024 {
        return Err(AppError::invalid("password", ErrorCode::InvalidValue, "password must be 1 to 1024 bytes"));
    }
    Ok(())
}

enum NewSecret {
    Password(Password),
    Reference(String),
}

fn one_secret(hub: &Hub, password_in: Option<Password>, reference: Option<String>) -> AppResult<Option<NewSecret>> {
    match (password_in, reference) {
        (Some(_), Some(_)) => {
            Err(AppError::invalid("secret_ref", ErrorCode::TwoSecrets, "give a password or a secret_ref, not both"))
        }
        (Some(p), None) => {
            password(&p)?;
            Ok(Some(NewSecret::Password(p)))
        }
        (None, Some(r)) => Ok(Some(NewSecret::Reference(secret_ref(hub, r)?))),
        (None, None) => Ok(None),
    }
}

fn secret_kind(source: &SecretSource) -> &'static str {
    match source {
        SecretSource::None => "none",
        SecretSource::Sealed { .. } => "sealed",
        SecretSource::Reference { .. } => "reference",
    }
}

fn no_keys() -> AppError {
    AppError::conflict(
        ErrorCode::NoMasterKeys,
        "this hub has no master keys to seal passwords with (set MIGRATE_HUB_MASTER_KEYS); use a secret_ref instead",
    )
}

/// Refuses a target that is the tool database itself, when it can be reached with `password` (the one
/// given with the change, never a stored one) within a few seconds. One that cannot be reached now is
/// checked by the workers before every apply and by every connection check.
async fn refuse_tool_database(hub: &Hub, spec: &TargetSpec, password: Option<&SecretString>) -> AppResult<()> {
    if spec.engine != Engine::Postgres {
        return Ok(());
    }
    let settings = executor::target::ConnectSettings {
        engine: spec.engine,
        host: spec.host.clone(),
        port: spec.port,
        database: spec.database.clone(),
        username: spec.username.clone(),
        password: password.cloned(),
        tls_mode: spec.tls_mode,
        connect_timeout: TOOL_DATABASE_CHECK,
        mysql_sql_mode: None,
    };
    if executor::secrets::reaches_tool_database(&hub.pool, &settings, TOOL_DATABASE_CHECK).await {
        return Err(AppError::invalid(
            "database",
            ErrorCode::ToolDatabase,
            "this target is the hub's own tool database (same server and database): migrations must never run there",
        ));
    }
    Ok(())
}

pub async fn create_target(
    hub: &Hub,
    keys: Option<&auth::secrets::KeyRing>,
    caller: &Caller,
    input: NewTargetInput,
) -> AppResult<Target> {
    may_administer(&caller.actor)?;
    let spec = TargetSpec {
        name: Name::parse(input.name).map_err(AppError::value("name"))?,
        engine: input.engine,
        host: host(&input.host)?,
        port: port(input.port)?,
        database: text("database", &input.database, 128)?,
        schema: input.schema.map(Identifier::parse).transpose().map_err(AppError::value("schema"))?,
        username: text("username", &input.username, 128)?,
        tls_mode: input.tls_mode.unwrap_or(TlsMode::Prefer),
        labels: string_map("labels", input.labels)?,
        variables: string_map("variables", input.variables)?,
    };
    let secret = one_secret(hub, input.password, input.secret_ref)?;
    let password = match &secret {
        Some(NewSecret::Password(p)) => Some(&p.0),
        _ => None,
    };
    refuse_tool_database(hub, &spec, password).await?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    storage::environments::get(&mut tx, input.environment_id).await?;
    let id = TargetId::new();
    let reference = match &secret {
        Some(NewSecret::Reference(r)) => Some(r.as_str()),
        _ => None,
    };
    let mut target = storage::targets::create(&mut tx, id, input.environment_id, &spec, reference).await?;
    if let Some(NewSecret::Password(p)) = &secret {
        let keys = keys.ok_or_else(no_keys)?;
        let sealed = keys.seal(&Binding::of_spec(id, &spec), &p.0)?;
        target = storage::targets::set_sealed_secret(&mut tx, id, &sealed).await?;
    }
    record(
        &mut tx,
        hub,
        caller,
        Action::TargetCreate,
        "target",
        target.id,
        json!({
            "name": target.name.as_str(), "environment_id": target.environment_id, "engine": target.engine.as_str(),
            "host": target.host, "port": target.port, "database": target.database, "secret": secret_kind(&target.secret),
        }),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(target)
}

/// Changes a target's connection settings. A sealed password is bound to the connection it was entered for
/// (`auth::secrets::Binding`): when the engine, host, port, database or user change and no new password is
/// given, it is dropped (and the result and the audit event say so), so it can never be sent to a server it
/// was not entered for.
pub async fn update_target(
    hub: &Hub,
    keys: Option<&auth::secrets::KeyRing>,
    caller: &Caller,
    id: TargetId,
    patch: TargetPatch,
) -> AppResult<UpdatedTarget> {
    may_administer(&caller.actor)?;
    if let Some(p) = &patch.password {
        password(p)?;
    }
    let current = {
        let mut conn = hub.pool.acquire().await.map_err(db)?;
        storage::targets::get(&mut conn, id).await?
    };
    let spec = TargetSpec {
        name: match patch.name {
            Some(n) => Name::parse(n).map_err(AppError::value("name"))?,
            None => current.name.clone(),
        },
        engine: current.engine,
        host: match patch.host {
            Some(h) => host(&h)?,
            None => current.host.clone(),
        },
        port: match patch.port {
            Some(p) => port(p)?,
            None => current.port,
        },
        database: match patch.database {
            Some(d) => text("database", &d, 128)?,
            None => current.database.clone(),
        },
        schema: match patch.schema {
            Some(s) => s.map(Identifier::parse).transpose().map_err(AppError::value("schema"))?,
            None => current.schema.clone(),
        },
        username: match patch.username {
            Some(u) => text("username", &u, 128)?,
            None => current.username.clone(),
        },
        tls_mode: patch.tls_mode.unwrap_or(current.tls_mode),
        labels: match patch.labels {
            Some(l) => string_map("labels", l)?,
            None => current.labels.clone(),
        },
        variables: match patch.variables {
            Some(v) => string_map("variables", v)?,
            None => current.variables.clone(),
        },
    };
    let moved = Binding::of(&current) != Binding::of_spec(id, &spec);
    let new_password = patch.password.as_ref().map(|p| &p.0);
    if moved {
        // Connect with the new password or none: never with the sealed one, which was not entered for this.
        refuse_tool_database(hub, &spec, new_password).await?;
    }
    let mut tx = hub.pool.begin().await.map_err(db)?;
    // The row as it is now, under lock: what was sealed for it is judged against these settings.
    let current = storage::targets::get_for_update(&mut tx, id).await?;
    let moved = Binding::of(&current) != Binding::of_spec(id, &spec);
    let mut target = storage::targets::update(&mut tx, id, &spec).await?;
    let mut secret_dropped = false;
    if let Some(p) = new_password {
        let keys = keys.ok_or_else(no_keys)?;
        let sealed = keys.seal(&Binding::of(&target), p)?;
        target = storage::targets::set_sealed_secret(&mut tx, id, &sealed).await?;
    } else if moved && matches!(current.secret, SecretSource::Sealed { .. }) {
        // A reference is not dropped: it names a place, not a value, and the allowlist decides what it may
        // name; anyone who may change the target may set it again anyway. A sealed password is a value
        // nobody can set again without knowing it, so it goes rather than follow the target elsewhere.
        target = storage::targets::set_secret_ref(&mut tx, id, None).await?;
        secret_dropped = true;
    }
    record(
        &mut tx,
        hub,
        caller,
        Action::TargetUpdate,
        "target",
        target.id,
        json!({
            "name": target.name.as_str(), "engine": target.engine.as_str(), "host": target.host, "port": target.port,
            "database": target.database, "username": target.username, "secret": secret_kind(&target.secret),
            "secret_dropped": secret_dropped,
        }),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(UpdatedTarget { target, secret_dropped })
}

/// Sets or replaces a target's secret. The audit event says which kind of secret it now has, never the value.
pub async fn set_target_secret(
    hub: &Hub,
    keys: Option<&auth::secrets::KeyRing>,
    caller: &Caller,
    id: TargetId,
    input: SecretInput,
) -> AppResult<Target> {
    may_administer(&caller.actor)?;
    let secret = one_secret(hub, input.password, input.secret_ref)?
        .ok_or_else(|| AppError::invalid("password", ErrorCode::Missing, "give a password or a secret_ref"))?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let before = storage::targets::get(&mut tx, id).await?;
    let target = match secret {
        NewSecret::Password(p) => {
            let keys = keys.ok_or_else(no_keys)?;
            let sealed = keys.seal(&Binding::of(&before), &p.0)?;
            storage::targets::set_secret_ref(&mut tx, id, None).await?;
            storage::targets::set_sealed_secret(&mut tx, id, &sealed).await?
        }
        NewSecret::Reference(r) => storage::targets::set_secret_ref(&mut tx, id, Some(&r)).await?,
    };
    record(
        &mut tx,
        hub,
        caller,
        Action::TargetSecretSet,
        "target",
        id,
        json!({"name": target.name.as_str(), "before": secret_kind(&before.secret), "after": secret_kind(&target.secret)}),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(target)
}

/// Removes a target's secret (it then connects without a password).
pub async fn clear_target_secret(hub: &Hub, caller: &Caller, id: TargetId) -> AppResult<Target> {
    may_administer(&caller.actor)?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let before = storage::targets::get(&mut tx, id).await?;
    let target = storage::targets::set_secret_ref(&mut tx, id, None).await?;
    record(
        &mut tx,
        hub,
        caller,
        Action::TargetSecretClear,
        "target",
        id,
        json!({"name": target.name.as_str(), "before": secret_kind(&before.secret)}),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(target)
}

pub async fn delete_target(hub: &Hub, caller: &Caller, id: TargetId) -> AppResult<()> {
    may_administer(&caller.actor)?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let target = storage::targets::get(&mut tx, id).await?;
    storage::targets::delete(&mut tx, id).await?;
    record(&mut tx, hub, caller, Action::TargetDelete, "target", id, json!({"name": target.name.as_str()})).await?;
    tx.commit().await.map_err(db)?;
    Ok(())
}

pub async fn get_target(hub: &Hub, id: TargetId) -> AppResult<Target> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::targets::get(&mut conn, id).await?)
}

/// Per migration of any project, where the hub's runs left it on the target (the target page's per-database
/// view; the target's own history tables are [`target_history`]'s).
pub async fn applied_on_target(hub: &Hub, id: TargetId) -> AppResult<Vec<domain::model::MigrationOnTarget>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::run_items::applied_on_target(&mut conn, id).await?)
}

pub async fn list_targets(
    hub: &Hub,
    environment: EnvironmentId,
    search: Option<&str>,
    page: &PageRequest<Name>,
) -> AppResult<Page<Target, Name>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    storage::environments::get(&mut conn, environment).await?;
    Ok(storage::targets::list(&mut conn, environment, search, page).await?)
}

/// How long a connection check may take to connect, and then to answer its query.
const TEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What a connection check found: the server's version, or why it could not connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionTest {
    /// Connected and answered; the server's version string.
    Ok { server_version: String },
    /// Why not, in words that carry no secret; `stage` is `secret`, `connect`, `tool_database` or `query`.
    Failed { stage: &'static str, message: String },
}

/// Connects to a target the way a worker does (its password resolved and opened in memory, the executor's
/// connection code), runs a trivial query with a short timeout and says what happened. Admins only;
/// audited as `target.test_connection` with the outcome, never the password or the message.
///
/// A password given as a reference (`env:`/`file:`) is the workers' to read, not the server's: the
/// server would otherwise read its own environment or any file it can open and send it to a host an
/// admin chose, so such targets are reported as not testable here.
pub async fn test_connection(
    hub: &Hub,
    caller: &Caller,
    keys: Option<&auth::secrets::KeyRing>,
    id: TargetId,
) -> AppResult<ConnectionTest> {
    may_administer(&caller.actor)?;
    let target = {
        let mut conn = hub.pool.acquire().await.map_err(db)?;
        storage::targets::get(&mut conn, id).await?
    };
    let outcome = probe(hub, keys, &target).await;
    let details = match &outcome {
        ConnectionTest::Ok { .. } => json!({"name": target.name.as_str(), "ok": true}),
        ConnectionTest::Failed { stage, .. } => json!({"name": target.name.as_str(), "ok": false, "stage": stage}),
    };
    let mut tx = hub.pool.begin().await.map_err(db)?;
    record(&mut tx, hub, caller, Action::TargetTestConnection, "target", id, details).await?;
    tx.commit().await.map_err(db)?;
    Ok(outcome)
}

async fn probe(hub: &Hub, keys: Option<&auth::secrets::KeyRing>, target: &Target) -> ConnectionTest {
    match ask(hub, keys, target, async |conn: &mut TargetConnection| conn.server_version().await).await {
        Ok(server_version) => ConnectionTest::Ok { server_version },
        Err((stage, message)) => ConnectionTest::Failed { stage, message },
    }
}

/// Connects to `target` as a worker would (its password resolved and opened in memory, the executor's
/// connection code), makes sure it is not the tool database, and runs `read` with a short timeout. On
/// failure, at which stage (`secret`, `tool_database`, `connect`, `query`) and why, the password never in
/// the message.
pub(crate) async fn ask<T>(
    hub: &Hub,
    keys: Option<&auth::secrets::KeyRing>,
    target: &Target,
    read: impl AsyncFnOnce(&mut TargetConnection) -> Result<T, TargetError>,
) -> Result<T, (&'static str, String)> {
    if let SecretSource::Reference { .. } = target.secret {
        return Err((
            "secret",
            "the password is a reference (env:/file:) that only the workers read; the server does not connect with \
             it"
            .to_owned(),
        ));
    }
    let password = match keys {
        Some(ring) => executor::secrets::resolve_password(&hub.pool, ring, target).await,
        None => executor::secrets::resolve_password(&hub.pool, &executor::secrets::NoMasterKey, target).await,
    };
    let password = password.map_err(|message| ("secret", message.replace("this worker", "this hub")))?;
    let settings = executor::target::ConnectSettings::for_target(target, password, TEST_TIMEOUT);
    let result = executor::secrets::probe_with(&hub.pool, &settings, TEST_TIMEOUT, read).await;
    // The driver's messages do not carry the password; this makes sure of it.
    let scrub = |message: String| match &settings.password {
        Some(p) if !p.expose_secret().is_empty() => message.replace(p.expose_secret(), "[redacted]"),
        _ => message,
    };
    use executor::secrets::ProbeError;
    match result {
        Ok(answer) => Ok(answer),
        Err(ProbeError::ToolDatabase(message)) => Err(("tool_database", message)),
        Err(ProbeError::Target(e @ (TargetError::ConnectTimeout { .. } | TargetError::Connect { .. }))) => {
            Err(("connect", scrub(e.to_string())))
        }
        Err(ProbeError::Target(e)) => Err(("query", scrub(e.to_string()))),
    }
}

/// One history table of the hub's projects on a target, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHistoryTable {
    /// `schema.table` or `table`.
    pub table: String,
    /// `None`: the table does not exist on the target.
    pub rows: Option<Vec<TargetHistoryRow>>,
}

/// A history row, with the project it belongs to when the hub knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHistoryRow {
    pub project: Option<(ProjectId, Name)>,
    pub row: ShownRow,
}

impl TargetHistoryRow {
    /// Whether the row needs recovery (a migration that stopped part-way).
    pub fn dirty(&self) -> bool {
        self.row.status != "applied"
    }
}

/// What reading a target's history found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHistory {
    Read {
        tables: Vec<TargetHistoryTable>,
        /// Who holds the hub's lock on the target now (a worker applying, or a stuck session), as far as the
        /// server tells; `None`: nobody.
        lock_holder: Option<String>,
        /// The hub's projects, to request an adoption or a baseline of this target for one of them.
        projects: Vec<(ProjectId, Name)>,
    },
    Failed {
        stage: &'static str,
        message: String,
    },
}

/// Reads every history table of the hub's projects on target `id` (reads only; admins only; audited as
/// `target.read_history` with the outcome and the number of dirty rows, never the rows): what was applied
/// there, when, by which run, and any migration that stopped part-way, with its statement and error.
pub async fn target_history(
    hub: &Hub,
    caller: &Caller,
    keys: Option<&auth::secrets::KeyRing>,
    id: TargetId,
) -> AppResult<TargetHistory> {
    may_administer(&caller.actor)?;
    let (target, projects) = {
        let mut conn = hub.pool.acquire().await.map_err(db)?;
        let target = storage::targets::get(&mut conn, id).await?;
        let mut projects = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let found = storage::projects::list(&mut conn, &page).await?;
            projects.extend(found.items);
            match found.next {
                Some(next) => page = PageRequest::after(next, 500),
                None => break,
            }
        }
        (target, projects)
    };
    let mut tables: Vec<Identifier> = projects.iter().map(|p| p.history_table.clone()).collect();
    tables.sort();
    tables.dedup();
    let schema = target.schema.clone();
    let lock = executor::queue::target_lock_name(target.id);
    let read = ask(hub, keys, &target, async |conn: &mut TargetConnection| {
        let mut found = Vec::with_capacity(tables.len());
        for table in &tables {
            let history = executor::history::HistoryTable {
                schema: schema.clone(),
                table: table.clone(),
                project: String::new(),
            };
            found.push((table.clone(), executor::history::show(conn, &history).await?));
        }
        Ok((found, conn.who_holds_lock(&lock).await))
    })
    .await;
    let outcome = match read {
        Ok((found, lock_holder)) => TargetHistory::Read {
            lock_holder,
            projects: projects.iter().map(|p| (p.id, p.name.clone())).collect(),
            tables: found
                .into_iter()
                .map(|(table, rows)| TargetHistoryTable {
                    table: match &target.schema {
                        Some(schema) => format!("{}.{}", schema.as_str(), table.as_str()),
                        None => table.as_str().to_owned(),
                    },
                    rows: rows.map(|rows| {
                        rows.into_iter()
                            .map(|row| TargetHistoryRow {
                                project: projects
                                    .iter()
                                    .find(|p| p.id.to_string() == row.project)
                                    .map(|p| (p.id, p.name.clone())),
                                row,
                            })
                            .collect()
                    }),
                })
                .collect(),
        },
        Err((stage, message)) => TargetHistory::Failed { stage, message },
    };
    let details = match &outcome {
        TargetHistory::Read { tables, .. } => {
            let rows = tables.iter().flat_map(|t| t.rows.iter().flatten());
            let dirty = rows.filter(|r| r.dirty()).count();
            json!({"name": target.name.as_str(), "ok": true, "dirty": dirty})
        }
        TargetHistory::Failed { stage, .. } => json!({"name": target.name.as_str(), "ok": false, "stage": stage}),
    };
    let mut tx = hub.pool.begin().await.map_err(db)?;
    record(&mut tx, hub, caller, Action::TargetReadHistory, "target", id, details).await?;
    tx.commit().await.map_err(db)?;
    Ok(outcome)
}

// --- db sets ---

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewDbSetInput {
    pub environment_id: EnvironmentId,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Initial members (targets of the same environment).
    #[serde(default)]
    pub target_ids: Vec<TargetId>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DbSetPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Targets to add to and remove from a set, in one change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MembershipChange {
    #[serde(default)]
    pub add: Vec<TargetId>,
    #[serde(default)]
    pub remove: Vec<TargetId>,
}

/// The result of a membership change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipResult {
    pub added: u64,
    pub removed: u64,
    pub members: u64,
}

fn member_count(ids: &[TargetId], field: &'static str) -> AppResult<()> {
    if ids.len() > MAX_MEMBERS_PER_CHANGE {
        return Err(AppError::invalid(
            field,
            ErrorCode::TooMany,
            format!("at most {MAX_MEMBERS_PER_CHANGE} targets per change"),
        ));
    }
    Ok(())
}

pub async fn create_db_set(hub: &Hub, caller: &Caller, input: NewDbSetInput) -> AppResult<DbSet> {
    may_administer(&caller.actor)?;
    let name = Name::parse(input.name).map_err(AppError::value("name"))?;
    let description = description(input.description)?;
    member_count(&input.target_ids, "target_ids")?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    storage::environments::get(&mut tx, input.environment_id).await?;
    let set = storage::db_sets::create(&mut tx, input.environment_id, &name, &description).await?;
    let added = storage::db_sets::add_members(&mut tx, set.id, &input.target_ids).await.map_err(member_error)?;
    record(
        &mut tx,
        hub,
        caller,
        Action::DbSetCreate,
        "db_set",
        set.id,
        json!({"name": set.name.as_str(), "environment_id": set.environment_id, "members": added}),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(set)
}

/// A member that does not exist or belongs to another environment is the caller's mistake, not a conflict.
fn member_error(e: storage::StorageError) -> AppError {
    match &e {
        storage::StorageError::Reference { constraint } if constraint == "db_set_members_target_fkey" => {
            AppError::invalid(
                "target_ids",
                ErrorCode::UnknownTarget,
                "every target must exist and belong to the db set's environment",
            )
        }
        _ => e.into(),
    }
}

pub async fn update_db_set(hub: &Hub, caller: &Caller, id: DbSetId, patch: DbSetPatch) -> AppResult<DbSet> {
    may_administer(&caller.actor)?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let current = storage::db_sets::get(&mut tx, id).await?;
    let name = match patch.name {
        Some(n) => Name::parse(n).map_err(AppError::value("name"))?,
        None => current.name.clone(),
    };
    let description = match patch.description {
        Some(d) => description(Some(d))?,
        None => current.description.clone(),
    };
    let set = storage::db_sets::update(&mut tx, id, &name, &description).await?;
    record(
        &mut tx,
        hub,
        caller,
        Action::DbSetUpdate,
        "db_set",
        id,
        json!({"name": set.name.as_str(), "before": current.name.as_str()}),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(set)
}

pub async fn change_members(
    hub: &Hub,
    caller: &Caller,
    id: DbSetId,
    change: MembershipChange,
) -> AppResult<MembershipResult> {
    may_administer(&caller.actor)?;
    member_count(&change.add, "add")?;
    member_count(&change.remove, "remove")?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let set = storage::db_sets::get(&mut tx, id).await?;
    let mut add = change.add.clone();
    add.sort_unstable();
    add.dedup();
    let added = storage::db_sets::add_members(&mut tx, id, &add).await.map_err(member_error)?;
    let removed = storage::db_sets::remove_members(&mut tx, id, &change.remove).await?;
    let members = storage::db_sets::count_members(&mut tx, id).await?;
    record(
        &mut tx,
        hub,
        caller,
        Action::DbSetMembers,
        "db_set",
        id,
        json!({"name": set.name.as_str(), "added": added, "removed": removed, "members": members}),
    )
    .await?;
    tx.commit().await.map_err(db)?;
    Ok(MembershipResult { added, removed, members })
}

pub async fn get_db_set(hub: &Hub, id: DbSetId) -> AppResult<(DbSet, u64)> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    let set = storage::db_sets::get(&mut conn, id).await?;
    let members = storage::db_sets::count_members(&mut conn, id).await?;
    Ok((set, members))
}

pub async fn list_db_sets(
    hub: &Hub,
    environment: Option<EnvironmentId>,
    page: &PageRequest<Name>,
) -> AppResult<Page<DbSet, Name>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::db_sets::list(&mut conn, environment, page).await?)
}

pub async fn list_members(
    hub: &Hub,
    id: DbSetId,
    search: Option<&str>,
    page: &PageRequest<Name>,
) -> AppResult<Page<Target, Name>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    storage::db_sets::get(&mut conn, id).await?;
    Ok(storage::db_sets::list_members(&mut conn, id, search, page).await?)
}

/// Targets of the set's environment that are not members of it (to choose members to add).
pub async fn list_non_members(
    hub: &Hub,
    id: DbSetId,
    search: Option<&str>,
    page: &PageRequest<Name>,
) -> AppResult<Page<Target, Name>> {
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    storage::db_sets::get(&mut conn, id).await?;
    Ok(storage::db_sets::list_non_members(&mut conn, id, search, page).await?)
}
