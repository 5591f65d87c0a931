//! `/api/v1` resources of the workflow: inventory, projects, migrations and their versions, runs, audit.
//!
//! Each handler parses the request, calls one use case of the `app` crate and renders its answer; the rules
//! (who may, in which state) live below. Lists are keyset-paginated: `limit` (1 to 500, default 50) and
//! `after`, the opaque `next` cursor of the previous page.

// `#[utoipa::path(params(...))]` expands to paths the lint calls redundant.
#![allow(unused_qualifications)]

use actix_web::{HttpRequest, HttpResponse, web};
use app::AppError;
use chrono::{DateTime, Utc};
use domain::ErrorCode;
use domain::ids::{DbSetId, EnvironmentId, MigrationId, ProjectId, RunId, RunItemId, TargetId, UserId};
use domain::run::{RunItemStatus, RunStatus};
use domain::values::{Name, VersionKey};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::*;
use crate::error::{ApiError, app_error};
use crate::guard::{Authed, request_id};
use crate::openapi::Errors;
use crate::startup::AppState;

type Reply = Result<HttpResponse, ApiError>;

fn fail(req: &HttpRequest) -> impl FnOnce(AppError) -> ApiError + '_ {
    move |e| app_error(&request_id(req), e)
}

/// Parses a page cursor.
fn cursor<K: std::str::FromStr>(after: Option<&str>) -> Result<Option<K>, ApiError> {
    after
        .map(|a| a.parse::<K>())
        .transpose()
        .map_err(|_| ApiError::bad_request(ErrorCode::InvalidCursor, "`after` is not a cursor this list gave out"))
}

/// `limit` and `after` of a list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// The `next` cursor of the previous page.
    pub(crate) after: Option<String>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub(crate) limit: Option<u32>,
}

impl PageParams {
    fn page<K: std::str::FromStr>(&self) -> Result<app::PageRequest<K>, ApiError> {
        Ok(app::page(cursor(self.after.as_deref())?, self.limit))
    }
}

fn created(body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Created().json(body)
}

// --- environments ---

#[utoipa::path(get, path = "/api/v1/environments", tag = "inventory", params(PageParams),
    responses((status = 200, body = List<EnvironmentDto>), Errors))]
pub(crate) async fn list_environments(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PageParams>,
) -> Reply {
    let page = app::inventory::list_environments(&state.hub, &q.page::<Name>()?).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(List::of(&page, EnvironmentDto::from)))
}

#[utoipa::path(post, path = "/api/v1/environments", tag = "inventory",
    request_body = app::inventory::NewEnvironmentInput, responses((status = 201, body = EnvironmentDto), Errors))]
pub(crate) async fn create_environment(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    body: web::Json<app::inventory::NewEnvironmentInput>,
) -> Reply {
    let env = app::inventory::create_environment(&state.hub, &who.0.caller(&req), body.into_inner())
        .await
        .map_err(fail(&req))?;
    Ok(created(EnvironmentDto::from(&env)))
}

#[utoipa::path(get, path = "/api/v1/environments/{id}", tag = "inventory", params(("id" = EnvironmentId, Path)),
    responses((status = 200, body = EnvironmentDto), Errors))]
pub(crate) async fn get_environment(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<EnvironmentId>,
) -> Reply {
    let env = app::inventory::get_environment(&state.hub, *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(EnvironmentDto::from(&env)))
}

#[utoipa::path(patch, path = "/api/v1/environments/{id}", tag = "inventory", params(("id" = EnvironmentId, Path)),
    request_body = app::inventory::EnvironmentPatch, responses((status = 200, body = EnvironmentDto), Errors))]
pub(crate) async fn update_environment(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<EnvironmentId>,
    body: web::Json<app::inventory::EnvironmentPatch>,
) -> Reply {
    let env = app::inventory::update_environment(&state.hub, &who.0.caller(&req), *id, body.into_inner())
        .await
        .map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(EnvironmentDto::from(&env)))
}

/// An environment's maintenance windows: workers claim its runs' items only inside one.
#[utoipa::path(get, path = "/api/v1/environments/{id}/windows", tag = "inventory", params(("id" = EnvironmentId, Path)),
    responses((status = 200, body = WindowsDto), Errors))]
