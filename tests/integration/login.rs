//! OIDC login against a real provider process (`tests/oidc`): the accepted flows and every forged,
//! expired or mismatched answer, each refused for its own reason with no session and no account made.

use domain::enums::Role;
use migrate_hub_tests::oidc::Provider;
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::json;

use crate::hub::{Hub, HubOptions};

/// The reason a refused login page names.
async fn refusal(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body = response.text().await.unwrap();
    let reason = body
        .split("(reason: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no reason in a {status} page: {body}"))
        .to_owned();
    (status, reason)
}

async fn users(hub: &Hub) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&hub.db.pool).await.unwrap()
}

async fn sessions(hub: &Hub) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sessions").fetch_one(&hub.db.pool).await.unwrap()
}

#[tokio::test]
async fn a_first_login_creates_a_user_and_a_session_and_the_next_login_finds_them() {
    let provider = Provider::start().await;
    let hub = Hub::start(HubOptions::oidc(&provider)).await;
    let browser = hub.browser();
    assert_eq!(browser.me().await.unwrap_err(), StatusCode::UNAUTHORIZED);

    provider.next(json!({ "sub": "alice-sub", "email": "Alice@Example.com", "claims": { "name": "Alice A" } })).await;
    let response = browser.oidc_login().await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    let me = browser.me().await.unwrap();
    assert_eq!(me["user"]["email"], "alice@example.com");
    assert_eq!(me["user"]["display_name"], "Alice A");
    assert_eq!(me["user"]["role"], "user");
    assert_eq!(me["auth"], "session");
    assert_eq!(me["csrf_token"].as_str().unwrap().len(), 64);
    let home = browser.get("/").await;
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("alice@example.com"));

    // The same (issuer, sub) signs in to the same account, even with a new email at the provider.
    let again = hub.browser();
    provider.next(json!({ "sub": "alice-sub", "email": "alice.new@example.com" })).await;
    again.sign_in().await;
    assert_eq!(again.me().await.unwrap()["user"]["id"], me["user"]["id"]);
    assert_eq!(users(&hub).await, 1);
    assert_eq!(hub.audit_actions().await, ["auth.login", "auth.login"]);

    // The PKCE challenge was S256 and the verifier was sent.
    let requests = provider.token_requests().await;
    assert!(requests.iter().all(|r| r["code_verifier_present"] == true && r["outcome"] == "ok"), "{requests:?}");
}

#[tokio::test]
async fn a_pre_provisioned_email_is_bound_on_first_login_and_then_cannot_be_taken_by_another_subject() {
    let provider = Provider::start().await;
    let hub = Hub::start(HubOptions::oidc(&provider)).await;
    let manager = hub.user("boss@example.com", Role::Manager).await;

    provider.next(json!({ "sub": "boss-sub", "email": "boss@example.com" })).await;
    let browser = hub.browser();
    browser.sign_in().await;
    let me = browser.me().await.unwrap();
    assert_eq!(me["user"]["id"], manager.id.to_string());
    assert_eq!(me["user"]["role"], "manager");

    provider.next(json!({ "sub": "someone-else", "email": "boss@example.com" })).await;
    let (status, reason) = refusal(hub.browser().oidc_login().await).await;
    assert_eq!((status, reason.as_str()), (StatusCode::FORBIDDEN, "identity_conflict"));
    assert_eq!(users(&hub).await, 1);
}

