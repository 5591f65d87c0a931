//! Operator commands on accounts and secrets: `create-admin`, `set-password` and `rotate-key`. Each reads
//! its arguments and calls one `app::operator` use case, which runs in one transaction with its audit event.

use std::io::{Read, Write};

use anyhow::Context;
use domain::values::Email;
use secrecy::{ExposeSecret, SecretString};

use crate::{ServerSecretArgs, cli, operator_hub};

/// Creates or promotes the admin and prints a new token for them as the last line.
pub async fn create_admin(
    db: &cli::DatabaseArgs,
    secret: &ServerSecretArgs,
    email: &str,
    token_days: u32,
) -> anyhow::Result<()> {
    let secret = secret.load()?;
    let key = secret.token_key();
    let email = Email::parse(email.trim().to_lowercase()).context("--email")?;
    let hub = operator_hub(db, Some(&secret), "migrate-hub-server").await?;
    let ready = app::operator::create_admin(&hub, "migrate-hub-server create-admin", &key, email, token_days).await?;
    tracing::info!(
        user.id = %ready.user.id,
        token.id = %ready.token.token.id,
        "admin ready; the API token follows on standard output"
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", ready.token.value.expose_secret())?;
    Ok(())
}

/// Sets a user's password from standard input (one line; the trailing newline is not part of it).
pub async fn set_password(
    db: &cli::DatabaseArgs,
    secret: &ServerSecretArgs,
    email: &str,
    clear: bool,
) -> anyhow::Result<()> {
    let secret = secret.load_optional()?;
    let email = Email::parse(email.trim().to_lowercase()).context("--email")?;
    let password = if clear {
        None
    } else {
        let mut text = String::new();
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut text)
            .context("cannot read the password from standard input")?;
        Some(SecretString::from(text.trim_end_matches(['\n', '\r']).to_owned()))
    };
    let hub = operator_hub(db, secret.as_ref(), "migrate-hub-server").await?;
    let (user, action) =
        match app::operator::set_password(&hub, "migrate-hub-server set-password", &email, password).await {
            Err(app::operator::OperatorError::App(app::AppError::NotFound { .. })) => {
                anyhow::bail!("no user with this email")
            }
            other => other?,
        };
    tracing::info!(user.id = %user.id, action = %action, "done");
    Ok(())
}

/// Reseals every target password under the current (last) master key.
pub async fn rotate_key(
    db: &cli::DatabaseArgs,
    keys: &cli::MasterKeyArgs,
    secret: &ServerSecretArgs,
) -> anyhow::Result<()> {
    let secret = secret.load_optional()?;
    let ring =
        keys.key_ring()?.context("no master keys: set MIGRATE_HUB_MASTER_KEYS or MIGRATE_HUB_MASTER_KEY_FILE")?;
    let hub = operator_hub(db, secret.as_ref(), "migrate-hub-server").await?;
    let rotation = app::operator::rotate_keys(&hub, "migrate-hub-server rotate-key", &ring).await?;
    tracing::info!(
        key.id = ring.current_id(),
        resealed = rotation.resealed,
        changed_meanwhile = rotation.raced,
        "every target secret is sealed under the current key"
    );
    Ok(())
}
