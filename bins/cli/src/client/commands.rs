//! The client commands: each asks the hub, prints what it answered, and says how it ended.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Api, Failure, encode};
use super::credentials::{self, Credentials};
use super::{ClientCommand, Connection, Exit, Format, watch};

/// What the CLI reads of a run (`GET /api/v1/runs/{id}`); `--format json` prints the whole answer.
#[derive(Debug, Deserialize)]
pub(super) struct RunView {
    pub id: String,
    pub status: String,
    pub project: String,
    pub environment: String,
    pub environment_id: String,
    pub db_set: Option<String>,
    pub target: Option<String>,
    pub direction: String,
    pub content_checksum: String,
    pub risk: Option<String>,
    pub migrations: Vec<MigrationView>,
    pub approval: ApprovalView,
    #[serde(default)]
    pub waves: Option<WavesView>,
}

/// A run's waves, as `GET /api/v1/runs/{id}` shows them.
#[derive(Debug, Deserialize)]
pub(super) struct WavesView {
    pub state: String,
    pub current: u32,
    pub waves: Vec<WaveView>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaveView {
    pub spec: String,
}

impl WavesView {
    /// `, wave 2 of 3 (10%)`, with what the run waits for.
    pub(super) fn describe(&self) -> String {
        let of = self.waves.len();
        let spec = self.waves.get(self.current.saturating_sub(1) as usize).map_or("", |w| w.spec.as_str());
        let wave = format!("wave {} of {of} ({spec})", self.current);
        match self.state.as_str() {
            "awaiting_continue" => format!(", {wave} done: the next wave waits for `migrate-hub continue`"),
            "halted" => format!(
                ", halted at {wave}: more targets failed than it allows; `migrate-hub continue` goes on, `cancel` stops"
            ),
            "not_started" => format!(", in {of} waves"),
            "ended" => String::new(),
            _ => format!(", {wave}"),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct MigrationView {
    pub version_key: String,
    pub name: String,
    pub version_no: u32,
    pub up_checksum: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct ApprovalView {
    pub state: String,
    pub have: u8,
    pub need: u8,
    pub stale: bool,
}

#[derive(Debug, Deserialize)]
struct Named {
    id: String,
    name: String,
}

pub(super) fn parse<T: for<'de> Deserialize<'de>>(value: &Value, what: &str) -> Result<T, Failure> {
    serde_json::from_value(value.clone())
        .map_err(|e| Failure::Transport(format!("the hub's {what} is not what this client reads: {e}")))
}

/// The hub and token to use: `--server`/`MIGRATE_HUB_SERVER` and `MIGRATE_HUB_TOKEN`, else the stored login.
fn connect(connection: &Connection) -> Result<Api, Failure> {
    let stored = credentials::load()?;
    let server = match (&connection.server, &stored) {
        (Some(server), _) => server.trim_end_matches('/').to_owned(),
        (None, Some(stored)) => stored.server.clone(),
        (None, None) => {
            return Err(Failure::Usage(
                "no hub given: pass --server (or set MIGRATE_HUB_SERVER), or run `migrate-hub login --server URL`"
                    .into(),
            ));
        }
    };
    let token = match std::env::var("MIGRATE_HUB_TOKEN").ok().filter(|t| !t.trim().is_empty()) {
        Some(token) => SecretString::from(token.trim().to_owned()),
        None => match stored {
            Some(stored) if stored.server.trim_end_matches('/') == server => stored.token,
            Some(stored) => {
                return Err(Failure::Usage(format!(
                    "the stored login is for {}, not {server}: run `migrate-hub login --server {server}` or set \
                     MIGRATE_HUB_TOKEN",
                    stored.server
                )));
            }
            None => {
                return Err(Failure::Usage(format!(
                    "no token for {server}: set MIGRATE_HUB_TOKEN or run `migrate-hub login --server {server}`"
                )));
            }
        },
    };
    Api::new(&server, token)
}

fn print_json(value: &Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::Transport(e.to_string()))?;
    say!("{text}");
    Ok(())
}

pub(super) async fn run(command: ClientCommand) -> Result<Exit, Failure> {
    match command {
        ClientCommand::Login { connection } => login(&connection).await,
        ClientCommand::Logout => {
            let path = credentials::path()?;
            if credentials::forget()? {
                say!("removed the stored login ({})", path.display());
            } else {
                say!("no stored login ({} does not exist)", path.display());
            }
            Ok(Exit::Succeeded)
        }
        ClientCommand::Push { connection, project, dir, layout, engine, allow_unknown_files } => {
            let api = connect(&connection)?;
            push(&api, connection.format, &project, &dir, layout, engine, allow_unknown_files).await
        }
        ClientCommand::Request {
            connection,
            project,
            env,
            set,
            up_to,
            down_to,
            failure_policy,
            concurrency,
            comment,
            idempotency_key,
            waves,
            advance,
            first_label,
            not_before,
        } => {
            let waves = waves
                .map(|text| domain::waves::parse_list(&text))
                .transpose()
                .map_err(|e| Failure::Usage(format!("--waves: {e}")))?;
            let api = connect(&connection)?;
            let format = connection.format;
            let project = find(&api, "/api/v1/projects", "project", &project).await?;
            let env = find(&api, "/api/v1/environments", "environment", &env).await?;
            let set =
                find(&api, &format!("/api/v1/db-sets?environment_id={}", encode(&env.id)), "db set", &set).await?;
            let mut body = json!({
                "project_id": project.id, "environment_id": env.id, "db_set_id": set.id, "comment": comment,
            });
            if let Some(up_to) = up_to {
                body["up_to"] = json!(up_to);
            }
            if let Some(down_to) = down_to {
                body["direction"] = json!("down");
                body["down_to"] = json!(down_to);
            }
            if let Some(policy) = failure_policy {
                body["failure_policy"] = json!(policy);
            }
            if let Some(limit) = concurrency {
                body["concurrency_limit"] = json!(limit);
            }
            if let Some(waves) = waves {
                body["waves"] = json!(waves);
            }
            if let Some(advance) = advance {
                body["advance"] = json!(advance);
            }
            if let Some(label) = first_label {
                body["first_label"] = json!(label);
            }
            if let Some(at) = not_before {
                body["not_before"] = json!(at);
            }
            let answer: Value = api.post_keyed("/api/v1/runs", &body, idempotency_key.as_deref()).await?;
            let run: RunView = parse(&answer, "run")?;
            if format == Format::Json {
                print_json(&answer)?;
            } else {
                say!(
                    "run {}: {} release of {} to {} in {}",
                    run.id,
                    run.direction,
                    run.project,
                    run.db_set.as_deref().or(run.target.as_deref()).unwrap_or("-"),
                    run.environment
                );
                print_release(&run);
                say!("next: {}", next_step(&run));
            }
            Ok(waiting_or(&run, Exit::Succeeded))
        }
        ClientCommand::Approve { connection, run, comment } => {
            let api = connect(&connection)?;
            let format = connection.format;
            // The approval pins the content shown here: if the run changed since, the hub refuses (409).
            let shown: Value = api.get(&format!("/api/v1/runs/{}", encode(&run))).await?;
            let shown_run: RunView = parse(&shown, "run")?;
            let body = json!({"comment": comment, "content_checksum": shown_run.content_checksum});
            decide(&api, format, &run, "approve", &body).await
        }
        ClientCommand::Deny { connection, run, comment } => {
            let api = connect(&connection)?;
            let format = connection.format;
            decide(&api, format, &run, "deny", &json!({"comment": comment})).await
        }
        ClientCommand::Execute { connection, run, watch: follow } => {
            let api = connect(&connection)?;
            let format = connection.format;
            let answer: Value = api.post(&format!("/api/v1/runs/{}/execute", encode(&run)), &json!({})).await?;
            let view: RunView = parse(&answer, "run")?;
            if follow {
                return watch::follow(&api, format, &view.id, std::time::Duration::from_secs(3600)).await;
            }
            if format == Format::Json {
                print_json(&answer)?;
            } else {
                say!("run {} {}: follow it with `migrate-hub watch {}`", view.id, view.status, view.id);
            }
            Ok(Exit::Succeeded)
        }
        ClientCommand::Refresh { connection, run } => {
            let api = connect(&connection)?;
            let answer: Value = api.post(&format!("/api/v1/runs/{}/refresh", encode(&run)), &json!({})).await?;
            let view: RunView = parse(&answer, "run")?;
            if connection.format == Format::Json {
                print_json(&answer)?;
            } else {
                say!("refreshed run {}: it now pins the newest versions", view.id);
                print_release(&view);
                say!("next: {}", next_step(&view));
            }
            Ok(waiting_or(&view, Exit::Succeeded))
        }
        ClientCommand::Retry { connection, run, watch: follow } => {
            let said = |view: &RunView| format!("run {} retries {run} ({}): {}", view.id, view.status, next_step(view));
            act_and_follow(&connection, &run, "retry", follow, said).await
        }
        ClientCommand::Continue { connection, run, watch: follow } => {
            let said = |view: &RunView| {
                let waves = view.waves.as_ref().map(WavesView::describe).unwrap_or_default();
                format!("run {} {}{waves}", view.id, view.status)
            };
            act_and_follow(&connection, &run, "continue", follow, said).await
        }
        ClientCommand::Cancel { connection, run } => {
            let api = connect(&connection)?;
            let answer: Value = api.post(&format!("/api/v1/runs/{}/cancel", encode(&run)), &json!({})).await?;
            let view: RunView = parse(&answer, "run")?;
            if connection.format == Format::Json {
                print_json(&answer)?;
            } else {
                say!("run {} {}", view.id, view.status);
            }
            Ok(Exit::Succeeded)
        }
        ClientCommand::Watch { connection, run, timeout } => {
            let api = connect(&connection)?;
            let format = connection.format;
            watch::follow(&api, format, &run, std::time::Duration::from_secs(timeout)).await
        }
        ClientCommand::Runs { connection, status, env, limit } => {
            let api = connect(&connection)?;
            let format = connection.format;
            let mut path = format!("/api/v1/runs?limit={}", limit.clamp(1, 500));
            if let Some(status) = status {
                path.push_str(&format!("&status={}", encode(&status)));
            }
            if let Some(env) = env {
                let env = find(&api, "/api/v1/environments", "environment", &env).await?;
                path.push_str(&format!("&environment_id={}", encode(&env.id)));
            }
            let answer: Value = api.get(&path).await?;
            if format == Format::Json {
                print_json(&answer)?;
                return Ok(Exit::Succeeded);
            }
            runs_table(&api, &answer).await?;
            Ok(Exit::Succeeded)
        }
    }
}

/// `POST /api/v1/runs/{run}/{action}`, then follows the run it answers with (`--watch`), or prints it (the
/// API's answer with `--format json`, else the line `said` makes).
async fn act_and_follow(
    connection: &Connection,
    run: &str,
    action: &str,
    follow: bool,
    said: impl Fn(&RunView) -> String,
) -> Result<Exit, Failure> {
    let api = connect(connection)?;
    let answer: Value = api.post(&format!("/api/v1/runs/{}/{action}", encode(run)), &json!({})).await?;
    let view: RunView = parse(&answer, "run")?;
    if follow {
        return watch::follow(&api, connection.format, &view.id, std::time::Duration::from_secs(3600)).await;
    }
    if connection.format == Format::Json {
        print_json(&answer)?;
    } else {
        say!("{}", said(&view));
    }
    Ok(waiting_or(&view, Exit::Succeeded))
}

/// Reads a token from standard input, checks it with the hub (`GET /api/v1/me`) and stores it.
async fn login(connection: &Connection) -> Result<Exit, Failure> {
    let Some(server) = connection.server.as_deref().map(|s| s.trim_end_matches('/').to_owned()) else {
        return Err(Failure::Usage("login needs the hub's address: --server URL (or MIGRATE_HUB_SERVER)".into()));
    };
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!(
            "API token for {server} (make one on {server}/tokens; it is not shown here as you type it on a pipe): "
        );
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|e| Failure::Usage(format!("cannot read the token: {e}")))?;
    let token = line.trim();
    if token.is_empty() {
        return Err(Failure::Usage(
            "no token on standard input (e.g. `echo \"$TOKEN\" | migrate-hub login --server URL`)".into(),
        ));
    }
    let token = SecretString::from(token.to_owned());
    let api = Api::new(&server, token.clone())?;
    let me: Value = api.get("/api/v1/me").await?;
    let path = credentials::store(&Credentials { server: server.clone(), token })?;
    if connection.format == Format::Json {
        print_json(&me["user"])?;
    } else {
        say!(
            "signed in to {server} as {} ({}); the token is kept in {} (readable by you only)",
            me["user"]["email"].as_str().unwrap_or("?"),
            me["user"]["role"].as_str().unwrap_or("?"),
            path.display()
        );
    }
    Ok(Exit::Succeeded)
}

/// The item of `list` whose id or name is `wanted`.
async fn find(api: &Api, list: &str, what: &str, wanted: &str) -> Result<Named, Failure> {
    let items: Vec<Named> = api.all(list).await?;
    let names: Vec<String> = items.iter().map(|i| i.name.clone()).collect();
    items.into_iter().find(|i| i.id == wanted || i.name == wanted).ok_or_else(|| {
        let known = if names.is_empty() { "there are none".to_owned() } else { format!("known: {}", names.join(", ")) };
        Failure::Usage(format!("no {what} named `{wanted}` ({known})"))
    })
}

/// Exit 3 while the run waits for a person (approval, or execution once approved), else `otherwise`.
fn waiting_or(run: &RunView, otherwise: Exit) -> Exit {
    if run.status == "awaiting_approval" { Exit::Waiting } else { otherwise }
}

fn next_step(run: &RunView) -> String {
    match (run.status.as_str(), run.approval.stale) {
        (_, true) => format!(
            "a migration changed since the run was requested: `migrate-hub refresh {}`, then have it approved again",
            run.id
        ),
        ("awaiting_approval", _) => format!(
            "waiting for approval ({} of {}): someone other than the requester runs `migrate-hub approve {}`",
            run.approval.have, run.approval.need, run.id
        ),
        ("approved", _) => format!("approved: `migrate-hub execute {} --watch`", run.id),
        (status, _) => format!("{status}: `migrate-hub watch {}`", run.id),
    }
}

fn print_release(run: &RunView) {
    let count = run.migrations.len();
    say!(
        "{count} migration{}, content checksum {}{}",
        if count == 1 { "" } else { "s" },
        short(&run.content_checksum),
        run.risk.as_deref().map(|r| format!(", review risk {r}")).unwrap_or_default()
    );
    for m in &run.migrations {
        say!("  {} {} (version {}, {})", m.version_key, m.name, m.version_no, short(&m.up_checksum));
    }
}

fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

async fn decide(api: &Api, format: Format, run: &str, verb: &str, body: &Value) -> Result<Exit, Failure> {
    let answer: Value = api.post(&format!("/api/v1/runs/{}/{verb}", encode(run)), body).await?;
    let view: RunView = parse(&answer, "run")?;
    if format == Format::Json {
        print_json(&answer)?;
    } else {
        let done = if verb == "approve" { "approved" } else { "denied" };
        say!(
            "{done} run {} ({} of {}); approval {} ({} of {}), run {}",
            view.id,
            view.project,
            view.environment,
            view.approval.state,
            view.approval.have,
            view.approval.need,
            view.status
        );
        print_release(&view);
        say!("next: {}", next_step(&view));
    }
    Ok(Exit::Succeeded)
}

async fn runs_table(api: &Api, answer: &Value) -> Result<(), Failure> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        status: String,
        project_id: String,
        environment_id: String,
        direction: String,
        created_at: String,
    }
    let rows: Vec<Row> = parse(&answer["items"], "run list")?;
    if rows.is_empty() {
        say!("no runs match");
        return Ok(());
    }
    let projects: Vec<Named> = api.all("/api/v1/projects").await?;
    let environments: Vec<Named> = api.all("/api/v1/environments").await?;
    let name = |list: &[Named], id: &str| list.iter().find(|n| n.id == id).map_or(id.to_owned(), |n| n.name.clone());
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.status.clone(),
                name(&projects, &r.project_id),
                name(&environments, &r.environment_id),
                r.direction.clone(),
                r.created_at.get(..19).unwrap_or(&r.created_at).replace('T', " "),
            ]
        })
        .collect();
    print_table(&["RUN", "STATUS", "PROJECT", "ENVIRONMENT", "DIRECTION", "CREATED (UTC)"], &table);
    Ok(())
}