pub(crate) async fn get_windows(state: web::Data<AppState>, req: HttpRequest, id: web::Path<EnvironmentId>) -> Reply {
    let windows = app::windows::windows_of(&state.hub, *id, chrono::Utc::now()).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(WindowsDto::from(&windows)))
}

/// Replaces an environment's maintenance windows (`DAYS HH:MM-HH:MM ZONE` each, e.g. `Sat 02:00-05:00
/// Europe/Berlin`; an empty list removes them). Admins; audited.
#[utoipa::path(put, path = "/api/v1/environments/{id}/windows", tag = "inventory", params(("id" = EnvironmentId, Path)),
    request_body = app::windows::WindowsInput, responses((status = 200, body = WindowsDto), Errors))]
pub(crate) async fn set_windows(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<EnvironmentId>,
    body: web::Json<app::windows::WindowsInput>,
) -> Reply {
    let windows =
        app::windows::set_windows(&state.hub, &who.0.caller(&req), *id, body.into_inner()).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(WindowsDto::from(&windows)))
}

/// An environment's webhooks (admins).
#[utoipa::path(get, path = "/api/v1/environments/{id}/webhooks", tag = "inventory", params(("id" = EnvironmentId, Path)),
    responses((status = 200, body = [WebhookDto]), Errors))]
pub(crate) async fn list_webhooks(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<EnvironmentId>,
) -> Reply {
    let hooks = app::webhooks::list_webhooks(&state.hub, &who.0.caller(&req), *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(hooks.iter().map(WebhookDto::from).collect::<Vec<_>>()))
}

/// Adds a webhook (admins; audited): its signing secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/environments/{id}/webhooks", tag = "inventory", params(("id" = EnvironmentId, Path)),
    request_body = app::webhooks::WebhookInput, responses((status = 201, body = CreatedWebhookDto), Errors))]
pub(crate) async fn create_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<EnvironmentId>,
    body: web::Json<app::webhooks::WebhookInput>,
) -> Reply {
    let made =
        app::webhooks::create_webhook(&state.hub, &who.0.caller(&req), state.keys.as_deref(), *id, body.into_inner())
            .await
            .map_err(fail(&req))?;
    use secrecy::ExposeSecret;
    Ok(created(CreatedWebhookDto {
        webhook: WebhookDto::from(&made.webhook),
        secret: made.secret.expose_secret().to_owned(),
    }))
}

/// Deletes a webhook and its delivery log (admins; audited).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "inventory", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), Errors))]
pub(crate) async fn delete_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<uuid::Uuid>,
) -> Reply {
    app::webhooks::delete_webhook(&state.hub, &who.0.caller(&req), *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::NoContent().finish())
}

/// Queues a test delivery (`webhook.test`) to a webhook (admins; audited); a worker sends it.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "inventory", params(("id" = uuid::Uuid, Path)),
    responses((status = 202, body = WebhookDto), Errors))]
pub(crate) async fn test_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<uuid::Uuid>,
) -> Reply {
    let hook = app::webhooks::test_webhook(&state.hub, &who.0.caller(&req), *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Accepted().json(WebhookDto::from(&hook)))
}

/// The newest deliveries of an environment's webhooks (admins): the delivery log.
#[utoipa::path(get, path = "/api/v1/environments/{id}/webhook-deliveries", tag = "inventory",
    params(("id" = EnvironmentId, Path)), responses((status = 200, body = [DeliveryDto]), Errors))]
pub(crate) async fn webhook_deliveries(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<EnvironmentId>,
) -> Reply {
    let log = app::webhooks::deliveries(&state.hub, &who.0.caller(&req), *id, 100).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(log.iter().map(DeliveryDto::from).collect::<Vec<_>>()))
}

/// Sets how often an environment's targets are checked for schema drift (admins; audited).
#[utoipa::path(put, path = "/api/v1/environments/{id}/drift", tag = "inventory", params(("id" = EnvironmentId, Path)),
    request_body = app::drift::DriftSchedule, responses((status = 204), Errors))]
