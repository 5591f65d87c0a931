//! `cargo xtask tidy`: rules of this project that no compiler checks. Also runs as a test, so
//! `cargo xtask test` fails when a rule is broken.
//!
//! - every Rust file opens with a `//!` doc saying what it is for;
//! - no test is ignored or expected to panic (a test that cannot fail is a defect);
//! - the crate dependency rules of ARCHITECTURE.md, among them that `app` is the only door to `storage` from
//!   above: `http` and the server binary neither depend on it nor name it;
//! - SQL for the tool database only in `storage`, and every file in `sql/` used by it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// What each library crate may depend on. `allowed_internal` lists the workspace crates it may use;
/// `forbidden` lists outside crates it must not (matched by crate name).
struct Rule {
    package: &'static str,
    allowed_internal: &'static [&'static str],
    forbidden: &'static [&'static str],
}

const WEB: &[&str] = &["actix-web", "actix-session", "maud", "tracing-actix-web", "openidconnect", "reqwest"];

const RULES: &[Rule] = &[
    Rule {
        package: "migrate-hub-domain",
        allowed_internal: &[],
        forbidden: &[
            "sqlx",
            "tokio",
            "actix-web",
            "actix-session",
            "maud",
            "tracing-actix-web",
            "openidconnect",
            "reqwest",
        ],
    },
    Rule { package: "migrate-hub-storage", allowed_internal: &["migrate-hub-domain"], forbidden: WEB },
    Rule {
        package: "migrate-hub-audit",
        allowed_internal: &["migrate-hub-domain", "migrate-hub-storage"],
        forbidden: &["sqlx", "actix-web", "actix-session", "maud", "tracing-actix-web", "openidconnect"],
    },
    Rule {
        package: "migrate-hub-auth",
        allowed_internal: &["migrate-hub-domain", "migrate-hub-storage", "migrate-hub-audit"],
        forbidden: &["sqlx", "maud", "tracing-actix-web"],
    },
    Rule {
        package: "migrate-hub-executor",
        allowed_internal: &["migrate-hub-domain", "migrate-hub-storage", "migrate-hub-auth", "migrate-hub-audit"],
        forbidden: &["actix-web", "actix-session", "maud", "tracing-actix-web", "openidconnect"],
    },
    Rule {
        package: "migrate-hub-app",
        allowed_internal: &[
            "migrate-hub-domain",
            "migrate-hub-storage",
            "migrate-hub-auth",
            "migrate-hub-audit",
            "migrate-hub-executor",
        ],
        forbidden: &["sqlx", "actix-web", "actix-session", "maud", "tracing-actix-web", "openidconnect", "reqwest"],
    },
    Rule {
        package: "migrate-hub-http",
        allowed_internal: &[
            "migrate-hub-domain",
            "migrate-hub-auth",
            "migrate-hub-audit",
            "migrate-hub-executor",
            "migrate-hub-app",
        ],
        forbidden: &["sqlx"],
    },
];

/// The packages above `app` that reach the tool database only through its use cases, and the sources of
/// each, which must not name `storage` either (a path through another crate would be a back door).
const THROUGH_APP: &[(&str, &str)] =
    &[("migrate-hub-http", "crates/http/src/"), ("migrate-hub-server", "bins/server/src/")];

/// Workspace packages that nothing else may depend on, with the one exception each may have.
const LEAVES: &[(&str, Option<&str>)] = &[
    ("migrate-hub-server", None),
    ("migrate-hub-worker", None),
    ("migrate-hub-cli", None),
    ("migrate-hub-http", Some("migrate-hub-server")),
    ("xtask", None),
    // The benches build their tool databases with the same fixtures as the tests.
    ("migrate-hub-tests", Some("migrate-hub-bench")),
    ("migrate-hub-bench", None),
];

/// Returns every broken rule as a sentence (empty when all is well).
pub fn check(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let files = rust_files(root)?;
    check_sources(root, &files, &mut problems)?;
    check_dependencies(root, &mut problems)?;
    check_sql(root, &files, &mut problems)?;
    Ok(problems)
}

fn rust_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for top in ["crates", "bins", "xtask", "tests"] {
        walk(&root.join(top), &mut out)?;
    }
    out.retain(|p| p.extension().is_some_and(|e| e == "rs"));
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if name != "target" && name != "node_modules" && !name.starts_with('.') {
                walk(&path, out)?;
            }
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// Ways to register an actix route; in the http crate only `routes.rs` may use them (spelled in pieces so
/// this file does not trip its own check).
const ROUTE_REGISTRATION: &[&str] = &[
    concat!("#[", "get("),
    concat!("#[", "post("),
    concat!("#[", "put("),
    concat!("#[", "patch("),
    concat!("#[", "delete("),
    concat!("#[", "route("),
    concat!("web::", "resource("),
    concat!("web::", "scope("),
    concat!("web::", "method("),
    concat!(".", "route("),
    concat!(".", "service("),
];