/// Left-aligned columns, two spaces apart.
pub(super) fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        say!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// `push`: every file under `dir` as the import API takes it.
async fn push(
    api: &Api,
    format: Format,
    project: &str,
    dir: &Path,
    layout: Option<String>,
    engine: Option<String>,
    allow_unknown_files: bool,
) -> Result<Exit, Failure> {
    let project = find(api, "/api/v1/projects", "project", project).await?;
    let mut files = Vec::new();
    let mut unsent = Vec::new();
    collect(dir, dir, &mut files, &mut unsent)?;
    if files.is_empty() {
        return Err(Failure::Usage(format!("{} holds no files to import", dir.display())));
    }
    if !unsent.is_empty() && !allow_unknown_files {
        for (path, why) in &unsent {
            eprintln!("not sent: {path}: {why}");
        }
        return Err(Failure::Usage(format!(
            "{} file(s) cannot be sent (listed above); nothing was imported (--allow-unknown-files imports the rest)",
            unsent.len()
        )));
    }
    let mut body = json!({"files": files, "allow_unknown_files": allow_unknown_files});
    if let Some(layout) = layout {
        body["layout"] = json!(layout);
    }
    if let Some(engine) = engine {
        body["engine"] = json!(engine);
    }
    let path = format!("/api/v1/projects/{}/import", encode(&project.id));
    let report: Value = api.post(&path, &body).await?;
    if format == Format::Json {
        print_json(&report)?;
        return Ok(Exit::Succeeded);
    }
    let keys = |field: &str| -> Vec<String> {
        report[field]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let (created, updated, unchanged) = (keys("created"), keys("updated"), keys("unchanged"));
    say!("{}: layout {}", project.name, report["layout"].as_str().unwrap_or("?"));
    for key in &created {
        say!("  created      {key}");
    }
    for key in &updated {
        say!("  new version  {key}");
    }
    for key in &unchanged {
        say!("  unchanged    {key}");
    }
    let skipped = report["skipped"].as_array().cloned().unwrap_or_default();
    for file in &skipped {
        say!("  not read     {}: {}", file["path"].as_str().unwrap_or("?"), file["reason"].as_str().unwrap_or("?"));
    }
    for (path, why) in &unsent {
        say!("  not sent     {path}: {why}");
    }
    say!(
        "created={} new_versions={} unchanged={} not_read={}",
        created.len(),
        updated.len(),
        unchanged.len(),
        skipped.len() + unsent.len()
    );
    Ok(Exit::Succeeded)
}

/// The files under `dir` (recursively, in name order) as `{path, content}` with `/`-separated paths
/// relative to `root`; hidden entries and files that are not UTF-8 text go to `unsent`, with why.
fn collect(root: &Path, dir: &Path, files: &mut Vec<Value>, unsent: &mut Vec<(String, String)>) -> Result<(), Failure> {
    let unreadable = |e: std::io::Error| Failure::Usage(format!("cannot read {}: {e}", dir.display()));
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map_err(unreadable)?.collect::<Result<_, _>>().map_err(unreadable)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if entry.file_name().to_string_lossy().starts_with('.') {
            unsent.push((relative, "hidden".into()));
            continue;
        }
        let kind = entry.file_type().map_err(unreadable)?;
        if kind.is_dir() {
            collect(root, &path, files, unsent)?;
        } else if kind.is_file() || kind.is_symlink() {
            match std::fs::read(&path) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(content) => files.push(json!({"path": relative, "content": content})),
                    Err(_) => unsent.push((relative, "not UTF-8 text".into())),
                },
                Err(e) => unsent.push((relative, format!("unreadable: {e}"))),
            }
        }
    }
    Ok(())
}

