//! Webhooks: what an environment's webhook may be sent, how it is signed, and the Slack-compatible text.
//!
//! A delivery is signed as Stripe signs its webhooks: `X-MigrateHub-Signature: t=<unix seconds>,v1=<hex>`,
//! where the hex is HMAC-SHA256 under the webhook's secret over `"<t>.<body>"`. A receiver recomputes it,
//! compares in constant time and refuses a `t` too far from its clock (replays).

use ring::hmac;
use serde_json::Value;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-MigrateHub-Signature";
/// The header that names the event.
pub const EVENT_HEADER: &str = "X-MigrateHub-Event";
/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: u32 = 8;

closed_enum! {
    /// What a webhook can be told.
    pub enum WebhookEvent as "webhook event" {
        /// A run waits for approval (requested, or refreshed after an edit).
        ApprovalRequested = "approval.requested",
        /// A worker started a run.
        RunStarted = "run.started",
        RunSucceeded = "run.succeeded",
        RunFailed = "run.failed",
        /// A wave failed more targets than it allows.
        RunHalted = "run.halted",
        /// A target's schema differs from what its last successful apply left.
        DriftDetected = "drift.detected",
    }
}

closed_enum! {
    /// The body a webhook is sent.
    pub enum WebhookFormat as "webhook format" {
        /// The event document.
        Json = "json",
        /// `{"text": …}`, for Slack's incoming webhooks and look-alikes.
        Slack = "slack",
    }
}

/// The signature header's value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Whether `header` is a valid signature of `body` under `secret` made within `tolerance` seconds of
/// `now` (what a receiver checks; used by the hub's tests as a receiver would).
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v.to_owned()),
            _ => {}
        }
    }
    let Some(t) = timestamp else { return false };
    if (now - t).abs() > tolerance {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut message = t.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(body);
    signatures.iter().any(|hex| {
        let bytes: Option<Vec<u8>> =
            (0..hex.len()).step_by(2).map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect();
        bytes.is_some_and(|tag| hmac::verify(&key, &message, &tag).is_ok())
    })
}

/// The Slack-compatible body of an event document: one line of text with the link.
pub fn slack_body(payload: &Value) -> Value {
    let field = |name: &str| payload.get(name).and_then(Value::as_str).unwrap_or_default();
    let event = field("event");
    let what = match event {
        "approval.requested" => "waits for approval",
        "run.started" => "started",
        "run.succeeded" => "succeeded",
        "run.failed" => "failed",
        "run.halted" => "halted: a wave failed more targets than it allows",
        "drift.detected" => "drifted",
        "webhook.test" => "test delivery",
        _ => event,
    };
    let subject = if event == "drift.detected" {
        format!("Target {} in {}", field("target"), field("environment"))
    } else if event == "webhook.test" {
        format!("migrate-hub webhook for {}", field("environment"))
    } else {
        format!("Run {} of {} in {}", short(field("run_id")), field("project"), field("environment"))
    };
    let link = field("link");
    let text = if link.is_empty() { format!("{subject} {what}") } else { format!("{subject} {what}: <{link}>") };
    serde_json::json!({ "text": text })
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The wait before attempt `attempt` + 1 (`attempt` from 1): 10 s, doubling, at most an hour.
pub fn backoff_secs(attempt: u32) -> u64 {
    (10u64 << attempt.saturating_sub(1).min(12)).min(3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_under_its_secret_and_time_only() {
        let body = br#"{"event":"run.failed"}"#;
        let header = sign(b"whsec", 1_765_000_000, body);
        assert!(header.starts_with("t=1765000000,v1="));
        assert!(verify(b"whsec", &header, body, 1_765_000_100, 300));
        assert!(!verify(b"other", &header, body, 1_765_000_100, 300), "another secret");
        assert!(!verify(b"whsec", &header, b"{}", 1_765_000_100, 300), "another body");
        assert!(!verify(b"whsec", &header, body, 1_765_001_000, 300), "too old");
        assert!(!verify(b"whsec", "v1=00", body, 1_765_000_000, 300), "no timestamp");
    }

    #[test]
    fn slack_bodies_are_one_line_with_the_link() {
        let payload = serde_json::json!({
            "event": "run.halted", "run_id": "0190a0a0-1111-7000-8000-000000000001", "project": "orders",
            "environment": "prod", "link": "https://hub.example.com/runs/0190a0a0",
        });
        assert_eq!(
            slack_body(&payload)["text"],
            "Run 0190a0a0 of orders in prod halted: a wave failed more targets than it allows: <https://hub.example.com/runs/0190a0a0>"
        );
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!([1, 2, 3, 8, 30].map(backoff_secs), [10, 20, 40, 1280, 3600]);
    }
}

/// A webhook of an environment, as stored (its secret stays sealed in the tool database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: uuid::Uuid,
    pub environment_id: crate::ids::EnvironmentId,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub format: WebhookFormat,
    pub created_by: crate::ids::UserId,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// One delivery (an event to one webhook) and how it went: the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: uuid::Uuid,
    pub webhook_id: uuid::Uuid,
    /// A [`WebhookEvent`], or `webhook.test`.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}
