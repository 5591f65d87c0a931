//! Waves of a run (issue 20, `domain::waves`): the plan read at request, and Continue.
//!
//! The plan is checked at request against the set's targets (422 `invalid_waves` naming what to change)
//! and stored, resolved, with the run's items, so what a person approves includes how it rolls out. The
//! workers move the waves on and halt a run (`executor::queue`); a person continues a run whose next wave
//! waits for them (`advance: manual`) or that a wave halted, if the environment lets them execute runs.

use domain::ErrorCode;
use domain::ids::RunId;
use domain::model::{Run, RunScope, RunWaves};
use domain::policy::may_continue;
use domain::run::RunStatus;
use domain::waves::{self, Advance, LabelMatch, PlannedWave, WaveProblem, WaveSpec};
use serde_json::{Value, json};
use storage::PgTransaction;

use crate::error::db;
use crate::runs::{RunRequest, record_refusal};
use crate::{AppError, AppResult, Caller, Hub, record};
use audit::Action;

/// A request's waves, read and checked.
#[derive(Debug, Clone)]
pub(crate) struct WaveRequest {
    pub(crate) specs: Vec<WaveSpec>,
    pub(crate) advance: Advance,
    pub(crate) label: Option<LabelMatch>,
}

fn invalid(problem: &WaveProblem) -> AppError {
    AppError::invalid("waves", problem.code(), problem.to_string())
}

/// The waves `input` asks for over `scope` (with `targets` members), checked; `None` for a run at once.
pub(crate) fn requested(input: &RunRequest, scope: RunScope, targets: usize) -> AppResult<Option<WaveRequest>> {
    let Some(specs) = &input.waves else {
        if input.advance.is_some() || input.first_label.is_some() {
            return Err(AppError::invalid(
                "waves",
                ErrorCode::InvalidWaves,
                "\"advance\" and \"first_label\" go with \"waves\": give the waves too",
            ));
        }
        return Ok(None);
    };
    if let RunScope::Target(_) = scope {
        return Err(invalid(&WaveProblem::OneTarget));
    }
    let label = input.first_label.as_deref().map(LabelMatch::parse).transpose().map_err(|p| invalid(&p))?;
    waves::plan(specs, u32::try_from(targets).unwrap_or(u32::MAX)).map_err(|p| invalid(&p))?;
    Ok(Some(WaveRequest { specs: specs.clone(), advance: input.advance.unwrap_or_default(), label }))
}

/// Stores `request`'s plan over the run's `items` (made in the same transaction).
pub(crate) async fn store(
    tx: &mut PgTransaction<'_>,
    run: RunId,
    request: &WaveRequest,
    items: u64,
) -> AppResult<Vec<PlannedWave>> {
    let planned = waves::plan(&request.specs, u32::try_from(items).unwrap_or(u32::MAX)).map_err(|p| invalid(&p))?;
    storage::runs::create_waves(tx, run, &planned, request.advance, request.label.as_ref()).await?;
    Ok(planned)
}

/// The plan as the audit log records it.
pub(crate) fn details(planned: &[PlannedWave], request: &WaveRequest) -> Value {
    json!({
        "advance": request.advance.as_str(),
        "first_label": request.label.as_ref().map(ToString::to_string),
        "waves": planned.iter().map(|w| json!({
            "spec": w.spec, "targets": w.size(), "max_failures": w.max_failures,
        })).collect::<Vec<_>>(),
    })
}

/// Whether a repeated request (same idempotency key) asks for the waves the first one stored.
pub(crate) fn same_plan(existing: Option<&RunWaves>, input: &RunRequest) -> bool {
    match (existing, &input.waves) {
        (None, None) => true,
        (Some(stored), Some(specs)) => {
            let total = stored.waves.last().map_or(0, |w| w.end);
            let label = input.first_label.as_deref().map(LabelMatch::parse).transpose().ok().flatten();
            let Ok(planned) = waves::plan(specs, total) else { return false };
            stored.advance == input.advance.unwrap_or_default()
                && stored.first_label == label
                && planned.len() == stored.waves.len()
                && planned.iter().zip(&stored.waves).all(|(p, s)| {
                    (p.first, p.end, p.spec.as_str(), p.max_failures)
                        == (s.first, s.end, s.spec.as_str(), s.max_failures)
                })
        }
        _ => false,
    }
}

/// Continues run `id`'s waves: starts its next wave when it waits for a person, or resumes it after a
/// wave halted it (tolerating that wave's failures so far; a wave with nothing left open then moves on,
/// and a run with nothing left ends). Refusals are audited (`run.continue_refused`).
pub async fn continue_run(hub: &Hub, caller: &Caller, id: RunId) -> AppResult<Run> {
    let result = continue_inner(hub, caller, id).await;
    if let Err(e) = &result {
        record_refusal(hub, caller, Action::RunContinueRefused, id, e).await;
    }
    result
}

async fn continue_inner(hub: &Hub, caller: &Caller, id: RunId) -> AppResult<Run> {
    let mut tx = hub.pool.begin().await.map_err(db)?;
    let run = storage::runs::lock(&mut tx, id).await?;
    let environment = storage::environments::get(&mut tx, run.environment_id).await?;
    let waves = storage::runs::waves(&mut tx, id).await?;
    let awaiting = waves.as_ref().is_some_and(RunWaves::awaiting_continue);
    may_continue(&caller.actor, &run.facts(), &environment.policy, awaiting)?;
    let Some(waves) = waves else {
        return Err(AppError::conflict(ErrorCode::WrongStatus, "this run has no waves to continue"));
    };
    let wave = waves.waves.get(waves.current as usize);
    let mut details = json!({
        "from": run.status.as_str(),
        "wave": waves.current + 1,
        "waves": waves.waves.len(),
        "failed": waves.failed,
    });
    let mut open = waves.open;
    if run.status == RunStatus::Halted {
        open = storage::runs::tolerate(&mut tx, id)
            .await?
            .ok_or_else(|| AppError::conflict(ErrorCode::WrongStatus, "the run is no longer halted"))?;
        details["tolerated_failures"] = json!(waves.failed.saturating_sub(wave.map_or(0, |w| w.max_failures)));
    }
    if open == 0 {
        match storage::queue::advance_wave(&mut tx, id, Some(caller.actor.user_id)).await? {
            Some((started, _)) => details["started_wave"] = json!(started + 1),
            // The halted wave was the last: with nothing left to run, the run ends now.
            None => {
                if let Some(status) = storage::queue::end_run(&mut tx, id).await? {
                    details["ended"] = json!(status.as_str());
                    let event = if status == RunStatus::Succeeded {
                        domain::webhooks::WebhookEvent::RunSucceeded
                    } else {
                        domain::webhooks::WebhookEvent::RunFailed
                    };
                    crate::webhooks::notify(&mut tx, hub, id, event).await?;
                }
            }
        }
    }
    record(&mut tx, hub, caller, Action::RunContinue, "run", id, details).await?;
    storage::queue::notify(&mut tx, id).await?;
    let run = storage::runs::get(&mut tx, id).await?;
    tx.commit().await.map_err(db)?;
    Ok(run)
}