/// `status --target T`: the target's history tables as the hub reads them now (admins).
pub(super) async fn target_status(connection: &Connection, target: &str, env: Option<&str>) -> Result<Exit, Failure> {
    let api = connect(connection)?;
    let id = if uuid_like(target) {
        target.to_owned()
    } else {
        let Some(env) = env else {
            return Err(Failure::Usage(
                "a target by name needs its environment: --env E (or give the target's id)".into(),
            ));
        };
        let env = find(&api, "/api/v1/environments", "environment", env).await?;
        let list = format!("/api/v1/targets?environment_id={}&search={}", encode(&env.id), encode(target));
        find(&api, &list, "target", target).await?.id
    };
    let answer: Value = api.get(&format!("/api/v1/targets/{}/history", encode(&id))).await?;
    if connection.format == Format::Json {
        print_json(&answer)?;
        return Ok(if answer["outcome"] == "failed" { Exit::Failed } else { Exit::Succeeded });
    }
    if answer["outcome"] == "failed" {
        eprintln!(
            "error: cannot read the target ({}): {}",
            answer["stage"].as_str().unwrap_or("?"),
            answer["message"].as_str().unwrap_or("?")
        );
        return Ok(Exit::Failed);
    }
    if let Some(holder) = answer["lock_holder"].as_str() {
        say!("locked by {holder}");
    }
    for table in answer["tables"].as_array().cloned().unwrap_or_default() {
        let name = table["table"].as_str().unwrap_or("?");
        if table["exists"] != true {
            say!("{name}: no such table (nothing applied by the hub)");
            continue;
        }
        say!("{name}:");
        let rows: Vec<[String; 5]> = table["rows"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let text = |k: &str| r[k].as_str().unwrap_or("").to_owned();
                [
                    r["project_name"].as_str().map_or_else(|| text("project_key"), str::to_owned),
                    text("version"),
                    text("name"),
                    text("status"),
                    r["finished_at"].as_str().or(r["started_at"].as_str()).unwrap_or("").replace('T', " "),
                ]
            })
            .collect();
        print_table(&["PROJECT", "VERSION", "NAME", "STATUS", "AT (UTC)"], &rows);
    }
    Ok(Exit::Succeeded)
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}