pub(crate) async fn set_drift_schedule(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<EnvironmentId>,
    body: web::Json<app::drift::DriftSchedule>,
) -> Reply {
    app::drift::set_schedule(&state.hub, &who.0.caller(&req), *id, body.into_inner()).await.map_err(fail(&req))?;
    Ok(HttpResponse::NoContent().finish())
}

/// A target's schema drift: the objects that differ from what the hub's last apply left.
#[utoipa::path(get, path = "/api/v1/targets/{id}/drift", tag = "inventory", params(("id" = TargetId, Path)),
    responses((status = 200, body = DriftDto), Errors))]
pub(crate) async fn get_drift(state: web::Data<AppState>, req: HttpRequest, id: web::Path<TargetId>) -> Reply {
    let drift = app::drift::drift_of(&state.hub, *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(DriftDto::of(*id, drift.as_ref())))
}

/// Accepts a drifted target's schema, as last checked, as its new baseline (admins; audited).
#[utoipa::path(post, path = "/api/v1/targets/{id}/drift/accept", tag = "inventory", params(("id" = TargetId, Path)),
    responses((status = 200, body = DriftDto), Errors))]
pub(crate) async fn accept_drift(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<TargetId>,
) -> Reply {
    let drift = app::drift::accept(&state.hub, &who.0.caller(&req), *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(DriftDto::of(*id, Some(&drift))))
}

// --- targets ---

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TargetQuery {
    environment_id: EnvironmentId,
    /// Only targets whose name contains this text.
    search: Option<String>,
    after: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/targets", tag = "inventory", params(TargetQuery),
    responses((status = 200, body = List<TargetDto>), Errors))]
pub(crate) async fn list_targets(state: web::Data<AppState>, req: HttpRequest, q: web::Query<TargetQuery>) -> Reply {
    let page = app::page(cursor::<Name>(q.after.as_deref())?, q.limit);
    let page = app::inventory::list_targets(&state.hub, q.environment_id, q.search.as_deref(), &page)
        .await
        .map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(List::of(&page, TargetDto::from)))
}

#[utoipa::path(post, path = "/api/v1/targets", tag = "inventory", request_body = app::inventory::NewTargetInput,
    responses((status = 201, body = TargetDto), Errors))]
pub(crate) async fn create_target(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    body: web::Json<app::inventory::NewTargetInput>,
) -> Reply {
    let target =
        app::inventory::create_target(&state.hub, state.keys.as_deref(), &who.0.caller(&req), body.into_inner())
            .await
            .map_err(fail(&req))?;
    Ok(created(TargetDto::from(&target)))
}

#[utoipa::path(get, path = "/api/v1/targets/{id}", tag = "inventory", params(("id" = TargetId, Path)),
    responses((status = 200, body = TargetDto), Errors))]
pub(crate) async fn get_target(state: web::Data<AppState>, req: HttpRequest, id: web::Path<TargetId>) -> Reply {
    let target = app::inventory::get_target(&state.hub, *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(TargetDto::from(&target)))
}

/// Reads the history tables of the hub's projects on the target (reads only; admins; audited): every row,
/// dirty ones with the statement they stopped at and the error.
#[utoipa::path(get, path = "/api/v1/targets/{id}/history", tag = "inventory", params(("id" = TargetId, Path)),
    responses((status = 200, body = TargetHistoryDto), Errors))]
pub(crate) async fn target_history(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<TargetId>,
) -> Reply {
    let caller = who.0.caller(&req);
    let history =
        app::inventory::target_history(&state.hub, &caller, state.keys.as_deref(), *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(TargetHistoryDto::from(&history)))
}

#[utoipa::path(patch, path = "/api/v1/targets/{id}", tag = "inventory", params(("id" = TargetId, Path)),
    request_body = app::inventory::TargetPatch, responses((status = 200, body = TargetDto), Errors))]
