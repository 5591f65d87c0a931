//! What a baseline, adoption or recovery request pins (SPEC §4, recovery and adoption), read and checked at
//! request so that whoever approves decides on what the target held then:
//!
//! - a **baseline** pins every version of the project up to `up_to` (default: the newest);
//! - an **adoption** reads the other tool's history on each target now, refuses (naming target and versions)
//!   when a history is dirty, has versions the project lacks or checksums that differ, and pins the versions
//!   the tool applied on any of them; each worker reads its target's history again and records only what
//!   that tool applied there;
//! - a **recovery** (one target) reads the dirty row of `version_key` now and pins it with the resolution;
//!   the worker goes ahead only while the row is still exactly that one.
//!
//! The approval pins `domain::release::run_content`, which covers the kind and these parameters.

use domain::ErrorCode;
use domain::enums::{Direction, Resolution, RunKind};
use domain::model::{Project, ReleaseVersion, RunAction, RunScope, SeenRow, Target};
use domain::release::{self, SelectError};
use domain::values::VersionKey;
use executor::adopt::{self, AdoptError, Candidate};
use executor::apply::Migration;
use executor::history::HistoryTable;
use executor::recovery::{self, RecoveryError};
use storage::StorageError;

use crate::error::db;
use crate::runs::RunRequest;
use crate::{AppError, AppResult, Hub};

