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
use crate::{api, health, login};

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

    r.add(M::GET, "/", Public, login::home);
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