pub(crate) async fn update_target(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<TargetId>,
    body: web::Json<app::inventory::TargetPatch>,
) -> Reply {
    let caller = who.0.caller(&req);
    let updated = app::inventory::update_target(&state.hub, state.keys.as_deref(), &caller, *id, body.into_inner())
        .await
        .map_err(fail(&req))?;
    Ok(HttpResponse::Ok()
        .json(TargetDto { secret_dropped: updated.secret_dropped, ..TargetDto::from(&updated.target) }))
}

#[utoipa::path(delete, path = "/api/v1/targets/{id}", tag = "inventory", params(("id" = TargetId, Path)),
    responses((status = 204), Errors))]
pub(crate) async fn delete_target(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<TargetId>,
) -> Reply {
    app::inventory::delete_target(&state.hub, &who.0.caller(&req), *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(put, path = "/api/v1/targets/{id}/secret", tag = "inventory", params(("id" = TargetId, Path)),
    request_body = app::inventory::SecretInput, responses((status = 200, body = TargetDto), Errors))]
pub(crate) async fn set_target_secret(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<TargetId>,
    body: web::Json<app::inventory::SecretInput>,
) -> Reply {
    let target = app::inventory::set_target_secret(
        &state.hub,
        state.keys.as_deref(),
        &who.0.caller(&req),
        *id,
        body.into_inner(),
    )
    .await
    .map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(TargetDto::from(&target)))
}

#[utoipa::path(delete, path = "/api/v1/targets/{id}/secret", tag = "inventory", params(("id" = TargetId, Path)),
    responses((status = 200, body = TargetDto), Errors))]
pub(crate) async fn clear_target_secret(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<TargetId>,
) -> Reply {
    let target = app::inventory::clear_target_secret(&state.hub, &who.0.caller(&req), *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(TargetDto::from(&target)))
}

// --- db sets ---

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DbSetQuery {
    environment_id: Option<EnvironmentId>,
    after: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/db-sets", tag = "inventory", params(DbSetQuery),
    responses((status = 200, body = List<DbSetDto>), Errors))]
pub(crate) async fn list_db_sets(state: web::Data<AppState>, req: HttpRequest, q: web::Query<DbSetQuery>) -> Reply {
    let page = app::page(cursor::<Name>(q.after.as_deref())?, q.limit);
    let page = app::inventory::list_db_sets(&state.hub, q.environment_id, &page).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(List::of(&page, |s| DbSetDto::new(s, None))))
}

#[utoipa::path(post, path = "/api/v1/db-sets", tag = "inventory", request_body = app::inventory::NewDbSetInput,
    responses((status = 201, body = DbSetDto), Errors))]
pub(crate) async fn create_db_set(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    body: web::Json<app::inventory::NewDbSetInput>,
) -> Reply {
    let set =
        app::inventory::create_db_set(&state.hub, &who.0.caller(&req), body.into_inner()).await.map_err(fail(&req))?;
    let (set, members) = app::inventory::get_db_set(&state.hub, set.id).await.map_err(fail(&req))?;
    Ok(created(DbSetDto::new(&set, Some(members))))
}

#[utoipa::path(get, path = "/api/v1/db-sets/{id}", tag = "inventory", params(("id" = DbSetId, Path)),
    responses((status = 200, body = DbSetDto), Errors))]
pub(crate) async fn get_db_set(state: web::Data<AppState>, req: HttpRequest, id: web::Path<DbSetId>) -> Reply {
    let (set, members) = app::inventory::get_db_set(&state.hub, *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(DbSetDto::new(&set, Some(members))))
}

#[utoipa::path(patch, path = "/api/v1/db-sets/{id}", tag = "inventory", params(("id" = DbSetId, Path)),
    request_body = app::inventory::DbSetPatch, responses((status = 200, body = DbSetDto), Errors))]
pub(crate) async fn update_db_set(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<DbSetId>,
    body: web::Json<app::inventory::DbSetPatch>,
) -> Reply {
    let set = app::inventory::update_db_set(&state.hub, &who.0.caller(&req), *id, body.into_inner())
        .await
        .map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(DbSetDto::new(&set, None)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MemberQuery {
    search: Option<String>,
    after: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/db-sets/{id}/members", tag = "inventory",
    params(("id" = DbSetId, Path), MemberQuery), responses((status = 200, body = List<TargetDto>), Errors))]
pub(crate) async fn list_members(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<DbSetId>,
    q: web::Query<MemberQuery>,
) -> Reply {
    let page = app::page(cursor::<Name>(q.after.as_deref())?, q.limit);
    let page = app::inventory::list_members(&state.hub, *id, q.search.as_deref(), &page).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(List::of(&page, TargetDto::from)))
}

