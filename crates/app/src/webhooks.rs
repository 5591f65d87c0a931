//! Webhooks of environments (issue 20): admins add one (a URL, its events, `json` or `slack`), get its
//! signing secret once, send a test, read the delivery log, delete it. Events are queued in the transaction
//! of the change they report ([`notify`]); workers deliver them (`executor::webhooks`).
//!
//! Outbound URLs are `http`/`https` only, without credentials, never the hub's own address (its public URL
//! or the socket it listens on) nor a link-local address (cloud metadata); workers follow no redirect. A
//! URL may carry a token (Slack's do), so lists and the audit log show its origin only.

use std::net::IpAddr;

use domain::ErrorCode;
use domain::ids::{EnvironmentId, RunId};
use domain::policy::may_administer;
use domain::webhooks::{Delivery, Webhook, WebhookEvent, WebhookFormat};
use ring::rand::SecureRandom;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use storage::PgTransaction;
use uuid::Uuid;

use crate::error::db;
use crate::{AppError, AppResult, Caller, Hub, record};
use audit::Action;

/// A new webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookInput {
    /// `http(s)://…`; never the hub's own address.
    pub url: String,
    /// At least one of `approval.requested`, `run.started`, `run.succeeded`, `run.failed`, `run.halted`,
    /// `drift.detected`.
    pub events: Vec<WebhookEvent>,
    /// `json` (default) or `slack`.
    #[serde(default)]
    pub format: Option<WebhookFormat>,
}

/// A webhook just made, with its signing secret: shown this once, never again.
#[derive(Debug, Clone)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: SecretString,
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::invalid("url", ErrorCode::RefusedUrl, message)
}

/// `scheme://host[:port]` of a URL, for lists and the audit log (a path may hold a token).
pub fn origin_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}/…", u.scheme()),
            (Some(host), None) => format!("{}://{host}/…", u.scheme()),
            _ => "(unreadable URL)".to_owned(),
        },
        Err(_) => "(unreadable URL)".to_owned(),
    }
}