fn check_sources(root: &Path, files: &[PathBuf], problems: &mut Vec<String>) -> anyhow::Result<()> {
    // Spelled in pieces so this file does not trip its own check.
    let ignore = concat!("#[", "ignore");
    let should_panic = concat!("#[", "should_panic");
    for file in files {
        let text = std::fs::read_to_string(file)?;
        let name = relative(root, file);
        let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
        if !first.starts_with("//!") {
            problems.push(format!("{name}: does not open with a `//!` doc saying what it is for"));
        }
        for (n, line) in text.lines().enumerate() {
            if line.contains(ignore) {
                problems.push(format!("{name}:{}: ignored test (fix or delete it)", n + 1));
            }
            if line.contains(should_panic) {
                problems.push(format!("{name}:{}: should_panic test (assert on a returned error instead)", n + 1));
            }
            if let Some((package, _)) = THROUGH_APP.iter().find(|(_, dir)| name.starts_with(dir))
                && names_storage(line)
            {
                problems.push(format!(
                    "{name}:{}: names `storage`; {package} reaches the tool database only through `app`",
                    n + 1
                ));
            }
            if name.starts_with("crates/http/src/")
                && name != "crates/http/src/routes.rs"
                && let Some(found) = ROUTE_REGISTRATION.iter().find(|p| line.contains(*p))
            {
                problems.push(format!(
                    "{name}:{}: `{found}` registers a route outside crates/http/src/routes.rs, where every route declares its policy",
                    n + 1
                ));
            }
        }
    }
    Ok(())
}

/// Whether a line names the `storage` crate by path (`storage::…`, not e.g. `actix_session::storage::…`).
fn names_storage(line: &str) -> bool {
    let needle = concat!("storage", "::");
    line.match_indices(needle)
        .any(|(at, _)| line[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':')))
}

fn check_dependencies(root: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let output = std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .output()
        .context("cannot run cargo metadata")?;
    anyhow::ensure!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let mut deps: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let list = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["kind"].is_null()) // normal dependencies; dev-dependencies may use anything
            .map(|d| (d["name"].as_str().unwrap_or_default().to_owned(), d["path"].is_string()))
            .collect();
        deps.insert(name, list);
    }
    for rule in RULES {
        let Some(list) = deps.get(rule.package) else {
            problems.push(format!("crate {} is missing from the workspace", rule.package));
            continue;
        };
        for (dep, internal) in list {
            if *internal && !rule.allowed_internal.contains(&dep.as_str()) {
                problems.push(format!("{} must not depend on {dep} (see ARCHITECTURE.md)", rule.package));
            }
            if rule.forbidden.contains(&dep.as_str()) {
                problems.push(format!("{} must not depend on {dep} (see ARCHITECTURE.md)", rule.package));
            }
        }
    }
    for (package, _) in THROUGH_APP {
        let Some(list) = deps.get(*package) else {
            problems.push(format!("crate {package} is missing from the workspace"));
            continue;
        };
        if list.iter().any(|(dep, _)| dep == "migrate-hub-storage") {
            problems.push(format!(
                "{package} must not depend on migrate-hub-storage: `app` is the only door to the tool database"
            ));
        }
    }
    for (package, list) in &deps {
        for (dep, internal) in list {
            let leaf = LEAVES.iter().find(|(leaf, _)| leaf == dep);
            if *internal && leaf.is_some_and(|(_, allowed)| *allowed != Some(package.as_str())) {
                problems.push(format!("{package} must not depend on {dep}: it is a leaf of the workspace"));
            }
        }
    }
    Ok(())
}

fn check_sql(root: &Path, files: &[PathBuf], problems: &mut Vec<String>) -> anyhow::Result<()> {
    let storage = root.join("crates/storage");
    let mut storage_text = String::new();
    for file in files {
        let text = std::fs::read_to_string(file)?;
        let in_storage = file.starts_with(&storage);
        if in_storage {
            storage_text.push_str(&text);
        } else if !file.starts_with(root.join("xtask")) {
            for macro_name in
                ["query_file!", "query_file_as!", "query_file_scalar!", "query!(", "query_as!(", "query_scalar!("]
            {
                if text.contains(&format!("sqlx::{macro_name}")) {
                    problems.push(format!(
                        "{}: uses sqlx::{macro_name}; tool-database SQL belongs in crates/storage",
                        relative(root, file)
                    ));
                }
            }
        }
    }
    let mut sql_files = Vec::new();
    walk(&root.join("sql"), &mut sql_files)?;
    for sql in sql_files {
        let name = relative(root, &sql);
        if !storage_text.contains(&format!("../../{name}")) {
            problems.push(format!("{name}: not used by crates/storage (delete it or use it)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn storage_is_named_only_as_a_crate_path() {
        for line in ["use storage::PgPool;", "    storage::users::get(&mut conn, id)", "(storage::MAX_PAGE)"] {
            assert!(super::names_storage(line), "{line}");
        }
        for line in ["use actix_session::storage::{LoadError};", "app::storage_free()", "no_storage::x", "storage: 1"] {
            assert!(!super::names_storage(line), "{line}");
        }
    }

    #[test]
    fn the_workspace_is_tidy() {
        let problems = super::check(&crate::workspace_root()).unwrap();
        assert!(problems.is_empty(), "tidy found problems:\n{}", problems.join("\n"));
    }
}