#[utoipa::path(post, path = "/api/v1/db-sets/{id}/members", tag = "inventory", params(("id" = DbSetId, Path)),
    request_body = app::inventory::MembershipChange, responses((status = 200, body = MembershipDto), Errors))]
pub(crate) async fn change_members(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<DbSetId>,
    body: web::Json<app::inventory::MembershipChange>,
) -> Reply {
    let r = app::inventory::change_members(&state.hub, &who.0.caller(&req), *id, body.into_inner())
        .await
        .map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(MembershipDto { added: r.added, removed: r.removed, members: r.members }))
}

// --- projects ---

#[utoipa::path(get, path = "/api/v1/projects", tag = "migrations", params(PageParams),
    responses((status = 200, body = List<ProjectDto>), Errors))]
pub(crate) async fn list_projects(state: web::Data<AppState>, req: HttpRequest, q: web::Query<PageParams>) -> Reply {
    let page = app::projects::list_projects(&state.hub, &q.page::<Name>()?).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(List::of(&page, ProjectDto::from)))
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "migrations", request_body = app::projects::NewProjectInput,
    responses((status = 201, body = ProjectDto), Errors))]
pub(crate) async fn create_project(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    body: web::Json<app::projects::NewProjectInput>,
) -> Reply {
    let p =
        app::projects::create_project(&state.hub, &who.0.caller(&req), body.into_inner()).await.map_err(fail(&req))?;
    Ok(created(ProjectDto::from(&p)))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "migrations", params(("id" = ProjectId, Path)),
    responses((status = 200, body = ProjectDto), Errors))]
pub(crate) async fn get_project(state: web::Data<AppState>, req: HttpRequest, id: web::Path<ProjectId>) -> Reply {
    let p = app::projects::get_project(&state.hub, *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(ProjectDto::from(&p)))
}

#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "migrations", params(("id" = ProjectId, Path)),
    request_body = app::projects::ProjectPatch, responses((status = 200, body = ProjectDto), Errors))]
pub(crate) async fn update_project(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<ProjectId>,
    body: web::Json<app::projects::ProjectPatch>,
) -> Reply {
    let p = app::projects::update_project(&state.hub, &who.0.caller(&req), *id, body.into_inner())
        .await
        .map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(ProjectDto::from(&p)))
}

#[utoipa::path(post, path = "/api/v1/projects/{id}/import", tag = "migrations", params(("id" = ProjectId, Path)),
    request_body = app::migrations::ImportInput, responses((status = 200, body = app::migrations::ImportReport), Errors))]
pub(crate) async fn import(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<ProjectId>,
    body: web::Json<app::migrations::ImportInput>,
) -> Reply {
    let caller = who.0.caller(&req);
    let report = app::migrations::import(&state.hub, &caller, state.limits, &state.imports, *id, body.into_inner())
        .await
        .map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(report))
}

// --- migrations ---

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MigrationQuery {
    project_id: ProjectId,
    after: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/migrations", tag = "migrations", params(MigrationQuery),
    responses((status = 200, body = List<MigrationDto>), Errors))]
pub(crate) async fn list_migrations(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<MigrationQuery>,
) -> Reply {
    let page = app::page(cursor::<VersionKey>(q.after.as_deref())?, q.limit);
    let page = app::migrations::list_migrations(&state.hub, q.project_id, &page).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(List::of(&page, |m| MigrationDto::new(m, None))))
}

#[utoipa::path(post, path = "/api/v1/migrations", tag = "migrations", request_body = app::migrations::NewMigrationInput,
    responses((status = 201, body = MigrationCreatedDto), Errors))]