/// Checks an outbound URL (see the module doc); the URL as it will be stored.
fn check_url(hub: &Hub, text: &str) -> AppResult<String> {
    let url = url::Url::parse(text.trim()).map_err(|e| invalid(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("only http and https URLs receive webhooks"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("a webhook URL carries no user name or password; sign with the webhook's secret"));
    }
    let Some(host) = url.host_str() else { return Err(invalid("the URL has no host")) };
    let port = url.port_or_known_default().unwrap_or(0);
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let own = || invalid("a webhook is never sent to the hub itself");
    if let Some(public) = hub.public_url().and_then(|p| url::Url::parse(p).ok())
        && public.host_str().map(str::to_ascii_lowercase).as_deref() == Some(host.as_str())
        && public.port_or_known_default() == Some(port)
    {
        return Err(own());
    }
    let ip: Option<IpAddr> = if host == "localhost" { Some(IpAddr::from([127, 0, 0, 1])) } else { host.parse().ok() };
    if let Some(ip) = ip {
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        if link_local {
            return Err(invalid("link-local addresses (e.g. cloud metadata) never receive webhooks"));
        }
        if let Some(bind) = hub.bind()
            && bind.port() == port
            && (bind.ip() == ip || bind.ip().is_unspecified() || (ip.is_loopback() && bind.ip().is_loopback()))
        {
            return Err(own());
        }
    }
    Ok(url.to_string())
}

/// A signing secret: `whsec_` and 256 random bits in hex.
fn new_secret() -> AppResult<SecretString> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AppError::Internal("no randomness for a webhook secret".into()))?;
    Ok(SecretString::from(format!("whsec_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())))
}

/// Adds a webhook to an environment (admins; audited without the URL's path). Its secret is sealed with
/// the master keys, so a hub without them refuses.
pub async fn create_webhook(
    hub: &Hub,
    caller: &Caller,
    keys: Option<&auth::secrets::KeyRing>,
    environment: EnvironmentId,
    input: WebhookInput,
) -> AppResult<CreatedWebhook> {
    may_administer(&caller.actor)?;
    let url = check_url(hub, &input.url)?;
    let mut events = input.events.clone();
    events.sort_by_key(|e| e.as_str());
    events.dedup();
    if events.is_empty() {
        return Err(AppError::invalid("events", ErrorCode::Missing, "choose at least one event"));
    }
    let Some(keys) = keys else {
        return Err(AppError::conflict(
            ErrorCode::NoMasterKeys,
            "webhook secrets are sealed with the master keys, and this hub has none (MIGRATE_HUB_MASTER_KEYS)",
        ));
    };
    let id = Uuid::now_v7();
    let secret = new_secret()?;
    let sealed = keys.seal_row("webhooks", &id, "secret", &secret).map_err(|e| AppError::Internal(Box::new(e)))?;
    let format = input.format.unwrap_or(WebhookFormat::Json);
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let env = storage::environments::get(&mut tx, environment).await?;
    let new = storage::webhooks::NewWebhook {
        id,
        environment_id: environment,
        url: &url,
        events: &events,
        format,
        secret: &sealed,
        created_by: caller.actor.user_id,
    };
    let webhook = storage::webhooks::create(&mut tx, &new).await?;
    let details = json!({
        "environment": env.name.as_str(), "url": origin_of(&url),
        "events": events.iter().map(|e| e.as_str()).collect::<Vec<_>>(), "format": format.as_str(),
    });
    record(&mut tx, hub, caller, Action::WebhookCreate, "webhook", id, details).await?;
    tx.commit().await.map_err(db)?;
    Ok(CreatedWebhook { webhook, secret })
}

/// The environment's webhooks (admins: a URL may hold a token).
pub async fn list_webhooks(hub: &Hub, caller: &Caller, environment: EnvironmentId) -> AppResult<Vec<Webhook>> {
    may_administer(&caller.actor)?;
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    storage::environments::get(&mut conn, environment).await?;
    Ok(storage::webhooks::list(&mut conn, environment).await?)
}

/// The newest deliveries of the environment's webhooks (admins).
pub async fn deliveries(
    hub: &Hub,
    caller: &Caller,
    environment: EnvironmentId,
    limit: u32,
) -> AppResult<Vec<Delivery>> {
    may_administer(&caller.actor)?;
    let mut conn = hub.pool.acquire().await.map_err(db)?;
    Ok(storage::webhooks::deliveries(&mut conn, environment, limit.clamp(1, 200)).await?)
}

/// Deletes a webhook and its delivery log (admins; audited).
pub async fn delete_webhook(hub: &Hub, caller: &Caller, id: Uuid) -> AppResult<Webhook> {
    may_administer(&caller.actor)?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let webhook = storage::webhooks::get(&mut tx, id).await?;
    storage::webhooks::delete(&mut tx, id).await?;
    let details = json!({"url": origin_of(&webhook.url), "environment_id": webhook.environment_id});
    record(&mut tx, hub, caller, Action::WebhookDelete, "webhook", id, details).await?;
    tx.commit().await.map_err(db)?;
    Ok(webhook)
}

/// Queues a test delivery (`webhook.test`) to a webhook (admins; audited); a worker sends it.
pub async fn test_webhook(hub: &Hub, caller: &Caller, id: Uuid) -> AppResult<Webhook> {
    may_administer(&caller.actor)?;
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let webhook = storage::webhooks::get(&mut tx, id).await?;
    let delivery = storage::webhooks::enqueue_test(&mut tx, id, hub.public_url()).await?;
    let details = json!({"url": origin_of(&webhook.url), "delivery": delivery});
    record(&mut tx, hub, caller, Action::WebhookTest, "webhook", id, details).await?;
    tx.commit().await.map_err(db)?;
    Ok(webhook)
}

/// Queues `event` about `run` for its environment's webhooks, in the caller's transaction.
pub(crate) async fn notify(tx: &mut PgTransaction<'_>, hub: &Hub, run: RunId, event: WebhookEvent) -> AppResult<()> {
    storage::webhooks::enqueue_run(tx, run, event, hub.public_url()).await?;
    Ok(())
}
