//! Writing events into the chain, verifying it, and its head.
//!
//! Rows are hashed in one of two layouts ([`ChainLayout`]): `Unkeyed` (SHA-256, what every row was until
//! the chain was keyed) and `Keyed` (HMAC-SHA256 under the [`ChainKey`], derived from the server secret,
//! which the tool database never holds). A writer given the key writes keyed rows; one without it may
//! append only while the chain has no keyed row yet (a hub whose processes were all started without the
//! key), and is refused once it has, because an unkeyed row after a keyed one is a break.
//!
//! The key is passed to [`record`] and [`verify`] by their callers, who hold it in their own state (the
//! use cases' `app::Hub`, the worker's `executor::queue::Settings`), built at start-up from the server
//! secret: there is no process-wide key, so what a call uses is what its caller was given.
//!
//! A keyed chain cannot be rewritten without the key, but it can still be cut: deleting its newest rows
//! leaves a shorter chain that verifies. The [`Head`] (sequence and hash of the newest row) is therefore
//! published (the API and the server's log) and [`check_head`] tells whether a chain still reaches a head
//! seen earlier with the same hash.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{SubsecRound, Utc};
use domain::model::AuditActor;
use ring::{digest, hmac};
use storage::audit::{AuditEntry, AuditRecord, ChainLayout, NewAuditRecord};
use storage::{PgConnection, PgTransaction, StorageError};

/// Version tag of the unkeyed hash input layout (rows written before the chain was keyed).
const LAYOUT: &[u8] = b"migrate-hub/audit/v1";
/// Version tag of the keyed layout: the same fields under an HMAC.
const KEYED_LAYOUT: &[u8] = b"migrate-hub/audit/v2-hmac";

/// Why a keyed chain refuses an append from a writer without the key (as a [`StorageError::Refused`],
/// so callers that only know storage errors report it as a refusal, not as a database failure).
pub const NO_CHAIN_KEY: &str = "the audit chain is keyed and this process has no audit chain key: configure the server secret (MIGRATE_HUB_SERVER_SECRET or MIGRATE_HUB_SERVER_SECRET_FILE)";

/// The key that makes the chain's hashes HMACs. Never printed.
#[derive(Clone)]
pub struct ChainKey {
    key: hmac::Key,
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(..)")
    }
}

impl ChainKey {
    /// A key from (derived, uniformly random) key material.
    pub fn new(material: &[u8]) -> Self {
        ChainKey { key: hmac::Key::new(hmac::HMAC_SHA256, material) }
    }
}

