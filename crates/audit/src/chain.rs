//! Writing events into the chain and verifying it.

use std::net::IpAddr;

use chrono::{SubsecRound, Utc};
use domain::model::AuditActor;
use ring::digest;
use storage::audit::{AuditEntry, AuditRecord, NewAuditRecord};
use storage::{PgConnection, PgTransaction, StorageError};

/// Version tag of the hash input layout; a new layout gets a new tag so old rows still verify.
const LAYOUT: &[u8] = b"migrate-hub/audit/v1";

/// Something that happened, as the caller describes it.
#[derive(Debug, Clone)]
pub struct Event {
    pub actor: AuditActor,
    /// Dotted action name, e.g. `run.approve`.
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    /// Ids, names and outcomes; never a secret.
    pub details: serde_json::Value,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot write the audit log")]
    Storage(#[from] StorageError),
}

/// Appends `event` to the chain inside the caller's transaction.
#[tracing::instrument(skip_all, fields(action = %event.action))]
pub async fn record(tx: &mut PgTransaction<'_>, event: &Event) -> Result<AuditRecord, AuditError> {
    let prev_hash = storage::audit::lock_chain_head(tx).await?;
    // The database keeps microseconds; hash exactly what will be stored.
    let occurred_at = Utc::now().trunc_subsecs(6);
    let user_agent = event.user_agent.as_ref().map(|ua| ua.chars().take(500).collect::<String>());
    let entry = AuditEntry {
        occurred_at,
        actor_kind: event.actor.kind,
        actor_user_id: event.actor.user_id,
        actor_label: event.actor.label.clone(),
        action: event.action.clone(),
        object_type: event.object_type.clone(),
        object_id: event.object_id.clone(),
        details: event.details.clone(),
        ip: event.ip.map(|ip| ip.to_string()),
        user_agent,
    };
    let hash = hash_of(&entry, prev_hash.as_ref());
    let new = NewAuditRecord { entry, prev_hash, hash };
    Ok(storage::audit::append(tx, &new).await?)
}

/// The outcome of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every row links to the one before and hashes to its stored hash.
    Intact { rows: u64 },
    /// The first row that does not check out, and why.
    Broken { row_id: i64, reason: &'static str },
}

/// Recomputes the chain from the first row.
#[tracing::instrument(skip_all)]
pub async fn verify(conn: &mut PgConnection) -> Result<Verification, AuditError> {
    const BATCH: u32 = 500;
    let mut after = 0;
    let mut prev: Option<[u8; 32]> = None;
    let mut rows = 0u64;
    loop {
        let batch = storage::audit::scan(conn, after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        for record in &batch {
            if record.prev_hash != prev {
                return Ok(Verification::Broken { row_id: record.id, reason: "does not link to the previous row" });
            }
            if hash_of(&record.entry, record.prev_hash.as_ref()) != record.hash {
                return Ok(Verification::Broken { row_id: record.id, reason: "content does not match its hash" });
            }
            prev = Some(record.hash);
            rows += 1;
        }
    }
    Ok(Verification::Intact { rows })
}

/// SHA-256 over the layout tag and each field, length-prefixed so no two field lists share an encoding.
/// `details` is hashed as serde_json prints it: object keys sorted, so the key order jsonb chose on
/// storage does not matter.
fn hash_of(f: &AuditEntry, prev_hash: Option<&[u8; 32]>) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut field = |value: Option<&[u8]>| match value {
        None => ctx.update(&[0]),
        Some(bytes) => {
            ctx.update(&[1]);
            ctx.update(&(bytes.len() as u64).to_be_bytes());
            ctx.update(bytes);
        }
    };
    field(Some(LAYOUT));
    field(Some(f.occurred_at.timestamp_micros().to_be_bytes().as_slice()));
    field(Some(f.actor_kind.as_str().as_bytes()));
    field(f.actor_user_id.map(|u| u.to_string()).as_deref().map(str::as_bytes));
    field(Some(f.actor_label.as_bytes()));
    field(Some(f.action.as_bytes()));
    field(Some(f.object_type.as_bytes()));
    field(f.object_id.as_deref().map(str::as_bytes));
    field(Some(f.details.to_string().as_bytes()));
    field(f.ip.as_deref().map(str::as_bytes));
    field(f.user_agent.as_deref().map(str::as_bytes));
    field(prev_hash.map(|h| h.as_slice()));
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use domain::enums::ActorKind;

    fn sample() -> AuditEntry {
        AuditEntry {
            occurred_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap_or_default(),
            actor_kind: ActorKind::System,
            actor_user_id: None,
            actor_label: "system".into(),
            action: "environment.create".into(),
            object_type: "environment".into(),
            object_id: Some("prod".into()),
            details: serde_json::json!({"b": 1, "a": "x"}),
            ip: None,
            user_agent: None,
        }
    }

    #[test]
    fn every_field_changes_the_hash() {
        let h = hash_of(&sample(), None);
        let variants: [fn(&mut AuditEntry); 9] = [
            |r| r.occurred_at += chrono::Duration::microseconds(1),
            |r| r.actor_kind = ActorKind::User,
            |r| r.actor_label = "other".into(),
            |r| r.action = "environment.update".into(),
            |r| r.object_type = "target".into(),
            |r| r.object_id = None,
            |r| r.details = serde_json::json!({"b": 2, "a": "x"}),
            |r| r.ip = Some("127.0.0.1".into()),
            |r| r.user_agent = Some("curl".into()),
        ];
        for change in variants {
            let mut changed = sample();
            change(&mut changed);
            assert_ne!(hash_of(&changed, None), h);
        }
        assert_ne!(hash_of(&sample(), Some(&[7; 32])), h, "the link to the previous row is hashed too");
    }

    #[test]
    fn absent_and_empty_fields_hash_differently() {
        let mut a = sample();
        a.object_id = None;
        let mut b = sample();
        b.object_id = Some(String::new());
        assert_ne!(hash_of(&a, None), hash_of(&b, None));
    }

    #[test]
    fn details_key_order_does_not_matter() {
        let mut a = sample();
        a.details = serde_json::from_str(r#"{"a":"x","b":1}"#).unwrap_or_default();
        let mut b = sample();
        b.details = serde_json::from_str(r#"{"b":1,"a":"x"}"#).unwrap_or_default();
        assert_eq!(hash_of(&a, None), hash_of(&b, None));
    }
}