pub(crate) async fn create_migration(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    body: web::Json<app::migrations::NewMigrationInput>,
) -> Reply {
    let (m, v) = app::migrations::create_migration(&state.hub, &who.0.caller(&req), state.limits, body.into_inner())
        .await
        .map_err(fail(&req))?;
    Ok(created(MigrationCreatedDto { migration: MigrationDto::new(&m, Some(&v)), version: VersionDto::from(&v) }))
}

#[utoipa::path(get, path = "/api/v1/migrations/{id}", tag = "migrations", params(("id" = MigrationId, Path)),
    responses((status = 200, body = MigrationDto), Errors))]
pub(crate) async fn get_migration(state: web::Data<AppState>, req: HttpRequest, id: web::Path<MigrationId>) -> Reply {
    let (m, latest) = app::migrations::get_migration(&state.hub, *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(MigrationDto::new(&m, latest.as_ref())))
}

#[utoipa::path(get, path = "/api/v1/migrations/{id}/versions", tag = "migrations",
    params(("id" = MigrationId, Path), PageParams), responses((status = 200, body = List<VersionSummaryDto>), Errors))]
pub(crate) async fn list_versions(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<MigrationId>,
    q: web::Query<PageParams>,
) -> Reply {
    let page = app::migrations::list_versions(&state.hub, *id, &q.page::<u32>()?).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(List::of(&page, VersionSummaryDto::from)))
}

#[utoipa::path(post, path = "/api/v1/migrations/{id}/versions", tag = "migrations", params(("id" = MigrationId, Path)),
    request_body = app::migrations::VersionInput,
    responses((status = 201, body = VersionCreatedDto), (status = 200, body = VersionCreatedDto), Errors))]
pub(crate) async fn create_version(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<MigrationId>,
    body: web::Json<app::migrations::VersionInput>,
) -> Reply {
    let (v, made) =
        app::migrations::create_version(&state.hub, &who.0.caller(&req), state.limits, *id, body.into_inner())
            .await
            .map_err(fail(&req))?;
    let body = VersionCreatedDto { created: made, version: VersionDto::from(&v) };
    Ok(if made { created(body) } else { HttpResponse::Ok().json(body) })
}

#[utoipa::path(get, path = "/api/v1/migrations/{id}/versions/{version}", tag = "migrations",
    params(("id" = MigrationId, Path), ("version" = u32, Path, minimum = 1)),
    responses((status = 200, body = VersionDto), Errors))]
pub(crate) async fn get_version(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(MigrationId, u32)>,
) -> Reply {
    let (id, number) = path.into_inner();
    let v = app::migrations::get_version(&state.hub, id, number).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(VersionDto::from(&v)))
}

// --- runs ---

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RunQuery {
    status: Option<RunStatus>,
    environment_id: Option<EnvironmentId>,
    requested_by: Option<UserId>,
    /// Created at or after this instant (RFC 3339).
    created_from: Option<DateTime<Utc>>,
    /// Created before this instant (RFC 3339).
    created_before: Option<DateTime<Utc>>,
    after: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunQuery),
    responses((status = 200, body = List<RunDto>), Errors))]
pub(crate) async fn list_runs(state: web::Data<AppState>, req: HttpRequest, q: web::Query<RunQuery>) -> Reply {
    let q = q.into_inner();
    let page = app::page(cursor::<RunId>(q.after.as_deref())?, q.limit);
    let filter = app::runs::RunFilter {
        status: q.status,
        environment: q.environment_id,
        requested_by: q.requested_by,
        created_from: q.created_from,
        created_before: q.created_before,
    };
    let page = app::runs::list_runs(&state.hub, &filter, &page).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(List::of(&page, RunDto::from)))
}

/// Requests a run. Send an `Idempotency-Key` header to make retries safe: the same key and request answer
/// with the first run (200 instead of 201).
#[utoipa::path(post, path = "/api/v1/runs", tag = "runs", request_body = app::runs::RunRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 200 printable ASCII characters")),
    responses((status = 201, body = RunDetailDto), (status = 200, body = RunDetailDto), Errors))]