/// Something that happened, as the caller describes it.
#[derive(Debug, Clone)]
pub struct Event {
    pub actor: AuditActor,
    /// What happened (stored as its dotted name, e.g. `run.approve`).
    pub action: crate::Action,
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

/// Appends `event` to the chain inside the caller's transaction: keyed under `key` when there is one;
/// unkeyed only while the chain has no keyed row (else refused with [`NO_CHAIN_KEY`]).
#[tracing::instrument(skip_all, fields(action = %event.action))]
pub async fn record(
    tx: &mut PgTransaction<'_>,
    key: Option<&ChainKey>,
    event: &Event,
) -> Result<AuditRecord, AuditError> {
    let head = storage::audit::lock_chain_head(tx).await?;
    if key.is_none() && head.is_some_and(|h| h.layout == ChainLayout::Keyed) {
        return Err(StorageError::Refused(NO_CHAIN_KEY.into()).into());
    }
    let prev_hash = head.map(|h| h.hash);
    // The database keeps microseconds; hash exactly what will be stored.
    let occurred_at = Utc::now().trunc_subsecs(6);
    let user_agent = event.user_agent.as_ref().map(|ua| ua.chars().take(500).collect::<String>());
    let entry = AuditEntry {
        occurred_at,
        actor_kind: event.actor.kind,
        actor_user_id: event.actor.user_id,
        actor_label: event.actor.label.clone(),
        action: event.action.as_str().to_owned(),
        object_type: event.object_type.clone(),
        object_id: event.object_id.clone(),
        details: event.details.clone(),
        ip: event.ip.map(|ip| ip.to_string()),
        user_agent,
    };
    let (hash, layout) = match key {
        Some(key) => (keyed_hash_of(key, &entry, prev_hash.as_ref()), ChainLayout::Keyed),
        None => (hash_of(&entry, prev_hash.as_ref()), ChainLayout::Unkeyed),
    };
    let new = NewAuditRecord { entry, prev_hash, hash, layout };
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

/// Recomputes the chain from the first row: unkeyed rows as they were written, keyed rows with `key`
/// (without it, the first keyed row is reported as one that cannot be checked).
#[tracing::instrument(skip_all)]
pub async fn verify(conn: &mut PgConnection, key: Option<&ChainKey>) -> Result<Verification, AuditError> {
    const BATCH: u32 = 500;
    let mut after = 0;
    let mut prev: Option<[u8; 32]> = None;
    let mut keyed = false;
    let mut rows = 0u64;
    loop {
        let batch = storage::audit::scan(conn, after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        for record in &batch {
            if record.prev_hash != prev {
                return Ok(Verification::Broken { row_id: record.id, reason: "does not link to the previous row" });
            }
            let expected = match (record.layout, key) {
                (ChainLayout::Unkeyed, _) if keyed => {
                    return Ok(Verification::Broken {
                        row_id: record.id,
                        reason: "an unkeyed row follows the keyed chain",
                    });
                }
                (ChainLayout::Unkeyed, _) => hash_of(&record.entry, record.prev_hash.as_ref()),
                (ChainLayout::Keyed, None) => {
                    return Ok(Verification::Broken {
                        row_id: record.id,
                        reason: "keyed row, and no audit chain key (server secret) is configured to check it",
                    });
                }
                (ChainLayout::Keyed, Some(key)) => {
                    keyed = true;
                    keyed_hash_of(key, &record.entry, record.prev_hash.as_ref())
                }
            };
            if expected != record.hash {
                return Ok(Verification::Broken { row_id: record.id, reason: "content does not match its hash" });
            }
            prev = Some(record.hash);
            rows += 1;
        }
    }
    Ok(Verification::Intact { rows })
}

/// The newest row of the chain: its id (sequence) and hash. Published so a later check can tell whether
/// the chain still reaches it (see [`check_head`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub sequence: i64,
    pub hash: [u8; 32],
}

impl fmt::Display for Head {
    /// `SEQ:HASH` (hash in lower-case hex), what `audit verify --expect-head` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.sequence, hex::encode(self.hash))
    }
}

/// Why a head could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected SEQ:HASH, a positive row number and 64 hex digits (as GET /api/v1/audit/head gives them)")]
pub struct HeadSyntax;

impl FromStr for Head {
    type Err = HeadSyntax;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (sequence, hash) = s.trim().split_once(':').ok_or(HeadSyntax)?;
        let sequence: i64 = sequence.parse().map_err(|_| HeadSyntax)?;
        let bytes = hex::decode(hash).map_err(|_| HeadSyntax)?;
        let hash = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| HeadSyntax)?;
        if sequence < 1 {
            return Err(HeadSyntax);
        }
        Ok(Head { sequence, hash })
    }
}

/// The chain's head as committed; `None` for an empty log.
#[tracing::instrument(skip_all)]
pub async fn head(conn: &mut PgConnection) -> Result<Option<Head>, AuditError> {
    Ok(storage::audit::head(conn).await?.map(|h| Head { sequence: h.id, hash: h.hash }))
}

/// What the chain says about a head seen earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadCheck {
    /// The row is there with that hash: the chain reaches the expected head.
    Reached,
    /// The chain ends before it (`last` is its newest row, `None` if it is empty): its tail was cut.
    Cut { expected: i64, last: Option<i64> },
    /// Later rows exist but that one does not: it was deleted.
    Missing { expected: i64 },
    /// The row has another hash: the chain was rewritten up to it.
    Differs { expected: i64 },
}

impl HeadCheck {
    pub fn is_reached(&self) -> bool {
        matches!(self, HeadCheck::Reached)
    }
}

impl fmt::Display for HeadCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadCheck::Reached => f.write_str("the chain reaches the expected head"),
            HeadCheck::Cut { expected, last: Some(last) } => write!(
                f,
                "the chain ends at row {last}, before the expected head {expected}: rows were removed from its end"
            ),
            HeadCheck::Cut { expected, last: None } => {
                write!(f, "the chain is empty, but a head at row {expected} was published: every row was removed")
            }
            HeadCheck::Missing { expected } => {
                write!(f, "row {expected}, the expected head, is missing from the chain: it was removed")
            }
            HeadCheck::Differs { expected } => {
                write!(f, "row {expected} does not have the expected head's hash: the chain was rewritten up to it")
            }
        }
    }
}

