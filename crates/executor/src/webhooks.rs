//! Webhook deliveries, by the workers: due deliveries are taken from the outbox (`storage::webhooks`),
//! signed (`domain::webhooks::sign`) with the webhook's secret opened in memory, POSTed without following
//! redirects, and each attempt recorded: delivered on a 2xx, else tried again with backoff
//! (`domain::webhooks::backoff_secs`) until [`MAX_ATTEMPTS`](domain::webhooks::MAX_ATTEMPTS). Delivery is
//! at least once: a worker that dies mid-delivery leaves it to be tried again after its hold.

use std::time::Duration;

use domain::webhooks::{self, MAX_ATTEMPTS, WebhookFormat};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use storage::StorageError;
use storage::webhooks::{Attempt, Due};

use crate::apply::Clock;
use crate::secrets::SecretOpener;

/// How long a taken delivery is held before another worker may try it.
const HOLD: Duration = Duration::from_secs(60);
/// How long a receiver may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Most deliveries taken at once.
pub(crate) const BATCH: u32 = 16;

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub event: String,
    /// `delivered`, `pending` (tried again later) or `failed` (given up).
    pub status: &'static str,
    /// The receiver's HTTP status, if it answered.
    pub code: Option<u16>,
}

/// The HTTP client deliveries use: no redirects (a receiver cannot send the hub elsewhere), a timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .user_agent(concat!("migrate-hub/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Takes the deliveries due now (on `clock`) and sends each once.
pub async fn deliver_due(
    pool: &PgPool,
    opener: &dyn SecretOpener,
    clock: &Clock,
    client: &reqwest::Client,
) -> Result<Vec<Sent>, StorageError> {
    let due = {
        let mut conn = pool.acquire().await?;
        storage::webhooks::claim(&mut conn, BATCH, clock.now(), HOLD).await?
    };
    let mut sent = Vec::with_capacity(due.len());
    for delivery in due {
        let (code, error) = send(&delivery, opener, clock, client).await;
        let now = clock.now();
        let delivered = error.is_none();
        let status = match (delivered, delivery.attempt >= MAX_ATTEMPTS) {
            (true, _) => "delivered",
            (false, false) => "pending",
            (false, true) => "failed",
        };
        let wait = chrono::Duration::seconds(i64::try_from(webhooks::backoff_secs(delivery.attempt)).unwrap_or(3600));
        let attempt = Attempt { status, code, error: error.as_deref(), next: now + wait, at: now };
        if let Some(e) = &error {
            tracing::warn!(delivery.id = %delivery.id, webhook.id = %delivery.webhook_id, attempt = delivery.attempt, status, error = %e, "webhook delivery failed");
        }
        let mut conn = pool.acquire().await?;
        storage::webhooks::record(&mut conn, delivery.id, &attempt).await?;
        sent.push(Sent { event: delivery.event, status, code });
    }
    Ok(sent)
}

/// Sends one delivery; the receiver's status and, unless it was a 2xx, what went wrong.
async fn send(
    delivery: &Due,
    opener: &dyn SecretOpener,
    clock: &Clock,
    client: &reqwest::Client,
) -> (Option<u16>, Option<String>) {
    // Checked when saved; checked again here, so a row changed behind the hub's back sends nothing else.
    let url = match reqwest::Url::parse(&delivery.url) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https") && url.username().is_empty() && url.password().is_none() =>
        {
            url
        }
        _ => return (None, Some("refused: only http(s) URLs without credentials are delivered to".into())),
    };
    let secret = match opener.open_webhook(delivery.webhook_id, &delivery.secret) {
        Ok(secret) => secret,
        Err(e) => return (None, Some(format!("cannot open the webhook's secret: {e}"))),
    };
    let body = match delivery.format {
        WebhookFormat::Json => delivery.payload.clone(),
        WebhookFormat::Slack => webhooks::slack_body(&delivery.payload),
    };
    let body = match serde_json::to_vec(&body) {
        Ok(body) => body,
        Err(e) => return (None, Some(format!("cannot encode the body: {e}"))),
    };
    let signature = webhooks::sign(secret.expose_secret().as_bytes(), clock.now().timestamp(), &body);
    let answer = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(webhooks::SIGNATURE_HEADER, signature)
        .header(webhooks::EVENT_HEADER, delivery.event.as_str())
        .header("X-MigrateHub-Delivery", delivery.id.to_string())
        .body(body)
        .send()
        .await;
    match answer {
        Ok(response) => {
            let code = response.status();
            if code.is_success() {
                (Some(code.as_u16()), None)
            } else if code.is_redirection() {
                (Some(code.as_u16()), Some(format!("answered {code}: redirects are not followed")))
            } else {
                (Some(code.as_u16()), Some(format!("answered {code}")))
            }
        }
        // The error's text names the URL; its kind is enough and leaks nothing of a query string.
        Err(e) => {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            (None, Some(kind.to_owned()))
        }
    }
}