pub(crate) async fn request_run(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    body: web::Json<app::runs::RunRequest>,
) -> Reply {
    let key = match req.headers().get("Idempotency-Key") {
        None => None,
        Some(v) => Some(v.to_str().map(str::to_owned).map_err(|_| {
            ApiError::bad_request(ErrorCode::InvalidIdempotencyKey, "the Idempotency-Key must be printable ASCII")
        })?),
    };
    let r = app::runs::request_run(&state.hub, &who.0.caller(&req), state.keys.as_deref(), body.into_inner(), key)
        .await
        .map_err(fail(&req))?;
    let detail = app::runs::get_run(&state.hub, r.run.id).await.map_err(fail(&req))?;
    let body = RunDetailDto::from(&detail);
    Ok(if r.created { created(body) } else { HttpResponse::Ok().json(body) })
}

#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", params(("id" = RunId, Path)),
    responses((status = 200, body = RunDetailDto), Errors))]
pub(crate) async fn get_run(state: web::Data<AppState>, req: HttpRequest, id: web::Path<RunId>) -> Reply {
    let detail = app::runs::get_run(&state.hub, *id).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(RunDetailDto::from(&detail)))
}

async fn run_reply(state: &AppState, req: &HttpRequest, id: RunId) -> Reply {
    let detail = app::runs::get_run(&state.hub, id).await.map_err(fail(req))?;
    Ok(HttpResponse::Ok().json(RunDetailDto::from(&detail)))
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/approve", tag = "runs", params(("id" = RunId, Path)),
    request_body = app::runs::DecisionInput, responses((status = 200, body = RunDetailDto), Errors))]
pub(crate) async fn approve(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<RunId>,
    body: web::Json<app::runs::DecisionInput>,
) -> Reply {
    app::runs::approve(&state.hub, &who.0.caller(&req), *id, body.into_inner()).await.map_err(fail(&req))?;
    run_reply(&state, &req, *id).await
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/deny", tag = "runs", params(("id" = RunId, Path)),
    request_body = app::runs::DecisionInput, responses((status = 200, body = RunDetailDto), Errors))]
pub(crate) async fn deny(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    id: web::Path<RunId>,
    body: web::Json<app::runs::DecisionInput>,
) -> Reply {
    app::runs::deny(&state.hub, &who.0.caller(&req), *id, body.into_inner()).await.map_err(fail(&req))?;
    run_reply(&state, &req, *id).await
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/execute", tag = "runs", params(("id" = RunId, Path)),
    responses((status = 200, body = RunDetailDto), Errors))]
pub(crate) async fn execute(state: web::Data<AppState>, req: HttpRequest, who: Authed, id: web::Path<RunId>) -> Reply {
    app::runs::execute(&state.hub, &who.0.caller(&req), *id).await.map_err(fail(&req))?;
    run_reply(&state, &req, *id).await
}

#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs", params(("id" = RunId, Path)),
    responses((status = 200, body = RunDetailDto), Errors))]
pub(crate) async fn cancel(state: web::Data<AppState>, req: HttpRequest, who: Authed, id: web::Path<RunId>) -> Reply {
    app::runs::cancel(&state.hub, &who.0.caller(&req), *id).await.map_err(fail(&req))?;
    run_reply(&state, &req, *id).await
}

/// Re-pins a run that has not started to the newest versions of its migrations (after an edit made it
/// stale); it needs approval again.
#[utoipa::path(post, path = "/api/v1/runs/{id}/refresh", tag = "runs", params(("id" = RunId, Path)),
    responses((status = 200, body = RunDetailDto), Errors))]
pub(crate) async fn refresh(state: web::Data<AppState>, req: HttpRequest, who: Authed, id: web::Path<RunId>) -> Reply {
    app::runs::refresh(&state.hub, &who.0.caller(&req), *id).await.map_err(fail(&req))?;
    run_reply(&state, &req, *id).await
}

/// Continues a run's waves: starts the next wave of a run whose waves advance by hand (`awaiting_continue`),
/// or resumes a run a wave halted, tolerating that wave's failures so far. For the roles the environment
/// lets execute runs; audited, refusals too.
#[utoipa::path(post, path = "/api/v1/runs/{id}/continue", tag = "runs", params(("id" = RunId, Path)),
    responses((status = 200, body = RunDetailDto), Errors))]