/// Whether the chain still reaches `expected` (a head published earlier) with the same hash.
#[tracing::instrument(skip_all, fields(audit.expected = expected.sequence))]
pub async fn check_head(conn: &mut PgConnection, expected: &Head) -> Result<HeadCheck, AuditError> {
    let last = storage::audit::head(conn).await?.map(|h| h.id);
    if last.is_none_or(|last| last < expected.sequence) {
        return Ok(HeadCheck::Cut { expected: expected.sequence, last });
    }
    Ok(match storage::audit::hash_at(conn, expected.sequence).await? {
        None => HeadCheck::Missing { expected: expected.sequence },
        Some(hash) if hash == expected.hash => HeadCheck::Reached,
        Some(_) => HeadCheck::Differs { expected: expected.sequence },
    })
}

/// Feeds the layout tag and each field, length-prefixed so no two field lists share an encoding, to
/// `sink`. `details` is fed as serde_json prints it: object keys sorted, so the key order jsonb chose on
/// storage does not matter.
fn encode(tag: &[u8], f: &AuditEntry, prev_hash: Option<&[u8; 32]>, sink: &mut dyn FnMut(&[u8])) {
    let mut field = |value: Option<&[u8]>| match value {
        None => sink(&[0]),
        Some(bytes) => {
            sink(&[1]);
            sink(&(bytes.len() as u64).to_be_bytes());
            sink(bytes);
        }
    };
    field(Some(tag));
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
}

/// The unkeyed layout: SHA-256 over the encoding.
fn hash_of(f: &AuditEntry, prev_hash: Option<&[u8; 32]>) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    encode(LAYOUT, f, prev_hash, &mut |bytes| ctx.update(bytes));
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The keyed layout: HMAC-SHA256 under the chain key over the encoding (with its own tag).
fn keyed_hash_of(key: &ChainKey, f: &AuditEntry, prev_hash: Option<&[u8; 32]>) -> [u8; 32] {
    let mut ctx = hmac::Context::with_key(&key.key);
    encode(KEYED_LAYOUT, f, prev_hash, &mut |bytes| ctx.update(bytes));
    let mut out = [0; 32];
    out.copy_from_slice(ctx.sign().as_ref());
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
    fn the_keyed_layout_depends_on_the_key_and_differs_from_the_unkeyed_one() {
        let (a, b) = (ChainKey::new(&[1; 32]), ChainKey::new(&[2; 32]));
        let keyed = keyed_hash_of(&a, &sample(), None);
        assert_eq!(keyed, keyed_hash_of(&ChainKey::new(&[1; 32]), &sample(), None));
        assert_ne!(keyed, keyed_hash_of(&b, &sample(), None));
        assert_ne!(keyed, hash_of(&sample(), None));
        let mut changed = sample();
        changed.action = "environment.delete".into();
        assert_ne!(keyed, keyed_hash_of(&a, &changed, None));
        assert_ne!(keyed, keyed_hash_of(&a, &sample(), Some(&[7; 32])));
        assert_eq!(format!("{a:?}"), "ChainKey(..)");
    }

    #[test]
    fn heads_print_and_parse_as_seq_colon_hash() {
        let head = Head { sequence: 42, hash: [0xab; 32] };
        let text = head.to_string();
        assert_eq!(text, format!("42:{}", "ab".repeat(32)));
        assert_eq!(text.parse::<Head>(), Ok(head));
        for bad in ["", "42", "42:", "x:ab", "0:", "42:abcd", "-1:00"] {
            assert_eq!(bad.parse::<Head>(), Err(HeadSyntax), "{bad}");
        }
        assert_eq!(format!("0:{}", "00".repeat(32)).parse::<Head>(), Err(HeadSyntax));
    }

    #[test]
    fn head_checks_say_what_happened() {
        let cut = HeadCheck::Cut { expected: 9, last: Some(7) }.to_string();
        assert!(cut.contains("ends at row 7") && cut.contains("removed from its end"), "{cut}");
        assert!(HeadCheck::Differs { expected: 9 }.to_string().contains("rewritten"));
        assert!(HeadCheck::Reached.is_reached());
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
