//! `watch`: follows a run until it ends. On a terminal, a progress bar for the run and one per target
//! (`indicatif`); otherwise a plain line whenever the run or a target changes. Ends with a table of every
//! target.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use serde_json::Value;

use super::api::{Api, Failure, encode};
use super::commands::{RunView, WavesView, parse, print_table};
use super::{Exit, Format};

/// How often the hub is asked.
const POLL: Duration = Duration::from_millis(500);
/// Above this many targets a terminal shows only the run's bar and the targets that failed.
const BARS: usize = 30;

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
struct Item {
    id: String,
    target_id: String,
    status: String,
    attempts: u32,
    migrations_done: u32,
    migrations_total: Option<u32>,
    statements_done: u32,
    statements_total: Option<u32>,
    duration_ms: Option<u64>,
    error_code: Option<String>,
    error_message: Option<String>,
}

impl Item {
    fn ended(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "skipped" | "cancelled")
    }

    /// "migration 3 of 7, statement 4 of 10", or how it ended.
    fn progress(&self) -> String {
        let total = self.migrations_total.map_or_else(|| "?".to_owned(), |t| t.to_string());
        match self.status.as_str() {
            "pending" => "waiting for a worker".to_owned(),
            "running" => {
                let statement = match self.statements_total {
                    Some(of) if of > 0 => format!(", statement {} of {of}", self.statements_done),
                    _ => String::new(),
                };
                format!(
                    "migration {} of {total}{statement}",
                    (self.migrations_done + 1).min(self.migrations_total.unwrap_or(u32::MAX))
                )
            }
            "failed" => format!(
                "failed at migration {} of {total}: {}",
                self.migrations_done + 1,
                self.error_message.as_deref().or(self.error_code.as_deref()).unwrap_or("no reason recorded")
            ),
            status => format!("{status}, {} of {total} migrations", self.migrations_done),
        }
    }
}

fn terminal(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled" | "denied")
}

/// Follows run `run` until it ends or `timeout` passes.
pub(super) async fn follow(api: &Api, format: Format, run: &str, timeout: Duration) -> Result<Exit, Failure> {
    let deadline = Instant::now() + timeout;
    let live = format == Format::Text && std::io::stdout().is_terminal();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut view = Screen::new(live);
    let mut said = String::new();
    loop {
        let detail: Value = api.get(&format!("/api/v1/runs/{}", encode(run))).await?;
        let current: RunView = parse(&detail, "run")?;
        if names.is_empty() {
            names = target_names(api, &current.environment_id).await?;
        }
        let items: Vec<Item> = api.all(&format!("/api/v1/runs/{}/items", encode(&current.id))).await?;
        let state = match current.status.as_str() {
            "awaiting_approval" => {
                format!("waiting for approval ({} of {})", current.approval.have, current.approval.need)
            }
            "approved" => "approved, waiting for someone to execute it".to_owned(),
            status => format!("{status}{}", current.waves.as_ref().map(WavesView::describe).unwrap_or_default()),
        };
        if format == Format::Text {
            view.show(&current, &state, &items, &names, &mut said);
        }
        if terminal(&current.status) {
            view.clear();
            if format == Format::Json {
                let mut detail = detail;
                detail["item_list"] =
                    serde_json::to_value(items.iter().map(|i| item_json(i, &names)).collect::<Vec<_>>())
                        .map_err(|e| Failure::Transport(e.to_string()))?;
                say!("{}", serde_json::to_string_pretty(&detail).map_err(|e| Failure::Transport(e.to_string()))?);
            } else {
                final_table(&current, &items, &names);
            }
            return Ok(if current.status == "succeeded" { Exit::Succeeded } else { Exit::Failed });
        }
        // A run that waits for a person mid-rollout: say so now rather than at the timeout.
        if let Some(waves) =
            current.waves.as_ref().filter(|w| matches!(w.state.as_str(), "halted" | "awaiting_continue"))
        {
            view.clear();
            if format == Format::Json {
                say!("{}", serde_json::to_string_pretty(&detail).map_err(|e| Failure::Transport(e.to_string()))?);
            } else {
                final_table(&current, &items, &names);
                say!("run {} {state}", current.id);
            }
            return Ok(if waves.state == "halted" { Exit::Failed } else { Exit::Waiting });
        }
        if Instant::now() >= deadline {
            view.clear();
            let waiting = matches!(current.status.as_str(), "awaiting_approval" | "approved");
            if format == Format::Json {
                say!("{}", serde_json::to_string_pretty(&detail).map_err(|e| Failure::Transport(e.to_string()))?);
            } else {
                say!("run {} still {state} after {} s; stopped watching", current.id, timeout.as_secs());
            }
            return Ok(if waiting { Exit::Waiting } else { Exit::Failed });
        }
        // A big run's items take a page per 500 targets: ask less often.
        tokio::time::sleep(if items.len() > 500 { POLL * 4 } else { POLL }).await;
    }
}

