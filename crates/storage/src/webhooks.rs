//! Webhooks and their outbox (`webhook_deliveries`): events are queued in the transaction of the change
//! they report ([`enqueue_run`]); workers take due deliveries ([`claim`]) and record each attempt.

use chrono::{DateTime, Utc};
use domain::ids::{EnvironmentId, RunId, UserId};
use domain::model::SealedSecret;
use domain::webhooks::{Delivery, Webhook, WebhookEvent, WebhookFormat};
use serde_json::Value;
use uuid::Uuid;

use crate::convert::{parse, sealed, unsigned};
use crate::{PgConnection, PgTransaction, StorageError, StorageResult};

struct Row {
    id: Uuid,
    environment_id: Uuid,
    url: String,
    events: Vec<String>,
    format: String,
    created_by: Uuid,
    created_at: DateTime<Utc>,
}

impl TryFrom<Row> for Webhook {
    type Error = StorageError;

    fn try_from(r: Row) -> Result<Self, Self::Error> {
        Ok(Webhook {
            id: r.id,
            environment_id: EnvironmentId::from_uuid(r.environment_id),
            url: r.url,
            events: r.events.iter().map(|e| parse("webhooks.events", e)).collect::<Result<_, _>>()?,
            format: parse("webhooks.format", &r.format)?,
            created_by: UserId::from_uuid(r.created_by),
            created_at: r.created_at,
        })
    }
}

/// A new webhook: where, what, how, and its sealed secret.
#[derive(Debug, Clone)]
pub struct NewWebhook<'a> {
    pub id: Uuid,
    pub environment_id: EnvironmentId,
    pub url: &'a str,
    pub events: &'a [WebhookEvent],
    pub format: WebhookFormat,
    pub secret: &'a SealedSecret,
    pub created_by: UserId,
}

pub async fn create(tx: &mut PgTransaction<'_>, new: &NewWebhook<'_>) -> StorageResult<Webhook> {
    let events: Vec<&str> = new.events.iter().map(|e| e.as_str()).collect();
    sqlx::query_file_as!(
        Row,
        "../../sql/webhooks/create.sql",
        new.id,
        new.environment_id.as_uuid(),
        new.url,
        &events as &[&str],
        new.format.as_str(),
        &new.secret.ciphertext,
        &new.secret.nonce[..],
        new.secret.key_id,
        new.created_by.as_uuid(),
    )
    .fetch_one(&mut **tx)
    .await?
    .try_into()
}

pub async fn list(conn: &mut PgConnection, environment: EnvironmentId) -> StorageResult<Vec<Webhook>> {
    let rows = sqlx::query_file_as!(Row, "../../sql/webhooks/list.sql", environment.as_uuid()).fetch_all(conn).await?;
    rows.into_iter().map(TryInto::try_into).collect()
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> StorageResult<Webhook> {
    sqlx::query_file_as!(Row, "../../sql/webhooks/get.sql", id)
        .fetch_optional(conn)
        .await?
        .ok_or(StorageError::NotFound("webhook"))?
        .try_into()
}

pub async fn delete(tx: &mut PgTransaction<'_>, id: Uuid) -> StorageResult<()> {
    sqlx::query_file!("../../sql/webhooks/delete.sql", id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StorageError::NotFound("webhook"))?;
    Ok(())
}

/// Queues `event` about `run` for every webhook of its environment that takes it, in the caller's
/// transaction; `hub_url`: the hub's address for the payload's link. How many were queued.
pub async fn enqueue_run(
    conn: &mut PgConnection,
    run: RunId,
    event: WebhookEvent,
    hub_url: Option<&str>,
) -> StorageResult<u64> {
    let row = sqlx::query_file!("../../sql/webhooks/enqueue_run.sql", run.as_uuid(), event.as_str(), hub_url)
        .fetch_one(conn)
        .await?;
    Ok(u64::try_from(row.queued).unwrap_or(0))
}

/// Queues `event` about `target` (with `details` merged into the payload) for the webhooks of its
/// environment that take it. How many were queued.
pub async fn enqueue_target(
    conn: &mut PgConnection,
    target: domain::ids::TargetId,
    event: WebhookEvent,
    details: &Value,
    hub_url: Option<&str>,
) -> StorageResult<u64> {
    let row =
        sqlx::query_file!("../../sql/webhooks/enqueue_target.sql", target.as_uuid(), event.as_str(), details, hub_url)
            .fetch_one(conn)
            .await?;
    Ok(u64::try_from(row.queued).unwrap_or(0))
}

/// Queues a test delivery to `webhook`.
pub async fn enqueue_test(tx: &mut PgTransaction<'_>, webhook: Uuid, hub_url: Option<&str>) -> StorageResult<Uuid> {
    let row = sqlx::query_file!("../../sql/webhooks/enqueue_test.sql", webhook, hub_url)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StorageError::NotFound("webhook"))?;
    Ok(row.id)
}