pub(crate) async fn proceed(state: web::Data<AppState>, req: HttpRequest, who: Authed, id: web::Path<RunId>) -> Reply {
    app::waves::continue_run(&state.hub, &who.0.caller(&req), *id).await.map_err(fail(&req))?;
    run_reply(&state, &req, *id).await
}

/// A new run over the same content for the targets a failed or cancelled run did not finish; the
/// original's approvals carry over.
#[utoipa::path(post, path = "/api/v1/runs/{id}/retry", tag = "runs", params(("id" = RunId, Path)),
    responses((status = 201, body = RunDetailDto), Errors))]
pub(crate) async fn retry(state: web::Data<AppState>, req: HttpRequest, who: Authed, id: web::Path<RunId>) -> Reply {
    let run = app::runs::retry(&state.hub, &who.0.caller(&req), *id).await.map_err(fail(&req))?;
    let detail = app::runs::get_run(&state.hub, run.id).await.map_err(fail(&req))?;
    Ok(created(RunDetailDto::from(&detail)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ItemQuery {
    status: Option<RunItemStatus>,
    after: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/runs/{id}/items", tag = "runs", params(("id" = RunId, Path), ItemQuery),
    responses((status = 200, body = List<RunItemDto>), Errors))]
pub(crate) async fn list_items(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<RunId>,
    q: web::Query<ItemQuery>,
) -> Reply {
    let page = app::page(cursor::<u32>(q.after.as_deref())?, q.limit);
    let page = app::runs::list_items(&state.hub, *id, q.status, &page).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(List::of(&page, RunItemDto::from)))
}

#[utoipa::path(get, path = "/api/v1/runs/{id}/items/{item_id}/logs", tag = "runs",
    params(("id" = RunId, Path), ("item_id" = RunItemId, Path), PageParams),
    responses((status = 200, body = ItemLogsDto), Errors))]
pub(crate) async fn item_logs(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(RunId, RunItemId)>,
    q: web::Query<PageParams>,
) -> Reply {
    let (run, item) = path.into_inner();
    let (item, lines) = app::runs::item_logs(&state.hub, run, item, &q.page::<u32>()?).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok()
        .json(ItemLogsDto { item: RunItemDto::from(&item), lines: List::of(&lines, LogLineDto::from) }))
}

// --- audit ---

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    actor: Option<UserId>,
    /// An action or its prefix: `run` matches `run.approve`.
    action: Option<String>,
    object_type: Option<String>,
    object_id: Option<String>,
    from: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    after: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = List<AuditEventDto>), Errors))]
pub(crate) async fn list_audit(
    state: web::Data<AppState>,
    req: HttpRequest,
    who: Authed,
    q: web::Query<AuditQuery>,
) -> Reply {
    let q = q.into_inner();
    let page = app::page(cursor::<i64>(q.after.as_deref())?, q.limit);
    let filter = app::audit_log::AuditFilter {
        actor: q.actor,
        action: q.action,
        object_type: q.object_type,
        object_id: q.object_id,
        from: q.from,
        before: q.before,
    };
    let page = app::audit_log::list(&state.hub, &who.0.caller(&req), &filter, &page).await.map_err(fail(&req))?;
    Ok(HttpResponse::Ok().json(List::of(&page, AuditEventDto::from)))
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", responses((status = 200, body = VerificationDto), Errors))]
pub(crate) async fn verify_audit(state: web::Data<AppState>, req: HttpRequest, who: Authed) -> Reply {
    let v = app::audit_log::verify(&state.hub, &who.0.caller(&req)).await.map_err(fail(&req))?;
    let dto = match v {
        app::audit_log::Verification::Intact { rows } => {
            VerificationDto { intact: true, rows: Some(rows), broken_row: None, reason: None }
        }
        app::audit_log::Verification::Broken { row_id, reason } => {
            VerificationDto { intact: false, rows: None, broken_row: Some(row_id), reason: Some(reason.to_owned()) }
        }
    };
    Ok(HttpResponse::Ok().json(dto))
}