fn item_json(item: &Item, names: &HashMap<String, String>) -> Value {
    serde_json::json!({
        "id": item.id, "target_id": item.target_id, "target": names.get(&item.target_id), "status": item.status,
        "attempts": item.attempts, "migrations_done": item.migrations_done, "migrations_total": item.migrations_total,
        "duration_ms": item.duration_ms, "error_code": item.error_code, "error_message": item.error_message,
    })
}

/// Target names of the environment, by id (a target deleted since shows by id).
async fn target_names(api: &Api, environment: &str) -> Result<HashMap<String, String>, Failure> {
    #[derive(Deserialize)]
    struct Named {
        id: String,
        name: String,
    }
    let targets: Vec<Named> = api.all(&format!("/api/v1/targets?environment_id={}", encode(environment))).await?;
    Ok(targets.into_iter().map(|t| (t.id, t.name)).collect())
}

fn name<'a>(names: &'a HashMap<String, String>, id: &'a str) -> &'a str {
    names.get(id).map_or(id, String::as_str)
}

fn final_table(run: &RunView, items: &[Item], names: &HashMap<String, String>) {
    let rows: Vec<[String; 5]> = items
        .iter()
        .map(|i| {
            [
                name(names, &i.target_id).to_owned(),
                i.status.clone(),
                format!(
                    "{}/{}",
                    i.migrations_done,
                    i.migrations_total.map_or_else(|| "?".to_owned(), |t| t.to_string())
                ),
                i.duration_ms.map_or_else(String::new, |ms| format!("{ms} ms")),
                i.error_message.clone().or_else(|| i.error_code.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["TARGET", "STATUS", "MIGRATIONS", "DURATION", "ERROR"], &rows);
    let count = |s: &str| items.iter().filter(|i| i.status == s).count();
    say!(
        "run {} {}: succeeded={} skipped={} failed={} cancelled={}",
        run.id,
        run.status,
        count("succeeded"),
        count("skipped"),
        count("failed"),
        count("cancelled")
    );
}

/// What the watcher shows while the run goes on: bars on a terminal, else a line per change.
struct Screen {
    bars: Option<(MultiProgress, ProgressBar, HashMap<String, ProgressBar>)>,
    lines: HashMap<String, String>,
}

impl Screen {
    fn new(live: bool) -> Self {
        let bars = live.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let run = multi.add(ProgressBar::new(0));
            run.set_style(
                ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {pos}/{len} targets  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            (multi, run, HashMap::new())
        });
        Screen { bars, lines: HashMap::new() }
    }

    fn show(&mut self, run: &RunView, state: &str, items: &[Item], names: &HashMap<String, String>, said: &mut String) {
        let ended = items.iter().filter(|i| i.ended()).count();
        match &mut self.bars {
            Some((multi, bar, targets)) => {
                bar.set_prefix(format!("run {}", run.id.get(..8).unwrap_or(&run.id)));
                bar.set_length(items.len() as u64);
                bar.set_position(ended as u64);
                bar.set_message(state.to_owned());
                let style = ProgressStyle::with_template("  {prefix:<20} [{bar:20}] {pos}/{len}  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                for item in items {
                    let shown = items.len() <= BARS || item.status == "failed";
                    if !shown {
                        continue;
                    }
                    let target = targets.entry(item.id.clone()).or_insert_with(|| {
                        let b = multi.add(ProgressBar::new(0));
                        b.set_style(style.clone());
                        b.set_prefix(name(names, &item.target_id).to_owned());
                        b
                    });
                    target.set_length(u64::from(item.migrations_total.unwrap_or(0)));
                    target.set_position(u64::from(item.migrations_done));
                    target.set_message(item.progress());
                }
            }
            None => {
                let line = format!("run {} {state}: {ended} of {} targets ended", run.id, items.len());
                if *said != line {
                    say!("{line}");
                    *said = line;
                }
                for item in items {
                    let text = item.progress();
                    if self.lines.get(&item.id) != Some(&text) {
                        say!("  {} {text}", name(names, &item.target_id));
                        self.lines.insert(item.id.clone(), text);
                    }
                }
            }
        }
    }

    fn clear(&mut self) {
        if let Some((multi, bar, targets)) = self.bars.take() {
            for b in targets.values() {
                b.finish_and_clear();
            }
            bar.finish_and_clear();
            let _ = multi.clear();
        }
    }
}