/// A delivery a worker took: what sending needs.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event: String,
    pub payload: Value,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    pub url: String,
    pub format: WebhookFormat,
    pub secret: SealedSecret,
}

/// Takes up to `max` deliveries due at `now`, each held for `hold`.
pub async fn claim(
    conn: &mut PgConnection,
    max: u32,
    now: DateTime<Utc>,
    hold: std::time::Duration,
) -> StorageResult<Vec<Due>> {
    let rows = sqlx::query_file!("../../sql/webhooks/claim.sql", i64::from(max), now, hold.as_secs_f64())
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Due {
                id: r.id,
                webhook_id: r.webhook_id,
                event: r.event,
                payload: r.payload,
                attempt: unsigned("webhook_deliveries.attempts", r.attempts)?,
                url: r.url,
                format: parse("webhooks.format", &r.format)?,
                secret: sealed("webhooks", r.secret_key_id, &r.secret_nonce, r.secret_ciphertext)?,
            })
        })
        .collect()
}

/// Webhooks whose secret is sealed under another key than `key_id`, with the sealed secret.
pub async fn sealed_not_under(conn: &mut PgConnection, key_id: &str) -> StorageResult<Vec<(Uuid, SealedSecret)>> {
    let rows = sqlx::query_file!("../../sql/webhooks/sealed_not_under.sql", key_id).fetch_all(conn).await?;
    rows.into_iter()
        .map(|r| Ok((r.id, sealed("webhooks", r.secret_key_id, &r.secret_nonce, r.secret_ciphertext)?)))
        .collect()
}

/// Replaces `webhook`'s sealed secret `old` with `new`; `false` when it changed meanwhile.
pub async fn reseal(
    conn: &mut PgConnection,
    webhook: Uuid,
    old: &SealedSecret,
    new: &SealedSecret,
) -> StorageResult<bool> {
    let row = sqlx::query_file!(
        "../../sql/webhooks/reseal.sql",
        webhook,
        &new.ciphertext,
        &new.nonce[..],
        new.key_id,
        &old.ciphertext
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt<'a> {
    /// `delivered`, `pending` (try again at `next`) or `failed` (given up).
    pub status: &'a str,
    pub code: Option<u16>,
    pub error: Option<&'a str>,
    pub next: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

pub async fn record(conn: &mut PgConnection, delivery: Uuid, attempt: &Attempt<'_>) -> StorageResult<()> {
    let error: Option<String> = attempt.error.map(|e| e.chars().take(2000).collect());
    sqlx::query_file!(
        "../../sql/webhooks/record.sql",
        delivery,
        attempt.status,
        attempt.code.map(i32::from),
        error,
        attempt.next,
        attempt.at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The newest `limit` deliveries of the environment's webhooks.
pub async fn deliveries(
    conn: &mut PgConnection,
    environment: EnvironmentId,
    limit: u32,
) -> StorageResult<Vec<Delivery>> {
    let rows = sqlx::query_file!("../../sql/webhooks/deliveries.sql", environment.as_uuid(), i64::from(limit))
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Delivery {
                id: r.id,
                webhook_id: r.webhook_id,
                event: r.event,
                status: r.status,
                attempts: unsigned("webhook_deliveries.attempts", r.attempts)?,
                next_attempt_at: r.next_attempt_at,
                last_status_code: r.last_status_code.and_then(|c| u16::try_from(c).ok()),
                last_error: r.last_error,
                delivered_at: r.delivered_at,
                created_at: r.created_at,
            })
        })
        .collect()
}
