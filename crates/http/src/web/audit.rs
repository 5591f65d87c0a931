//! The audit log page (admins): a filterable table of events, newest first, with cursor pagination, and
//! whether the hash chain checks out (`#chain-status`: intact, or the first broken row and why).

use actix_web::http::StatusCode;
use actix_web::web;
use app::audit_log::{AuditFilter, AuditRecord};
use chrono::{DateTime, NaiveDateTime, Utc};
use domain::ids::UserId;
use domain::values::Email;
use maud::{Markup, html};
use serde::Deserialize;

use crate::startup::AppState;
use crate::web::forms::{self, Form, Input, Problems};
use crate::web::{Page, Section, Viewer, layout, next_link, respond, when};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    object_type: Option<String>,
    object_id: Option<String>,
    from: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

/// An instant typed in a filter: RFC 3339, or a `datetime-local` value (`2026-01-31T14:05`), read as UTC.
fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").ok().map(|t| t.and_utc()))
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").ok().map(|t| t.and_utc()))
}

fn chain_status(verification: &app::audit_log::Verification) -> Markup {
    match verification {
        app::audit_log::Verification::Intact { rows } => html! {
            p.success id="chain-status" role="status" {
                "Chain intact: all " (rows) " events link to the one before and hash to their stored hash."
            }
        },
        app::audit_log::Verification::Broken { row_id, reason } => html! {
            div.problems id="chain-status" role="alert" {
                p { strong { "Chain broken at event " (row_id) ":" } " " (reason) }
            }
        },
    }
}

/// The page of an object an event is about, where the hub has one.
fn object_href(object_type: &str, id: &str) -> Option<String> {
    let base = match object_type {
        "run" => "/runs",
        "migration" => "/migrations",
        "project" => "/projects",
        "environment" => "/admin/environments",
        "target" => "/admin/targets",
        "db_set" => "/admin/db-sets",
        _ => return None,
    };
    // Ids are UUIDs; anything else (a damaged row) is shown, not linked.
    id.parse::<uuid::Uuid>().ok().map(|_| format!("{base}/{id}"))
}

/// An event's details as key–value pairs: text as it is, numbers and flags plainly, lists and objects as
/// compact JSON.
fn details(value: &serde_json::Value) -> Markup {
    let plain = |v: &serde_json::Value| match v {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => "—".to_owned(),
        other => other.to_string(),
    };
    html! {
        @match value {
            serde_json::Value::Object(map) if map.is_empty() => {}
            serde_json::Value::Object(map) => {
                dl.kv {
                    @for (key, v) in map {
                        dt { (key.replace('_', " ")) }
                        dd { @if v.is_object() || v.is_array() { code.details { (plain(v)) } } @else { (plain(v)) } }
                    }
                }
            }
            other => { code.details { (plain(other)) } }
        }
    }
}

fn rows(records: &[AuditRecord]) -> Markup {
    html! {
        table.audit {
            thead { tr {
                th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Action" }
                th scope="col" { "Object" } th scope="col" { "Details" } th scope="col" { "From" }
            } }
            tbody {
                @for r in records {
                    @let e = &r.entry;
                    tr {
                        td.num { (r.id) }
                        td.nowrap { (when(e.occurred_at)) }
                        td {
                            @match e.actor_user_id {
                                Some(user) => a href={ "/audit?actor=" (user) } title="This person's events" { (e.actor_label) },
                                None => (e.actor_label),
                            }
                            br;
                            span.muted { @match e.actor_kind.as_str() { "token" => "via token", "user" => "signed in", other => (other) } }
                        }
                        td { a href={ "/audit?action=" (e.action) } title="Events of this action" { code { (e.action) } } }
                        td {
                            (e.object_type.replace('_', " "))
                            @if let Some(id) = &e.object_id {
                                br;
                                @match object_href(&e.object_type, id) {
                                    Some(href) => a href=(href) { code.mono { (id) } },
                                    None => code.mono { (id) },
                                }
                            }
                        }
                        td { (details(&e.details)) }
                        td { (e.ip.as_deref().unwrap_or("—")) }
                    }
                }
            }
        }
    }
}

/// `GET /audit?actor=&action=&object_type=&object_id=&from=&before=&after=`.
pub(crate) async fn audit(state: web::Data<AppState>, viewer: Viewer, q: web::Query<AuditQuery>) -> Page {
    let q = q.into_inner();
    let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let mut problems = Problems::default();
    let actor = text(&q.actor).and_then(|a| match a.parse::<UserId>() {
        Ok(id) => Some(id),
        Err(_) => {
            problems.add("actor", "this is not a valid user");
            None
        }
    });
    let mut time = |name: &'static str, value: Option<String>| {
        value.and_then(|v| match instant(&v) {
            Some(t) => Some(t),
            None => {
                problems.add(name, "enter a date and time, e.g. 2026-01-31T14:05");
                None
            }
        })
    };
    let from = time("from", text(&q.from));
    let before = time("before", text(&q.before));
    let filter = AuditFilter {
        actor,
        action: text(&q.action),
        object_type: text(&q.object_type),
        object_id: text(&q.object_id),
        from,
        before,
    };
    let after = text(&q.after).and_then(|a| a.parse::<i64>().ok());
    let page = app::audit_log::list(&state.hub, &viewer.caller, &filter, &app::page(after, Some(100)))
        .await
        .map_err(viewer.fail())?;
    let verification = app::audit_log::verify(&state.hub, &viewer.caller).await.map_err(viewer.fail())?;
    let users = app::identity::list_users(&state.hub, &viewer.caller, &app::page::<Email>(None, Some(500)))
        .await
        .map_err(viewer.fail())?
        .items;
    let options: Vec<(String, String)> =
        users.iter().map(|u| (u.id.to_string(), u.email.as_str().to_owned())).collect();
    let kept = [
        ("actor", text(&q.actor).unwrap_or_default()),
        ("action", text(&q.action).unwrap_or_default()),
        ("object_type", text(&q.object_type).unwrap_or_default()),
        ("object_id", text(&q.object_id).unwrap_or_default()),
        ("from", text(&q.from).unwrap_or_default()),
        ("before", text(&q.before).unwrap_or_default()),
    ];
    let pairs: Vec<(&str, &str)> = kept.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let form = Form::with(&pairs);
    let next = page.next.map(|n| n.to_string());
    let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let body = html! {
        h1 { "Audit log" }
        (chain_status(&verification))
        (problems.summary())
        form.filters method="get" action="/audit" {
            (forms::select(&form, &problems, "actor", "Actor", &options, Some("anyone")))
            (forms::input(&form, &problems, "action", "Action or prefix", Input { hint: Some("e.g. run or run.approve"), ..Input::default() }))
            (forms::input(&form, &problems, "object_type", "Object type", Input { hint: Some("e.g. run, target, user"), ..Input::default() }))
            (forms::input(&form, &problems, "object_id", "Object id", Input::default()))
            (forms::input(&form, &problems, "from", "From (UTC)", Input { kind: "datetime-local", ..Input::default() }))
            (forms::input(&form, &problems, "before", "Before (UTC)", Input { kind: "datetime-local", ..Input::default() }))
            button.secondary type="submit" { "Filter" }
            a href="/audit" { "Clear" }
        }
        @if page.items.is_empty() {
            p.empty { "No events match." }
        } @else {
            (rows(&page.items))
            (next_link("/audit", &kept, next))
        }
    };
    Ok(respond(status, layout(&viewer, Section::Audit, "Audit log", body)))
}
