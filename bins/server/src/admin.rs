//! Operator commands on accounts: `create-admin` and `set-password`.

use std::io::{Read, Write};

use anyhow::Context;
use chrono::{Duration, Utc};
use domain::enums::{ActorKind, Role, TokenScope};
use domain::model::{AuditActor, NewUser};
use domain::values::{DisplayName, Email};
use secrecy::{ExposeSecret, SecretString};

use crate::{ServerSecretArgs, cli};

fn system(label: &str) -> AuditActor {
    AuditActor { kind: ActorKind::System, user_id: None, label: label.to_owned() }
}

fn event(
    label: &str,
    action: audit::Action,
    object_type: &str,
    object_id: String,
    details: serde_json::Value,
) -> audit::Event {
    audit::Event {
        actor: system(label),
        action,
        object_type: object_type.into(),
        object_id: Some(object_id),
        details,
        ip: None,
        user_agent: None,
    }
}

/// Creates or promotes the admin and prints a new token for them as the last line.
pub async fn create_admin(
    db: &cli::DatabaseArgs,
    secret: &ServerSecretArgs,
    email: &str,
    token_days: u32,
) -> anyhow::Result<()> {
    const WHO: &str = "migrate-hub-server create-admin";
    let secret = secret.load()?;
    secret.audit_chain_key().install().context("the audit chain key")?;
    let key = secret.token_key();
    let email = Email::parse(email.trim().to_lowercase()).context("--email")?;
    let pool = storage::pool::connect_lazy(db.connect_options()?, &db.pool_settings("migrate-hub-server"));
    cli::require_current_schema(&pool).await?;
    let mut tx = pool.begin().await.context("cannot reach the tool database")?;
    let user = match storage::users::find_by_email(&mut tx, &email).await? {
        Some(user) => {
            let mut user = user;
            if user.role != Role::Admin {
                user = storage::users::set_role(&mut tx, user.id, Role::Admin).await?;
            }
            if user.disabled {
                user = storage::users::set_disabled(&mut tx, user.id, false).await?;
            }
            let details = serde_json::json!({ "role": "admin", "enabled": true });
            audit::record(&mut tx, &event(WHO, audit::Action::UserPromoted, "user", user.id.to_string(), details))
                .await?;
            user
        }
        None => {
            let local = email.as_str().split('@').next().unwrap_or_default().to_owned();
            let new = NewUser {
                email: email.clone(),
                display_name: DisplayName::parse(local).context("display name from the email")?,
                role: Role::Admin,
                oidc_identity: None,
                password_hash: None,
            };
            let user = storage::users::create(&mut tx, &new).await?;
            let details = serde_json::json!({ "email": user.email.as_str(), "role": "admin" });
            audit::record(&mut tx, &event(WHO, audit::Action::UserCreated, "user", user.id.to_string(), details))
                .await?;
            user
        }
    };
    let expires_at = Utc::now() + Duration::days(i64::from(token_days));
    let minted =
        auth::tokens::mint(&key, user.id, user.id, "create-admin".into(), TokenScope::Write, Some(expires_at))?;
    let token = storage::tokens::create(&mut tx, &minted.new).await?;
    let details =
        serde_json::json!({ "owner": user.id, "name": token.name, "scope": "write", "expires_at": expires_at });
    audit::record(&mut tx, &event(WHO, audit::Action::TokenCreated, "api_token", token.id.to_string(), details))
        .await?;
    tx.commit().await?;
    tracing::info!(user.id = %user.id, token.id = %token.id, "admin ready; the API token follows on standard output");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", minted.token.expose_secret())?;
    Ok(())
}

/// Sets a user's password from standard input (one line; the trailing newline is not part of it).
pub async fn set_password(
    db: &cli::DatabaseArgs,
    secret: &ServerSecretArgs,
    email: &str,
    clear: bool,
) -> anyhow::Result<()> {
    secret.install_audit_chain_key()?;
    let email = Email::parse(email.trim().to_lowercase()).context("--email")?;
    let hash = if clear {
        None
    } else {
        let mut text = String::new();
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut text)
            .context("cannot read the password from standard input")?;
        let password = SecretString::from(text.trim_end_matches(['\n', '\r']).to_owned());
        Some(auth::password::hash(password).await?)
    };
    let pool = storage::pool::connect_lazy(db.connect_options()?, &db.pool_settings("migrate-hub-server"));
    cli::require_current_schema(&pool).await?;
    let mut tx = pool.begin().await.context("cannot reach the tool database")?;
    let user = storage::users::find_by_email(&mut tx, &email).await?.context("no user with this email")?;
    storage::users::set_password_hash(&mut tx, user.id, hash.as_deref()).await?;
    let action = if clear { audit::Action::UserPasswordCleared } else { audit::Action::UserPasswordSet };
    audit::record(
        &mut tx,
        &event("migrate-hub-server set-password", action, "user", user.id.to_string(), serde_json::json!({})),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user.id = %user.id, action = %action, "done");
    Ok(())
}