/// The project, versions (in apply order) and action a request of `kind` (not a release) pins on `targets`.
pub(crate) async fn resolve(
    hub: &Hub,
    keys: Option<&auth::secrets::KeyRing>,
    input: &RunRequest,
    kind: RunKind,
    scope: RunScope,
    targets: &[Target],
) -> AppResult<(Project, Vec<ReleaseVersion>, RunAction)> {
    let conflicting =
        |field: &'static str, message: String| AppError::invalid(field, ErrorCode::ConflictingFields, message);
    for (field, given) in [
        ("migration_id", input.migration_id.is_some()),
        ("version", input.version.is_some()),
        ("down_to", input.down_to.is_some()),
    ] {
        if given {
            return Err(conflicting(field, format!("{field} goes with a release, not with a {kind}")));
        }
    }
    if input.direction == Some(Direction::Down) {
        return Err(conflicting("direction", format!("a {kind} records or repairs ups; it has no direction down")));
    }
    let only = |field: &'static str, given: bool, with: RunKind| {
        if given && kind != with {
            Err(conflicting(field, format!("{field} goes with a {with}, not with a {kind}")))
        } else {
            Ok(())
        }
    };
    only("from", input.from.is_some(), RunKind::Adopt)?;
    only("from_table", input.from_table.is_some(), RunKind::Adopt)?;
    only("resolution", input.resolution.is_some(), RunKind::Recovery)?;
    only("version_key", input.version_key.is_some(), RunKind::Recovery)?;
    only("seen_statements_done", input.seen_statements_done.is_some(), RunKind::Recovery)?;
    only("seen_checksum", input.seen_checksum.is_some(), RunKind::Recovery)?;
    if kind != RunKind::Baseline && input.up_to.is_some() {
        return Err(conflicting("up_to", format!("up_to goes with a release or a baseline, not with a {kind}")));
    }
    let project_id = input.project_id.ok_or_else(|| {
        AppError::invalid("project_id", ErrorCode::Missing, format!("a {kind} names the project (project_id)"))
    })?;
    let (project, all) = {
        let mut conn = hub.pool.acquire().await.map_err(db)?;
        let project = storage::projects::get(&mut conn, project_id).await.map_err(|e| match e {
            StorageError::NotFound(_) => AppError::invalid("project_id", ErrorCode::UnknownProject, "no such project"),
            other => other.into(),
        })?;
        let all = storage::versions::newest_of_project(&mut conn, project.id, None).await?;
        (project, all)
    };
    let pick = |indexes: Vec<usize>| -> Vec<ReleaseVersion> {
        indexes
            .into_iter()
            .enumerate()
            .filter_map(|(position, i)| {
                all.get(i).cloned().map(|mut v| {
                    v.position = u32::try_from(position).unwrap_or(u32::MAX);
                    v
                })
            })
            .collect()
    };
    match kind {
        RunKind::Release => Err(AppError::invalid("kind", ErrorCode::InvalidValue, "a release is resolved elsewhere")),
        RunKind::Baseline => {
            let keys: Vec<VersionKey> = all.iter().map(|v| v.version_key.clone()).collect();
            let up_to = input.up_to.as_deref().map(VersionKey::parse).transpose().map_err(AppError::value("up_to"))?;
            let chosen = release::select_up(&keys, up_to.as_ref()).map_err(|e| match e {
                SelectError::UnknownVersion { .. } => {
                    AppError::invalid("up_to", ErrorCode::UnknownVersion, e.to_string())
                }
                SelectError::Empty => AppError::invalid("up_to", ErrorCode::NothingToApply, e.to_string()),
            })?;
            Ok((project, pick(chosen), RunAction::Baseline))
        }
        RunKind::Adopt => {
            let from = input.from.ok_or_else(|| {
                AppError::invalid("from", ErrorCode::Missing, "an adoption names the tool it adopts from (from)")
            })?;
            let table = input.from_table.clone();
            // Only which versions the tool applied is decided here; the worker counts the statements.
            let candidates: Vec<Candidate<'_>> = all.iter().map(|v| Candidate::of_version(v, 0)).collect();
            let mut chosen: Vec<usize> = Vec::new();
            let mut refused: Vec<String> = Vec::new();
            for target in targets {
                let read = crate::inventory::ask(hub, keys, target, async |conn| {
                    Ok(adopt::read_foreign(conn, from, table.as_deref()).await)
                })
                .await;
                match read {
                    Err((stage, message)) => return Err(unreadable(target, stage, &message)),
                    Ok(Err(AdoptError::Target(e))) => return Err(unreadable(target, "query", &e.to_string())),
                    Ok(Err(e)) => refused.push(format!("{}: {e}", target.name)),
                    Ok(Ok(foreign)) => match adopt::plan(from, &foreign, &candidates) {
                        Ok(indexes) => chosen.extend(indexes),
                        Err(e) => refused.push(format!("{}: {e}", target.name)),
                    },
                }
            }
            if !refused.is_empty() {
                return Err(AppError::conflict(ErrorCode::AdoptRefused, refused.join("; ")));
            }
            chosen.sort_unstable();
            chosen.dedup();
            Ok((project, pick(chosen), RunAction::Adopt { from, table }))
        }
        RunKind::Recovery => {
            let (RunScope::Target(_), [target]) = (scope, targets) else {
                return Err(AppError::invalid(
                    "target_id",
                    ErrorCode::Missing,
                    "a recovery is for one target: name it with target_id, not a db set",
                ));
            };
            let resolution = input.resolution.ok_or_else(|| {
                AppError::invalid(
                    "resolution",
                    ErrorCode::Missing,
                    "a recovery says how: resolution mark_applied, mark_rolled_back or resume",
                )
            })?;
            let key = input.version_key.as_deref().ok_or_else(|| {
                AppError::invalid("version_key", ErrorCode::Missing, "a recovery names the dirty version (version_key)")
            })?;
            let key = VersionKey::parse(key).map_err(AppError::value("version_key"))?;
            let index = all.iter().position(|v| v.version_key == key).ok_or_else(|| {
                AppError::invalid(
                    "version_key",
                    ErrorCode::UnknownVersion,
                    format!("version {key} is not a migration of this project"),
                )
            })?;
            let version = &all[index];
            let statements = match executor::queue::statements_for(&version.version.up_sql, target) {
                Ok(statements) => statements,
                Err((_, message)) if resolution == Resolution::Resume => {
                    return Err(AppError::invalid(
                        "resolution",
                        ErrorCode::CannotResume,
                        format!("cannot resume {key}: {message}"),
                    ));
                }
                Err(_) => Vec::new(),
            };
            let migration = Migration {
                version: &version.version_key,
                name: version.name.as_str(),
                up_checksum: version.version.checksums.up,
                direction: Direction::Up,
                statements,
                transaction_mode: version.version.transaction_mode,
            };
            let table = HistoryTable {
                schema: target.schema.clone(),
                table: project.history_table.clone(),
                project: project.id.to_string(),
            };
            let read = crate::inventory::ask(hub, keys, target, async |conn| {
                Ok(recovery::inspect(conn, &migration, resolution, None, &table).await)
            })
            .await;
            let row = match read {
                Err((stage, message)) => return Err(unreadable(target, stage, &message)),
                Ok(Ok(row)) => row,
                Ok(Err(RecoveryError::Target(e))) => return Err(unreadable(target, "query", &e.to_string())),
                Ok(Err(e @ (RecoveryError::NoRow(_) | RecoveryError::NotDirty(_)))) => {
                    return Err(AppError::conflict(ErrorCode::NotDirty, format!("on target {}: {e}", target.name)));
                }
                Ok(Err(e @ RecoveryError::CannotResume { .. })) => {
                    return Err(AppError::invalid(
                        "resolution",
                        ErrorCode::CannotResume,
                        format!("on target {}: {e}", target.name),
                    ));
                }
                Ok(Err(e)) => {
                    return Err(AppError::conflict(ErrorCode::RowChanged, format!("on target {}: {e}", target.name)));
                }
            };
            let checksum: String = row.checksum.iter().map(|b| format!("{b:02x}")).collect();
            let mismatch = input.seen_statements_done.is_some_and(|done| done != row.statements_done)
                || input.seen_checksum.as_deref().is_some_and(|seen| !seen.eq_ignore_ascii_case(&checksum));
            if mismatch {
                return Err(AppError::conflict(
                    ErrorCode::RowChanged,
                    format!(
                        "the row of {key} on target {} is now {}; look at the target's history again and decide anew",
                        target.name,
                        recovery::describe(&row)
                    ),
                ));
            }
            let seen = SeenRow {
                status: row.status.as_str().to_owned(),
                statements_done: row.statements_done,
                statements_total: row.statements_total,
                checksum: row.checksum.clone(),
                error: row.error.clone().map(|e| e.chars().take(8000).collect()),
            };
            Ok((project, pick(vec![index]), RunAction::Recovery { resolution, seen }))
        }
    }
}

fn unreadable(target: &Target, stage: &str, message: &str) -> AppError {
    AppError::conflict(
        ErrorCode::TargetUnreadable,
        format!("cannot read the history on target {} ({stage}): {message}; nothing was requested", target.name),
    )
}