#[tokio::test]
async fn forged_expired_and_mismatched_id_tokens_are_refused_each_for_its_reason() {
    let provider = Provider::start().await;
    let hub = Hub::start(HubOptions::oidc(&provider)).await;
    // Discovery happens on the first login start; every case below sees the provider's real keys.
    let cases = [
        ("bad_signature", "signature"),
        ("other_key", "signature"),
        ("alg_none", "signature"),
        ("hs256_pubkey", "signature"),
        ("wrong_iss", "issuer"),
        ("no_iss", "token_response"),
        ("wrong_aud", "audience"),
        ("no_aud", "audience"),
        ("expired", "expired"),
        ("no_iat", "token_response"),
        ("no_sub", "token_response"),
        ("wrong_nonce", "nonce"),
        ("no_nonce", "nonce"),
    ];
    let mut seen = Vec::new();
    for (tamper, _) in cases {
        provider
            .next(json!({ "sub": format!("sub-{tamper}"), "email": "mallory@example.com", "tamper": tamper }))
            .await;
        let browser = hub.browser();
        let (status, reason) = refusal(browser.oidc_login().await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{tamper}");
        assert_eq!(browser.me().await.unwrap_err(), StatusCode::UNAUTHORIZED, "{tamper}: no session");
        seen.push((tamper, reason));
    }
    let expected: Vec<_> = cases.iter().map(|(t, r)| (*t, (*r).to_owned())).collect();
    assert_eq!(seen, expected);
    assert_eq!(users(&hub).await, 0, "no account is made by a refused login");
    assert_eq!(sessions(&hub).await, 0);
    assert!(hub.audit_actions().await.is_empty());
    // Every case reached the token endpoint and was refused by the hub's checks, not before.
    assert_eq!(provider.token_requests().await.len(), cases.len());

    // And the same hub still accepts an honest login.
    provider.next(json!({ "sub": "honest", "email": "honest@example.com" })).await;
    hub.browser().sign_in().await;
}

#[tokio::test]
async fn unverified_emails_disallowed_domains_and_disabled_users_are_refused() {
    let provider = Provider::start().await;
    let hub =
        Hub::start(HubOptions { allowed_domains: vec!["corp.example".into()], ..HubOptions::oidc(&provider) }).await;

    provider.next(json!({ "sub": "u1", "email": "dev@corp.example", "email_verified": false })).await;
    assert_eq!(refusal(hub.browser().oidc_login().await).await.1, "email_unverified");
    provider.next(json!({ "sub": "u2", "email": "dev@elsewhere.example" })).await;
    assert_eq!(refusal(hub.browser().oidc_login().await).await.1, "domain_not_allowed");
    provider.next(json!({ "sub": "u3", "email": "dev@sub.corp.example" })).await;
    assert_eq!(refusal(hub.browser().oidc_login().await).await.1, "domain_not_allowed");
    assert_eq!(users(&hub).await, 0);

    provider.next(json!({ "sub": "u4", "email": "dev@corp.example" })).await;
    let browser = hub.browser();
    browser.sign_in().await;
    let id: domain::ids::UserId = browser.me().await.unwrap()["user"]["id"].as_str().unwrap().parse().unwrap();

    // Disabled: the live session ends on its next request, and a new login is refused.
    let mut conn = hub.db.pool.acquire().await.unwrap();
    storage::users::set_disabled(&mut conn, id, true).await.unwrap();
    assert_eq!(browser.me().await.unwrap_err(), StatusCode::UNAUTHORIZED);
    provider.next(json!({ "sub": "u4", "email": "dev@corp.example" })).await;
    let (status, reason) = refusal(hub.browser().oidc_login().await).await;
    assert_eq!((status, reason.as_str()), (StatusCode::FORBIDDEN, "user_disabled"));
}

#[tokio::test]
async fn wrong_missing_and_replayed_state_and_a_pkce_mismatch_are_refused() {
    let provider = Provider::start().await;
    let hub = Hub::start(HubOptions::oidc(&provider)).await;

    // Wrong state: the callback's state is not the one this browser was given.
    let browser = hub.browser();
    let callback = browser.authorize(&browser.start_login().await).await;
    let forged = replace_param(&callback, "state", "forged-state-value");
    assert_eq!(refusal(browser.callback(&forged).await).await.1, "state_mismatch");
    let without = remove_param(&callback, "state");
    assert_eq!(refusal(hub.browser().callback(&without).await).await.1, "no_login_cookie");

    // A callback in a browser that never started a login (login CSRF) has no pre-login cookie.
    let victim = hub.browser();
    let attacker = hub.browser();
    let attackers_callback = attacker.authorize(&attacker.start_login().await).await;
    assert_eq!(refusal(victim.callback(&attackers_callback).await).await.1, "no_login_cookie");

    // Replayed: a completed login's callback, cookie and all, is refused (state and code are single-use).
    let browser = hub.browser();
    let callback = browser.authorize(&browser.start_login().await).await;
    let state = param(&callback, "state");
    assert_eq!(browser.callback(&callback).await.status(), StatusCode::SEE_OTHER);
    let replay = hub.browser().client.get(&callback).header(COOKIE, format!("mh_login={state}")).send().await.unwrap();
    assert_eq!(refusal(replay).await.1, "state_unknown_used_or_expired");

    // PKCE: a code issued to another login (another verifier) is refused by the provider.
    let a = hub.browser();
    let b = hub.browser();
    let a_callback = a.authorize(&a.start_login().await).await;
    let b_callback = b.authorize(&b.start_login().await).await;
    let injected = replace_param(&a_callback, "code", &param(&b_callback, "code"));
    assert_eq!(refusal(a.callback(&injected).await).await.1, "code_rejected");
    assert_eq!(a.me().await.unwrap_err(), StatusCode::UNAUTHORIZED);
    let requests = provider.token_requests().await;
    let last = requests.last().unwrap();
    assert_eq!(
        (last["outcome"].as_str(), last["code_verifier_present"].as_bool()),
        (Some("invalid_grant"), Some(true))
    );

    // A provider error (the user cancelled) ends the login without a session.
    let browser = hub.browser();
    let callback = browser.authorize(&browser.start_login().await).await;
    let cancelled = replace_param(&remove_param(&callback, "code"), "error", "access_denied");
    assert_eq!(refusal(browser.callback(&cancelled).await).await.1, "provider_error:accessdenied");
}

#[tokio::test]
async fn a_jwks_with_one_unnamed_key_and_a_key_rotated_just_before_signing_are_accepted() {
    let provider = Provider::start().await;
    let hub = Hub::start(HubOptions::oidc(&provider)).await;
    provider.next(json!({ "sub": "s1", "email": "s1@example.com" })).await;
    hub.browser().sign_in().await;

    // The hub has the old JWKS cached; the provider now signs with a key it has never published before.
    provider.rotate(true).await;
    provider.next(json!({ "sub": "s2", "email": "s2@example.com" })).await;
    let browser = hub.browser();
    browser.sign_in().await;
    assert_eq!(browser.me().await.unwrap()["user"]["email"], "s2@example.com");

    provider.single_key_no_kid().await;
    provider.next(json!({ "sub": "s3", "email": "s3@example.com" })).await;
    hub.browser().sign_in().await;
}

fn param(url: &str, name: &str) -> String {
    let url = reqwest::Url::parse(url).unwrap();
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap()
}

fn rebuild(url: &str, edit: impl FnOnce(&mut Vec<(String, String)>)) -> String {
    let mut url = reqwest::Url::parse(url).unwrap();
    let mut pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    edit(&mut pairs);
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

fn replace_param(url: &str, name: &str, value: &str) -> String {
    rebuild(url, |pairs| {
        pairs.retain(|(k, _)| k != name);
        pairs.push((name.to_owned(), value.to_owned()));
    })
}

fn remove_param(url: &str, name: &str) -> String {
    rebuild(url, |pairs| pairs.retain(|(k, _)| k != name))
}
