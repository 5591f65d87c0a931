//! The OpenAPI 3.1 document of `/api/v1`, served at `/api/v1/openapi.json`.
//!
//! It is derived from the handlers' `#[utoipa::path]` annotations and the request and response types, so
//! it cannot describe a shape the server does not produce; a test checks that its operations are exactly
//! the `/api/v1` routes of `routes::table()`, and schemathesis checks the server against it.

// `#[openapi(components(schemas(...)))]` expands to paths the lint calls redundant.
#![allow(unused_qualifications)]

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

use crate::{api, rest};

/// The body of every error response.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // a schema only: error.rs builds the bytes
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorDetail {
    /// A stable code (`domain::ErrorCode`, listed in the README's "Error codes"), e.g. `self_approval`,
    /// `checksum_mismatch`, `invalid_json`.
    code: String,
    /// What was wrong, for people.
    message: String,
    /// The request field at fault, on 422.
    field: Option<String>,
    /// On 5xx: quote it when reporting the problem.
    request_id: Option<String>,
}

/// The error answers any operation may give.
pub(crate) struct Errors;

impl IntoResponses for Errors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            ("400", "malformed request: bad JSON, unknown field, bad parameter"),
            ("401", "no valid credentials"),
            ("403", "not allowed for this caller"),
            ("404", "no such object"),
            ("409", "conflicts with the current state"),
            ("413", "body or SQL over its size limit"),
            ("422", "a value is invalid; `field` names it"),
            ("429", "too many attempts"),
            ("500", "internal error; the body carries a request id"),
            ("503", "the tool database is unavailable"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new().schema(Some(ErrorBody::schema())).build();
            let response = ResponseBuilder::new().description(description).content("application/json", content).build();
            (status.to_owned(), RefOr::T(response))
        })
        .collect()
    }
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        openapi.security = Some(vec![SecurityRequirement::new("token", Vec::<String>::new())]);
        // OpenAPI requires a description on every response; the success ones say their status.
        for item in openapi.paths.paths.values_mut() {
            for op in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                for (status, response) in op.responses.responses.iter_mut() {
                    if let RefOr::T(response) = response
                        && response.description.is_empty()
                    {
                        response.description = match status.as_str() {
                            "201" => "created",
                            "204" => "done; no content",
                            _ => "success",
                        }
                        .to_owned();
                    }
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "migrate-hub", description = "Schema changes for fleets of Postgres and MySQL databases: \
        author, request, approve, execute. Authenticate with `Authorization: Bearer <token>` \
        (`migrate-hub-server create-admin`, or `POST /api/v1/tokens` from a signed-in session)."),
    modifiers(&Security),
    components(schemas(ErrorBody, ErrorDetail)),
    paths(
        api::me, api::list_tokens, api::create_token, api::revoke_token,
        api::list_users, api::create_user, api::update_user,
        rest::list_environments, rest::create_environment, rest::get_environment, rest::update_environment,
        rest::get_windows, rest::set_windows, rest::list_webhooks, rest::create_webhook, rest::delete_webhook,
        rest::test_webhook, rest::webhook_deliveries, rest::set_drift_schedule, rest::get_drift, rest::accept_drift,
        rest::list_targets, rest::create_target, rest::get_target, rest::update_target, rest::delete_target,
        rest::target_history,
        rest::set_target_secret, rest::clear_target_secret,
        rest::list_db_sets, rest::create_db_set, rest::get_db_set, rest::update_db_set,
        rest::list_members, rest::change_members,
        rest::list_projects, rest::create_project, rest::get_project, rest::update_project, rest::import,
        rest::list_migrations, rest::create_migration, rest::get_migration,
        rest::list_versions, rest::create_version, rest::get_version,
        rest::list_runs, rest::request_run, rest::get_run, rest::approve, rest::deny, rest::execute,
        rest::cancel, rest::refresh, rest::retry, rest::proceed, rest::list_items, rest::item_logs,
        rest::list_audit, rest::verify_audit, api::audit_head,
    ),
)]
struct Document;

/// The document as JSON.
pub fn document() -> utoipa::openapi::OpenApi {
    Document::openapi()
}

/// `GET /api/v1/openapi.json`.
pub(crate) async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(document())
}
