//! The route table: every route of the server, each with its declared [`Policy`].
//!
//! Routes are registered only here (a tidy rule forbids it anywhere else in this crate), and only through
//! [`Register::add`], which takes the policy as a required argument and wraps the route in the guard that
//! enforces it. [`table`] lists what [`declare`] registers, so tests can walk every route (the role ×
//! route matrix, the CSRF sweep) without a second list that could drift.

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{FromRequest, Handler, Responder, web};
use domain::enums::Role;

use crate::guard::{self, Policy};
use crate::{api, health, login, metrics, openapi, rest, web as pages};

/// One registered route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub policy: Policy,
}

/// Something routes are declared to.
pub(crate) trait Register {
    fn add<F, Args>(&mut self, method: Method, path: &'static str, policy: Policy, handler: F)
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static;
}

/// Every route of the server.
pub(crate) fn declare(r: &mut impl Register) {
    use Method as M;
    use Policy::{AtLeast, Public, SignedIn};

    r.add(M::GET, "/healthz", Public, health::healthz);
    r.add(M::GET, "/readyz", Public, health::readyz);

    r.add(M::GET, "/login", Public, login::page);
    r.add(M::GET, "/login/oidc", Public, login::start_oidc);
    r.add(M::GET, "/auth/callback", Public, login::callback);
    r.add(M::POST, "/login/password", Public, login::password);
    r.add(M::POST, "/logout", SignedIn, login::logout);

    r.add(M::GET, "/api/v1/me", SignedIn, api::me);
    r.add(M::GET, "/api/v1/tokens", SignedIn, api::list_tokens);
    r.add(M::POST, "/api/v1/tokens", SignedIn, api::create_token);
    r.add(M::DELETE, "/api/v1/tokens/{id}", SignedIn, api::revoke_token);
    r.add(M::GET, "/api/v1/users", AtLeast(Role::Admin), api::list_users);
    r.add(M::POST, "/api/v1/users", AtLeast(Role::Admin), api::create_user);
    r.add(M::PATCH, "/api/v1/users/{id}", AtLeast(Role::Admin), api::update_user);

    r.add(M::GET, "/metrics", Public, metrics::serve);
    r.add(M::GET, "/api/v1/openapi.json", Public, openapi::serve);

    // Inventory: everyone signed in reads it (requesting a run means choosing from it), admins change it.
    let admin = AtLeast(Role::Admin);
    r.add(M::GET, "/api/v1/environments", SignedIn, rest::list_environments);
    r.add(M::POST, "/api/v1/environments", admin, rest::create_environment);
    r.add(M::GET, "/api/v1/environments/{id}", SignedIn, rest::get_environment);
    r.add(M::PATCH, "/api/v1/environments/{id}", admin, rest::update_environment);
    r.add(M::GET, "/api/v1/environments/{id}/windows", SignedIn, rest::get_windows);
    r.add(M::PUT, "/api/v1/environments/{id}/windows", admin, rest::set_windows);
    r.add(M::GET, "/api/v1/environments/{id}/webhooks", admin, rest::list_webhooks);
    r.add(M::PUT, "/api/v1/environments/{id}/drift", admin, rest::set_drift_schedule);
    r.add(M::GET, "/api/v1/targets/{id}/drift", SignedIn, rest::get_drift);
    r.add(M::POST, "/api/v1/targets/{id}/drift/accept", admin, rest::accept_drift);
    r.add(M::POST, "/api/v1/environments/{id}/webhooks", admin, rest::create_webhook);
    r.add(M::GET, "/api/v1/environments/{id}/webhook-deliveries", admin, rest::webhook_deliveries);
    r.add(M::DELETE, "/api/v1/webhooks/{id}", admin, rest::delete_webhook);
    r.add(M::POST, "/api/v1/webhooks/{id}/test", admin, rest::test_webhook);
    r.add(M::GET, "/api/v1/targets", SignedIn, rest::list_targets);
    r.add(M::POST, "/api/v1/targets", admin, rest::create_target);
    r.add(M::GET, "/api/v1/targets/{id}", SignedIn, rest::get_target);
    r.add(M::PATCH, "/api/v1/targets/{id}", admin, rest::update_target);
    r.add(M::DELETE, "/api/v1/targets/{id}", admin, rest::delete_target);
    r.add(M::GET, "/api/v1/targets/{id}/history", admin, rest::target_history);
    r.add(M::PUT, "/api/v1/targets/{id}/secret", admin, rest::set_target_secret);
    r.add(M::DELETE, "/api/v1/targets/{id}/secret", admin, rest::clear_target_secret);
    r.add(M::GET, "/api/v1/db-sets", SignedIn, rest::list_db_sets);
    r.add(M::POST, "/api/v1/db-sets", admin, rest::create_db_set);
    r.add(M::GET, "/api/v1/db-sets/{id}", SignedIn, rest::get_db_set);
    r.add(M::PATCH, "/api/v1/db-sets/{id}", admin, rest::update_db_set);
    r.add(M::GET, "/api/v1/db-sets/{id}/members", SignedIn, rest::list_members);
    r.add(M::POST, "/api/v1/db-sets/{id}/members", admin, rest::change_members);

    // Projects are created by managers; migrations are authored by anyone.
    r.add(M::GET, "/api/v1/projects", SignedIn, rest::list_projects);
    r.add(M::POST, "/api/v1/projects", AtLeast(Role::Manager), rest::create_project);
    r.add(M::GET, "/api/v1/projects/{id}", SignedIn, rest::get_project);
    r.add(M::PATCH, "/api/v1/projects/{id}", AtLeast(Role::Manager), rest::update_project);
    r.add(M::POST, "/api/v1/projects/{id}/import", SignedIn, rest::import);
    r.add(M::GET, "/api/v1/migrations", SignedIn, rest::list_migrations);
    r.add(M::POST, "/api/v1/migrations", SignedIn, rest::create_migration);
    r.add(M::GET, "/api/v1/migrations/{id}", SignedIn, rest::get_migration);
    r.add(M::GET, "/api/v1/migrations/{id}/versions", SignedIn, rest::list_versions);
    r.add(M::POST, "/api/v1/migrations/{id}/versions", SignedIn, rest::create_version);
    r.add(M::GET, "/api/v1/migrations/{id}/versions/{version}", SignedIn, rest::get_version);

    // Runs: who may approve, execute or cancel which run is `domain::policy`'s decision, made on the run.
    r.add(M::GET, "/api/v1/runs", SignedIn, rest::list_runs);
    r.add(M::POST, "/api/v1/runs", SignedIn, rest::request_run);
    r.add(M::GET, "/api/v1/runs/{id}", SignedIn, rest::get_run);
    r.add(M::POST, "/api/v1/runs/{id}/approve", SignedIn, rest::approve);
    r.add(M::POST, "/api/v1/runs/{id}/deny", SignedIn, rest::deny);
    r.add(M::POST, "/api/v1/runs/{id}/execute", SignedIn, rest::execute);
    r.add(M::POST, "/api/v1/runs/{id}/cancel", SignedIn, rest::cancel);
    r.add(M::POST, "/api/v1/runs/{id}/refresh", SignedIn, rest::refresh);
    r.add(M::POST, "/api/v1/runs/{id}/retry", SignedIn, rest::retry);
    r.add(M::POST, "/api/v1/runs/{id}/continue", SignedIn, rest::proceed);
    r.add(M::GET, "/api/v1/runs/{id}/items", SignedIn, rest::list_items);
    r.add(M::GET, "/api/v1/runs/{id}/items/{item_id}/logs", SignedIn, rest::item_logs);

    r.add(M::GET, "/api/v1/audit", admin, rest::list_audit);
    r.add(M::GET, "/api/v1/audit/verify", admin, rest::verify_audit);
    r.add(M::GET, "/api/v1/audit/head", admin, api::audit_head);

    // The web UI: pages over the same use cases. The static files are public (the login page uses them).
    r.add(M::GET, "/static/app.css", Public, pages::stylesheet);
    r.add(M::GET, "/static/live.js", Public, pages::script);
    r.add(M::GET, "/", SignedIn, pages::dashboard);
    r.add(M::GET, "/projects", SignedIn, pages::projects);
    r.add(M::POST, "/projects", AtLeast(Role::Manager), pages::create_project);
    r.add(M::GET, "/projects/{id}/import", SignedIn, pages::import_page);
    r.add(M::POST, "/projects/{id}/import", SignedIn, pages::import_upload);
    r.add(M::GET, "/projects/{id}", SignedIn, pages::project);
    r.add(M::POST, "/projects/{id}", AtLeast(Role::Manager), pages::update_project);
    r.add(M::GET, "/migrations", SignedIn, pages::migrations);
    r.add(M::GET, "/migrations/new", SignedIn, pages::new_migration);
    r.add(M::POST, "/migrations/new", SignedIn, pages::create_migration);
    r.add(M::GET, "/migrations/{id}", SignedIn, pages::migration);
    r.add(M::GET, "/migrations/{id}/versions/new", SignedIn, pages::new_version);
    r.add(M::POST, "/migrations/{id}/versions/new", SignedIn, pages::create_version);
    r.add(M::GET, "/runs", SignedIn, pages::runs);
    r.add(M::GET, "/runs/new", SignedIn, pages::new_run);
    r.add(M::POST, "/runs/new", SignedIn, pages::create_run);
    r.add(M::GET, "/runs/{id}", SignedIn, pages::run);
    r.add(M::GET, "/runs/{id}/live", SignedIn, pages::run_live);
    r.add(M::POST, "/runs/{id}/approve", SignedIn, pages::approve);
    r.add(M::POST, "/runs/{id}/deny", SignedIn, pages::deny);
    r.add(M::POST, "/runs/{id}/execute", SignedIn, pages::execute);
    r.add(M::POST, "/runs/{id}/cancel", SignedIn, pages::cancel);
    r.add(M::POST, "/runs/{id}/refresh", SignedIn, pages::refresh);
    r.add(M::POST, "/runs/{id}/retry", SignedIn, pages::retry);
    r.add(M::POST, "/runs/{id}/continue", SignedIn, pages::proceed);
    r.add(M::GET, "/runs/{id}/items/{item_id}", SignedIn, pages::item_logs);

    // Web UI: inventory, users and the audit log for admins; everyone's own tokens.
    r.add(M::GET, "/admin/environments", admin, pages::environments_list);
    r.add(M::POST, "/admin/environments", admin, pages::create_environment);
    r.add(M::GET, "/admin/environments/{id}", admin, pages::environment);
    r.add(M::POST, "/admin/environments/{id}", admin, pages::update_environment);
    r.add(M::POST, "/admin/environments/{id}/windows", admin, pages::update_windows);
    r.add(M::POST, "/admin/environments/{id}/webhooks", admin, pages::create_webhook);
    r.add(M::POST, "/admin/webhooks/{id}/test", admin, pages::test_webhook);
    r.add(M::POST, "/admin/webhooks/{id}/delete", admin, pages::delete_webhook);
    r.add(M::POST, "/admin/targets/{id}/drift/accept", admin, pages::accept_drift);
    r.add(M::POST, "/admin/environments/{id}/drift", admin, pages::update_drift);
    r.add(M::GET, "/admin/targets", admin, pages::targets);
    r.add(M::POST, "/admin/targets", admin, pages::create_target);
    r.add(M::GET, "/admin/targets/{id}", admin, pages::target);
    r.add(M::POST, "/admin/targets/{id}", admin, pages::update_target);
    r.add(M::POST, "/admin/targets/{id}/secret", admin, pages::set_secret);
    r.add(M::POST, "/admin/targets/{id}/secret/clear", admin, pages::clear_secret);
    r.add(M::POST, "/admin/targets/{id}/delete", admin, pages::delete_target);
    r.add(M::POST, "/admin/targets/{id}/test", admin, pages::test_connection);
    r.add(M::POST, "/admin/targets/{id}/history", admin, pages::read_history);
    r.add(M::POST, "/admin/targets/{id}/request", admin, pages::request_action);
    r.add(M::GET, "/admin/db-sets", admin, pages::db_sets);
    r.add(M::POST, "/admin/db-sets", admin, pages::create_db_set);
    r.add(M::GET, "/admin/db-sets/{id}", admin, pages::db_set);
    r.add(M::POST, "/admin/db-sets/{id}", admin, pages::update_db_set);
    r.add(M::POST, "/admin/db-sets/{id}/members", admin, pages::change_members);
    r.add(M::GET, "/admin/users", admin, pages::users);
    r.add(M::POST, "/admin/users", admin, pages::create_user);
    r.add(M::POST, "/admin/users/{id}", admin, pages::update_user);
    r.add(M::GET, "/admin/users/{id}/tokens", admin, pages::user_tokens);
    r.add(M::POST, "/admin/users/{id}/tokens/{token}/revoke", admin, pages::revoke_user_token);
    r.add(M::GET, "/tokens", SignedIn, pages::tokens);
    r.add(M::POST, "/tokens", SignedIn, pages::create_token);
    r.add(M::POST, "/tokens/{id}/revoke", SignedIn, pages::revoke_token);
    r.add(M::GET, "/audit", admin, pages::audit);
}

/// Every route with its policy, in declaration order.
pub fn table() -> Vec<RouteSpec> {
    struct Recorder(Vec<RouteSpec>);
    impl Register for Recorder {
        fn add<F, Args>(&mut self, method: Method, path: &'static str, policy: Policy, _handler: F)
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            self.0.push(RouteSpec { method, path, policy });
        }
    }
    let mut recorder = Recorder(Vec::new());
    declare(&mut recorder);
    recorder.0
}

/// Registers every route on the app, each wrapped in the guard with its policy.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    struct Configurer(Vec<(&'static str, Vec<actix_web::Route>)>);
    impl Register for Configurer {
        fn add<F, Args>(&mut self, method: Method, path: &'static str, policy: Policy, handler: F)
        where
            F: Handler<Args>,
            Args: FromRequest + 'static,
            F::Output: Responder + 'static,
        {
            let route =
                web::method(method).to(handler).wrap(from_fn(move |req, next| guard::enforce(policy, req, next)));
            match self.0.iter_mut().find(|(p, _)| *p == path) {
                Some((_, routes)) => routes.push(route),
                None => self.0.push((path, vec![route])),
            }
        }
    }
    let mut configurer = Configurer(Vec::new());
    declare(&mut configurer);
    for (path, routes) in configurer.0 {
        let resource = routes.into_iter().fold(web::resource(path), |resource, route| resource.route(route));
        cfg.service(resource);
    }
}
