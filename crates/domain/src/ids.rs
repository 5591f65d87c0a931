//! Typed identifiers.
//!
//! Every table of the tool database is keyed by a UUID; wrapping each in its own type means a
//! `RunId` can never be passed where a `TargetId` is expected. New ids are UUIDv7, which sort by
//! creation time, so primary-key indexes stay append-mostly and listings by id are chronological.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! id_type {
    ($( $(#[$meta:meta])* $name:ident ),+ $(,)?) => {
        $(
            $(#[$meta])*
            #[derive(
                Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
                serde::Serialize, serde::Deserialize,
            )]
            #[serde(transparent)]
            pub struct $name(Uuid);

            impl $name {
                /// A fresh, time-ordered id (UUIDv7).
                pub fn new() -> Self {
                    Self(Uuid::now_v7())
                }

                /// Wraps an existing UUID, e.g. one read from the database.
                pub const fn from_uuid(uuid: Uuid) -> Self {
                    Self(uuid)
                }

                /// The underlying UUID.
                pub const fn as_uuid(&self) -> Uuid {
                    self.0
                }
            }

            impl Default for $name {
                /// A fresh id: there is no meaningful "zero" id, and a nil UUID would collide.
                fn default() -> Self {
                    Self::new()
                }
            }

            impl fmt::Display for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    fmt::Display::fmt(&self.0, f)
                }
            }

            impl FromStr for $name {
                type Err = uuid::Error;

                fn from_str(s: &str) -> Result<Self, Self::Err> {
                    Uuid::parse_str(s).map(Self)
                }
            }

            #[cfg(feature = "openapi")]
            impl utoipa::PartialSchema for $name {
                fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                    crate::openapi::uuid()
                }
            }

            #[cfg(feature = "openapi")]
            impl utoipa::ToSchema for $name {}

            impl From<$name> for Uuid {
                fn from(id: $name) -> Uuid {
                    id.0
                }
            }
        )+
    };
}

id_type! {
    /// A person who signed in through OIDC.
    UserId,
    /// An API token.
    TokenId,
    /// An environment (e.g. `staging`, `production`) with its policy.
    EnvironmentId,
    /// One database that migrations are applied to.
    TargetId,
    /// A named set of targets that receive the same migrations.
    DbSetId,
    /// A project: a line of migrations applied to one or more database sets.
    ProjectId,
    /// A migration of a project, across all its versions.
    MigrationId,
    /// One immutable version of a migration's content.
    VersionId,
    /// A request to apply (or revert) migrations to targets.
    RunId,
    /// One migration on one target within a run.
    RunItemId,
    /// One approve or deny decision on a run.
    ApprovalId,
    /// A worker process that claims and executes run items.
    WorkerId,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::test_support::{from_str, to_json};

    #[test]
    fn new_ids_are_v7_and_unique() {
        let a = RunId::new();
        let b = RunId::new();
        assert_ne!(a, b);
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert_eq!(RunId::default().as_uuid().get_version_num(), 7);
    }

    #[test]
    fn display_and_parse_round_trip() {
        let id = TargetId::new();
        let text = id.to_string();
        assert_eq!(text, id.as_uuid().hyphenated().to_string());
        assert_eq!(text.parse::<TargetId>().unwrap(), id);
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!("not-a-uuid".parse::<UserId>().is_err());
        assert!("".parse::<UserId>().is_err());
    }

    #[test]
    fn uuid_conversions() {
        let uuid = Uuid::now_v7();
        let id = ProjectId::from_uuid(uuid);
        assert_eq!(id.as_uuid(), uuid);
        assert_eq!(Uuid::from(id), uuid);
    }

    #[test]
    fn serde_is_transparent() {
        let text = "0190a5f2-7b3c-7d4e-8f00-112233445566";
        let id = WorkerId::from_uuid(Uuid::parse_str(text).unwrap());
        assert_eq!(to_json(&id), format!("\"{text}\""));
        assert_eq!(from_str::<WorkerId>(text).unwrap(), id);
        assert!(from_str::<WorkerId>("nope").is_err());
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        // v7 ids carry a millisecond timestamp plus a counter, so ids made in sequence by one
        // process sort in creation order.
        let ids: Vec<ApprovalId> = (0..100).map(|_| ApprovalId::new()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
