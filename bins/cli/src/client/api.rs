//! The hub's REST API over HTTP: bearer token, JSON in and out, the API's errors kept whole.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Exit;

/// Why a client command could not do what was asked.
#[derive(Debug)]
pub enum Failure {
    /// The hub answered with an error: its status, stable code and message.
    Refused { status: StatusCode, code: String, message: String },
    /// Bad usage found before asking the hub (a name that matches nothing, an unreadable directory…).
    Usage(String),
    /// The hub could not be reached or answered something that is not the API.
    Transport(String),
}

impl Failure {
    pub fn exit(&self) -> Exit {
        match self {
            Failure::Refused { .. } | Failure::Usage(_) => Exit::Refused,
            Failure::Transport(_) => Exit::Failed,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused { status, code, message } => {
                write!(f, "{code}: {message} (HTTP {})", status.as_u16())
            }
            Failure::Usage(message) | Failure::Transport(message) => f.write_str(message),
        }
    }
}

/// A client of one hub with one token.
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: SecretString,
}

impl Api {
    pub fn new(base: &str, token: SecretString) -> Result<Self, Failure> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Failure::Usage(format!("the server must be an http:// or https:// address, not `{base}`")));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("migrate-hub-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(60))
            // A redirect would send the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Failure::Transport(format!("cannot build the HTTP client: {e}")))?;
        Ok(Api { http, base, token })
    }

    #[cfg(test)]
    fn base(&self) -> &str {
        &self.base
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &Value) -> Result<T, Failure> {
        self.send(Method::POST, path, Some(body), None).await
    }

    pub async fn post_keyed<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<T, Failure> {
        self.send(Method::POST, path, Some(body), idempotency_key).await
    }

    /// Every item of a paged list (`{"items", "next"}`); `path` may carry a query already.
    pub async fn all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, Failure> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        let joiner = if path.contains('?') { '&' } else { '?' };
        loop {
            let page_path = match &after {
                None => format!("{path}{joiner}limit=500"),
                Some(cursor) => format!("{path}{joiner}limit=500&after={}", encode(cursor)),
            };
            let page: Page<T> = self.get(&page_path).await?;
            items.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(items),
            }
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<T, Failure> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(self.token.expose_secret());
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Transport(format!("cannot reach the hub at {}: {}", self.base, chain(&e))))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::Transport(format!("the hub's answer was cut off ({status}): {}", chain(&e))))?;
        if !status.is_success() {
            return Err(refused(status, &text));
        }
        serde_json::from_str(&text).map_err(|e| {
            Failure::Transport(format!(
                "the hub at {} answered {status} with something that is not the API: {e}",
                self.base
            ))
        })
    }
}

/// An error with its causes, `outer: inner: innermost` (reqwest's own message leaves out why).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[derive(serde::Deserialize)]
struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
}

/// The API's error body, `{"error": {"code", "message", "request_id"?}}`, as a [`Failure`].
fn refused(status: StatusCode, body: &str) -> Failure {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str).map(str::to_owned);
    match (field("code"), field("message")) {
        (Some(code), Some(message)) => {
            let message = match field("request_id") {
                Some(id) => format!("{message} (request id {id})"),
                None => message,
            };
            Failure::Refused { status, code, message }
        }
        _ => Failure::Refused {
            status,
            code: format!("http_{}", status.as_u16()),
            message: "the hub refused the request without an API error body (is --server the hub's address?)".into(),
        },
    }
}

/// Percent-encodes a query value (cursors are base64-ish text).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_keeps_the_code_message_and_request_id() {
        let body = r#"{"error":{"code":"not_approver","message":"you requested this run","request_id":"r-1"}}"#;
        let failure = refused(StatusCode::FORBIDDEN, body);
        assert_eq!(failure.to_string(), "not_approver: you requested this run (request id r-1) (HTTP 403)");
        assert_eq!(failure.exit(), Exit::Refused);
    }

    #[test]
    fn an_answer_that_is_not_the_api_says_so() {
        let failure = refused(StatusCode::NOT_FOUND, "<html>nginx</html>");
        assert!(failure.to_string().starts_with("http_404: the hub refused"), "{failure}");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("a b/c+d=="), "a%20b%2Fc%2Bd%3D%3D");
    }

    #[test]
    fn only_http_addresses_are_servers() {
        let token = SecretString::from("t");
        assert!(matches!(Api::new("hub.example.com", token.clone()), Err(Failure::Usage(_))));
        assert_eq!(
            Api::new("https://hub.example.com/", token).map(|a| a.base().to_owned()).ok().as_deref(),
            Some("https://hub.example.com")
        );
    }
}
