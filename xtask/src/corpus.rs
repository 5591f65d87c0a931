//! `cargo xtask corpus [DIR…]`: the engine against real projects' migration sets (`../shared/workloads`) and
//! our own sets for the layouts they do not cover (`tests/corpus`).
//!
//! For each set and dialect, on a fresh database of the local servers, through the `migrate-hub` binary as
//! an operator runs it: apply everything, apply again (everything must be skipped), then where the set has
//! down migrations roll all of them back and apply again, and compare the schema dump (`pg_dump
//! --schema-only` / `mysqldump --no-data`) with the one after the first apply. Prints a table.
//!
//! What each set needs is written down here, with the reason, rather than hidden in a fixture:
//! - river's schema placeholder (`/* TEMPLATE: schema */`);
//! - hatchet's goose Go migrations are not in the workload: the one SQL version that renames tables a Go
//!   migration created is left out;
//! - Ranger's loader runs a baseline, then only the patches the baseline has not recorded in
//!   `x_db_version_h`; its Postgres files hold `commit;` lines, so they run without a wrapping transaction;
//! - on MariaDB (not Kratos's MySQL 8), Kratos needs a non-strict `sql_mode` and stops before a generated
//!   column MariaDB refuses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::Connection;
use sqlx::migrate::MigrateDatabase;

use crate::{DEFAULT_MYSQL, DEFAULT_PG, cargo, run_checked, target_dir, workspace_root};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Postgres,
    Mysql,
}

impl Dialect {
    fn label(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }
}

/// One set applied to one dialect.
#[derive(Debug)]
struct Case {
    label: String,
    dialect: Dialect,
    /// The migration directory.
    dir: PathBuf,
    /// Ranger: the baseline script applied (as version `000`) before the patches.
    baseline: Option<PathBuf>,
    /// Extra arguments for `migrate-hub`.
    args: Vec<String>,
    /// File-name prefixes (versions) left out, with why.
    excluded: Vec<(String, String)>,
    /// Leave out every version at or after this one (MariaDB only), with why.
    mariadb_stop: Option<(String, String)>,
    /// `sql_mode` for the session on MariaDB, with why.
    mariadb_sql_mode: Option<(String, String)>,
    /// Roll everything back and apply again.
    downs: bool,
}

impl Case {
    fn new(label: &str, dialect: Dialect, dir: PathBuf) -> Self {
        Case {
            label: label.to_owned(),
            dialect,
            dir,
            baseline: None,
            args: Vec::new(),
            excluded: Vec::new(),
            mariadb_stop: None,
            mariadb_sql_mode: None,
            downs: true,
        }
    }
}

/// Sets of our own making (`tests/corpus`), one per layout the shared workloads do not cover.
const OWN_SETS: &[&str] = &["diesel-blog", "morph-shop", "refinery-notes", "pop-options", "sql-migrate-tasks"];

/// The cases for one set directory, known by its name.
fn cases_for(set: &Path) -> anyhow::Result<Vec<Case>> {
    let name = set.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let cases = match name {
        "river" => {
            let template = ["--placeholders", "river", "--var", "schema=public"].map(String::from).to_vec();
            vec![
                Case {
                    args: template.clone(),
                    ..Case::new("river", Dialect::Postgres, set.join("riverdriver/riverpgxv5/migration/main"))
                },
                Case {
                    args: template,
                    ..Case::new(
                        "river commit_required",
                        Dialect::Postgres,
                        set.join("rivermigrate/migration/commit_required"),
                    )
                },
            ]
        }
        "hatchet" => vec![Case {
            args: vec!["--layout".into(), "goose".into()],
            excluded: vec![(
                "20260424205453".into(),
                "renames the *_olap_new tables made by the Go migration 20260424190713_v1_0_99.go, which the \
                 workload does not include"
                    .into(),
            )],
            ..Case::new("hatchet", Dialect::Postgres, set.join("migrations"))
        }],
        "ory-kratos" => {
            let dir = set.join("persistence/sql/migrations/sql");
            vec![
                Case::new("ory-kratos", Dialect::Postgres, dir.clone()),
                Case {
                    mariadb_sql_mode: Some((
                        "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION".into(),
                        "MariaDB in strict mode rejects INSERT … SELECT into NOT NULL columns without defaults \
                         even when no row is selected (MySQL 8 does not)"
                            .into(),
                    )),
                    mariadb_stop: Some((
                        "20260408000000000000".into(),
                        "MariaDB refuses its generated column over a foreign-key column (MySQL 8 accepts it)".into(),
                    )),
                    ..Case::new("ory-kratos", Dialect::Mysql, dir)
                },
            ]
        }
        "apache-ranger" => {
            let db = set.join("security-admin/db");
            vec![
                Case {
                    baseline: Some(db.join("mysql/optimized/current/ranger_core_db_mysql.sql")),
                    downs: false,
                    ..Case::new("apache-ranger", Dialect::Mysql, db.join("mysql/patches"))
                },
                Case {
                    baseline: Some(db.join("postgres/optimized/current/ranger_core_db_postgres.sql")),
                    args: vec!["--no-transaction".into()],
                    downs: false,
                    ..Case::new("apache-ranger", Dialect::Postgres, db.join("postgres/patches"))
                },
            ]
        }
        // Our own sets (tests/corpus), written for Postgres.
        "diesel-blog" | "morph-shop" | "sql-migrate-tasks" => {
            vec![Case::new(name, Dialect::Postgres, set.to_path_buf())]
        }
        // refinery's files are up only.
        "refinery-notes" => vec![Case { downs: false, ..Case::new(name, Dialect::Postgres, set.to_path_buf()) }],
        "pop-options" => vec![Case {
            args: ["--placeholders", "go", "--var", "Namespace=public"].map(String::from).to_vec(),
            ..Case::new(name, Dialect::Postgres, set.to_path_buf())
        }],
        _ => bail!(
            "{}: not a known workload set (river, hatchet, ory-kratos, apache-ranger, or ours in tests/corpus: \
             diesel-blog, morph-shop, refinery-notes, pop-options, sql-migrate-tasks): the corpus needs to know how its project \
             runs it",
            set.display()
        ),
    };
    for case in &cases {
        if !case.dir.is_dir() {
            bail!("{}: missing {}", case.label, case.dir.display());
        }
    }
    Ok(cases)
}

/// One line of the table.
#[derive(Debug, Default)]
struct Row {
    files: usize,
    migrations: usize,
    statements: usize,
    apply: Duration,
    reapply_skipped: usize,
    reverted: usize,
    down: Option<Duration>,
    reapplied: Option<Duration>,
    schema_same: Option<bool>,
    notes: Vec<String>,
}

pub async fn run(dirs: &[PathBuf]) -> anyhow::Result<()> {
    let dirs = if dirs.is_empty() {
        let root = std::env::var_os("MIGRATE_HUB_WORKLOADS")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("../shared/workloads"));
        let own = workspace_root().join("tests/corpus");
        let shared = ["river", "hatchet", "ory-kratos", "apache-ranger"].iter().map(|s| root.join(s));
        shared.chain(OWN_SETS.iter().map(|s| own.join(s))).collect()
    } else {
        dirs.to_vec()
    };
    let mut cases = Vec::new();
    for dir in &dirs {
        cases.extend(cases_for(dir)?);
    }
    run_checked(cargo().args(["build", "--quiet", "-p", "migrate-hub-cli"]))?;
    let binary = target_dir().join("debug/migrate-hub");
    let servers = Servers {
        pg: std::env::var("TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG.into()),
        mysql: std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_MYSQL.into()),
    };
    let (pg, my): (Vec<Case>, Vec<Case>) = cases.into_iter().partition(|c| c.dialect == Dialect::Postgres);
    // The two servers work in parallel; the cases of one server run one after another.
    let run_all = |cases: Vec<Case>| {
        let servers = servers.clone();
        let binary = binary.clone();
        tokio::spawn(async move {
            let mut results = Vec::new();
            for case in cases {
                let result = run_case(&case, &servers, &binary).await;
                if let Err(e) = &result {
                    eprintln!("corpus: {} ({}): FAILED: {e:#}", case.label, case.dialect.label());
                }
                results.push((case, result));
            }
            results
        })
    };
    let (pg, my) = tokio::join!(run_all(pg), run_all(my));
    let mut results = pg?;
    results.extend(my?);
    print_table(&results)?;
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if failed > 0 {
        bail!("corpus: {failed} of {} case(s) failed", results.len());
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct Servers {
    pg: String,
    mysql: String,
}

/// `scheme://credentials@host:port/<database>?query` with another database.
fn with_database(server: &str, database: &str) -> String {
    let (rest, query) = server.split_once('?').map_or((server, None), |(r, q)| (r, Some(q)));
    let scheme_end = rest.find("://").map_or(0, |i| i + 3);
    let base = match rest[scheme_end..].find('/') {
        Some(slash) => &rest[..scheme_end + slash],
        None => rest,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

async fn run_case(case: &Case, servers: &Servers, binary: &Path) -> anyhow::Result<Row> {
    let slug: String = format!("{}_{}", case.label, case.dialect.label())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    let database = format!("corpus_{slug}_{}", std::process::id());
    let url = match case.dialect {
        Dialect::Postgres => with_database(&servers.pg, &database),
        Dialect::Mysql => with_database(&servers.mysql, &database),
    };
    // A fresh connection now and then fails at once on these machines; creating is safe to retry.
    let mut attempt = 0;
    loop {
        let created = match case.dialect {
            Dialect::Postgres => sqlx::Postgres::create_database(&url).await,
            Dialect::Mysql => sqlx::MySql::create_database(&url).await,
        };
        match created {
            Ok(()) => break,
            Err(e) if attempt < 3 && matches!(e, sqlx::Error::Io(_)) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create database {database}")),
        }
    }
    let work = target_dir().join("corpus").join(&slug);
    let result = exercise(case, &url, binary, &work).await;
    if result.is_ok() {
        let dropped = match case.dialect {
            Dialect::Postgres => sqlx::Postgres::force_drop_database(&url).await,
            Dialect::Mysql => sqlx::MySql::drop_database(&url).await,
        };
        if let Err(e) = dropped {
            eprintln!("corpus: could not drop {database}: {e}");
        }
    } else {
        eprintln!("corpus: {} ({}): database {database} kept for inspection", case.label, case.dialect.label());
    }
    result
}

/// The SQL review of the staged set (`migrate-hub lint`, as the hub runs it on each version): every file
/// must lint without a crash; the findings are counted, with the rules that fire most.
fn lint_summary(binary: &Path, stage: &Path, name: &str, dialect: Dialect) -> anyhow::Result<String> {
    let out = Command::new(binary)
        .args(["lint", "--engine", dialect.label(), "--format", "json", "--dir"])
        .arg(stage)
        .output()?;
    // 0: no error, 1: errors found; anything else (101 is a panic) is a defect of the linter.
    if !matches!(out.status.code(), Some(0 | 1)) {
        bail!("lint crashed on {name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let findings: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).with_context(|| format!("lint output for {name}"))?;
    let count = |severity: &str| findings.iter().filter(|f| f["severity"] == severity).count();
    let mut rules: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for f in &findings {
        *rules.entry(f["rule"].as_str().unwrap_or("?")).or_default() += 1;
    }
    let mut top: Vec<(&str, usize)> = rules.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = top.iter().take(3).map(|(rule, n)| format!("{rule} {n}")).collect();
    eprintln!("corpus: {name}: lint {} errors, {} warnings", count("error"), count("warning"));
    Ok(format!(
        "lint: {} errors, {} warnings, {} ignored (most: {})",
        count("error"),
        count("warning"),
        count("info"),
        top.join(", ")
    ))
}

async fn exercise(case: &Case, url: &str, binary: &Path, work: &Path) -> anyhow::Result<Row> {
    let name = format!("{} ({})", case.label, case.dialect.label());
    let mut row = Row::default();
    let mut target_url = url.to_owned();
    if let Some((mode, why)) = &case.mariadb_sql_mode
        && case.dialect == Dialect::Mysql
        && is_mariadb(url).await?
    {
        target_url = format!("{target_url}?sql_mode={}", mode.replace(',', "%2C"));
        row.notes.push(format!("sql_mode={mode}: {why}"));
    }
    let mariadb_stop = match case.dialect {
        Dialect::Mysql if is_mariadb(url).await? => case.mariadb_stop.clone(),
        _ => None,
    };

    let mut files = migration_files(&case.dir)?;
    let read = files.len();
    files.retain(|f| {
        let file = file_name(f);
        !case.excluded.iter().any(|(prefix, _)| file.starts_with(prefix.as_str()))
            && mariadb_stop.as_ref().is_none_or(|(stop, _)| version_of(&file) < stop.as_str())
    });
    for (prefix, why) in &case.excluded {
        row.notes.push(format!("{prefix} left out: {why}"));
    }
    if let Some((stop, why)) = &mariadb_stop {
        row.notes.push(format!("stops before {stop}: {why}"));
    }
    let stage = work.join("migrations");
    let cli = |verb: &[&str]| {
        let mut command = Command::new(binary);
        command
            .args(verb)
            .arg("--dir")
            .arg(&stage)
            .args(&case.args)
            .env("MIGRATE_HUB_DATABASE_URL", &target_url)
            .env("RUST_LOG", "error");
        command
    };

    // 1. Apply everything (Ranger: the baseline, then the patches its loader would still run).
    let started = Instant::now();
    if let Some(baseline) = &case.baseline {
        stage_files(&stage, &[(baseline.clone(), "000-baseline.sql".to_owned())])?;
        let out = checked(cli(&["apply"]), "apply the baseline")?;
        row.statements += statements_applied(&out);
        let recorded = ranger_recorded_versions(url, case.dialect).await?;
        let before = files.len();
        files.retain(|f| !recorded.contains(version_of(&file_name(f))));
        row.notes.push(format!(
            "{} of {before} patches recorded by the baseline in x_db_version_h, skipped as Ranger's loader does",
            before - files.len()
        ));
        let mut staged: Vec<(PathBuf, String)> = files.iter().map(|f| (f.clone(), file_name(f))).collect();
        staged.push((baseline.clone(), "000-baseline.sql".to_owned()));
        stage_files(&stage, &staged)?;
        row.files = read + 1;
    } else {
        let staged: Vec<(PathBuf, String)> = files.iter().map(|f| (f.clone(), file_name(f))).collect();
        stage_files(&stage, &staged)?;
        row.files = read;
    }
    row.notes.push(lint_summary(binary, &stage, &name, case.dialect)?);
    let out = checked(cli(&["apply"]), "apply")?;
    row.apply = started.elapsed();
    row.statements += statements_applied(&out);
    let total = summary(&out)?;
    row.migrations = total.0 + total.1;
    eprintln!("corpus: {name}: applied {} migrations in {:.1} s", row.migrations, row.apply.as_secs_f64());
    let first = dump(case.dialect, url).await?;

    // 2. Again: nothing to do.
    let out = checked(cli(&["apply"]), "apply again")?;
    let (applied, skipped) = summary(&out)?;
    if applied != 0 || skipped != row.migrations {
        bail!("the second apply did something: applied={applied} skipped={skipped}");
    }
    row.reapply_skipped = skipped;

    // 3. Everything down, everything up, same schema.
    if case.downs {
        let started = Instant::now();
        let steps = row.migrations.to_string();
        let down = cli(&["down", "--steps", &steps]).output().context("cannot run migrate-hub down")?;
        let stdout = String::from_utf8_lossy(&down.stdout);
        let stderr = String::from_utf8_lossy(&down.stderr);
        // A version without a down migration stops the roll-back there, on purpose: the engine never
        // pretends to revert what it cannot. The set's downs end at that version.
        let reverted = match summary(&stdout) {
            Ok((reverted, _)) if down.status.success() => reverted,
            _ => match stderr.lines().find(|l| l.contains("has no down migration")) {
                Some(line) if stdout.lines().last().is_some_and(|l| l.ends_with("failed=1")) => {
                    let reverted = last_count(&stdout, "reverted").unwrap_or(0);
                    row.notes.push(format!(
                        "downs: the newest {reverted} rolled back; then {}",
                        line.trim_start_matches("error: ")
                    ));
                    reverted
                }
                _ => bail!("down failed:\n{}", tail(&stderr)),
            },
        };
        row.reverted = reverted;
        row.down = Some(started.elapsed());
        let started = Instant::now();
        let out = checked(cli(&["apply"]), "apply after down")?;
        row.reapplied = Some(started.elapsed());
        let (applied, _) = summary(&out)?;
        if applied != reverted {
            bail!("after {reverted} downs, apply applied {applied} migrations");
        }
        let second = dump(case.dialect, url).await?;
        let same = first == second;
        row.schema_same = Some(same);
        if !same {
            std::fs::write(work.join("schema-first.sql"), &first)?;
            std::fs::write(work.join("schema-after-down-up.sql"), &second)?;
            bail!(
                "the schema after down and up differs from the first apply: compare {} and {}",
                work.join("schema-first.sql").display(),
                work.join("schema-after-down-up.sql").display()
            );
        }
        eprintln!("corpus: {name}: down and up again gave the same schema");
    }
    Ok(row)
}

/// The set's migration files: every `.sql` file of the directory, and every folder holding an `up.sql`
/// (diesel's folder per version; the CLI decides what is SQL).
fn migration_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let sql_file = path.is_file() && path.extension().is_some_and(|e| e == "sql");
        if sql_file || path.join("up.sql").is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The leading version of a file name: digits up to the first `_`, `-` or `.`.
fn version_of(file: &str) -> &str {
    let end = file.find(['_', '-', '.']).unwrap_or(file.len());
    &file[..end]
}

/// Replaces the staging directory with symbolic links to the chosen files (the workloads stay in place).
fn stage_files(stage: &Path, files: &[(PathBuf, String)]) -> anyhow::Result<()> {
    if stage.exists() {
        std::fs::remove_dir_all(stage)?;
    }
    std::fs::create_dir_all(stage)?;
    for (source, name) in files {
        let source = source.canonicalize().with_context(|| format!("cannot resolve {}", source.display()))?;
        std::os::unix::fs::symlink(&source, stage.join(name))?;
    }
    Ok(())
}

/// Runs the CLI; fails with the end of its error output unless it succeeded.
fn checked(mut command: Command, what: &str) -> anyhow::Result<String> {
    let output: Output = command.output().with_context(|| format!("cannot run migrate-hub to {what}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        let last = stdout.lines().last().unwrap_or_default();
        bail!("{what} failed ({last}):\n{}", tail(&String::from_utf8_lossy(&output.stderr)));
    }
    Ok(stdout)
}

/// The last lines of a command's error output.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().rev().take(6).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// `<name>=<n>` from the final line.
fn last_count(stdout: &str, name: &str) -> Option<usize> {
    let last = stdout.lines().last()?;
    last.split(' ').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// `(applied, skipped)` from the final `applied=<n> skipped=<n> failed=<n>` line (`reverted=<n>` for a down).
fn summary(stdout: &str) -> anyhow::Result<(usize, usize)> {
    let done = last_count(stdout, "applied").or_else(|| last_count(stdout, "reverted"));
    match (done, last_count(stdout, "skipped"), last_count(stdout, "failed")) {
        (Some(applied), Some(skipped), Some(0)) => Ok((applied, skipped)),
        _ => bail!("unexpected final line: {:?}", stdout.lines().last().unwrap_or_default()),
    }
}

/// Sum of `(<n> statements, …)` over the `applied …` lines.
fn statements_applied(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.starts_with("applied "))
        .filter_map(|l| l.rsplit_once(" (")?.1.split_once(" statements")?.0.parse::<usize>().ok())
        .sum()
}

async fn is_mariadb(url: &str) -> anyhow::Result<bool> {
    let mut conn = sqlx::MySqlConnection::connect(url).await?;
    let version: String = sqlx::query_scalar("SELECT VERSION()").fetch_one(&mut conn).await?;
    conn.close().await?;
    Ok(version.contains("MariaDB"))
}

/// The versions Ranger's baseline recorded as installed.
async fn ranger_recorded_versions(url: &str, dialect: Dialect) -> anyhow::Result<BTreeSet<String>> {
    const SQL: &str = "SELECT version FROM x_db_version_h WHERE active = 'Y'";
    let versions: Vec<String> = match dialect {
        Dialect::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            sqlx::query_scalar(SQL).fetch_all(&mut conn).await?
        }
        Dialect::Mysql => {
            let mut conn = sqlx::MySqlConnection::connect(url).await?;
            sqlx::query_scalar(SQL).fetch_all(&mut conn).await?
        }
    };
    Ok(versions.into_iter().collect())
}

/// The schema as the project's own dump tool prints it, without what changes from one dump to the next.
async fn dump(dialect: Dialect, url: &str) -> anyhow::Result<String> {
    let output = match dialect {
        Dialect::Postgres => Command::new("pg_dump")
            .args(["--schema-only", "--no-owner", "--no-privileges", "--dbname", url])
            .output()
            .context("cannot run pg_dump")?,
        Dialect::Mysql => {
            let parts = MysqlUrl::parse(url)?;
            let tool = if Command::new("mariadb-dump").arg("--version").output().is_ok() {
                "mariadb-dump"
            } else {
                "mysqldump"
            };
            let mut command = Command::new(tool);
            command
                .args(["--no-data", "--skip-comments", "--routines", "--triggers", "--skip-dump-date"])
                .arg(format!("--host={}", parts.host))
                .arg(format!("--port={}", parts.port))
                .arg(format!("--user={}", parts.user))
                .arg(&parts.database);
            if let Some(password) = &parts.password {
                command.env("MYSQL_PWD", password);
            }
            command.output().with_context(|| format!("cannot run {tool}"))?
        }
    };
    if !output.status.success() {
        bail!("schema dump failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        // pg_dump 15.14+ guards its output with a random key per dump.
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .map(strip_auto_increment)
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Drops ` AUTO_INCREMENT=<n>` (the next id, which depends on the rows the migrations inserted).
fn strip_auto_increment(line: &str) -> String {
    match line.find(" AUTO_INCREMENT=") {
        Some(start) => {
            let rest = &line[start + " AUTO_INCREMENT=".len()..];
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            format!("{}{}", &line[..start], &rest[digits..])
        }
        None => line.to_owned(),
    }
}

struct MysqlUrl {
    user: String,
    password: Option<String>,
    host: String,
    port: u16,
    database: String,
}

impl MysqlUrl {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url.split_once("://").context("not a URL")?.1;
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        let (credentials, location) = rest.rsplit_once('@').unwrap_or(("root", rest));
        let (user, password) = match credentials.split_once(':') {
            Some((u, p)) => (u.to_owned(), Some(p.to_owned())),
            None => (credentials.to_owned(), None),
        };
        let (address, database) = location.split_once('/').context("no database in the URL")?;
        let (host, port) = address.rsplit_once(':').map_or((address, 3306), |(h, p)| (h, p.parse().unwrap_or(3306)));
        Ok(MysqlUrl { user, password, host: host.to_owned(), port, database: database.to_owned() })
    }
}

fn print_table(results: &[(Case, anyhow::Result<Row>)]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let seconds = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), |d| format!("{:.1}", d.as_secs_f64()));
    writeln!(out)?;
    writeln!(
        out,
        "{:<22} {:<9} {:>6} {:>10} {:>10} {:>8} {:>9} {:>6} {:>7} {:>9} {:>7}  result",
        "set",
        "dialect",
        "files",
        "migrations",
        "statements",
        "apply_s",
        "reapplied",
        "downs",
        "down_s",
        "reapply_s",
        "schema"
    )?;
    for (case, result) in results {
        match result {
            Ok(row) => writeln!(
                out,
                "{:<22} {:<9} {:>6} {:>10} {:>10} {:>8.1} {:>9} {:>6} {:>7} {:>9} {:>7}  ok",
                case.label,
                case.dialect.label(),
                row.files,
                row.migrations,
                row.statements,
                row.apply.as_secs_f64(),
                format!("0/{}", row.reapply_skipped),
                row.reverted,
                seconds(row.down),
                seconds(row.reapplied),
                match row.schema_same {
                    Some(true) => "same",
                    Some(false) => "DIFF",
                    None => "-",
                },
            ),
            Err(e) => writeln!(
                out,
                "{:<22} {:<9} FAILED: {}",
                case.label,
                case.dialect.label(),
                format!("{e:#}").lines().next().unwrap_or_default()
            ),
        }?;
    }
    for (case, result) in results {
        if let Ok(row) = result {
            for note in &row.notes {
                writeln!(out, "note: {} ({}): {note}", case.label, case.dialect.label())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_urls_and_dump_noise() {
        assert_eq!(version_of("20260424205453_v1_0_100.sql"), "20260424205453");
        assert_eq!(version_of("009-updated_schema.sql"), "009");
        assert_eq!(version_of("20150100000001000000_networks.mysql.up.sql"), "20150100000001000000");
        assert_eq!(with_database("postgres://u:p@h:5432/postgres", "x"), "postgres://u:p@h:5432/x");
        assert_eq!(
            with_database("mysql://root@h:3306/mysql?ssl-mode=disabled", "x"),
            "mysql://root@h:3306/x?ssl-mode=disabled"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            strip_auto_increment(") ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4;"),
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;"
        );
        let out =
            "applied 001 a (3 statements, 1 ms)\napplied 002 b (1 statements, 1 ms)\napplied=2 skipped=0 failed=0\n";
        assert_eq!(statements_applied(out), 4);
        assert_eq!(summary(out).unwrap(), (2, 0));
        assert!(summary("applied=1 skipped=0 failed=1").is_err());
        assert_eq!(summary("reverted 003 c (1 statements, 1 ms)\nreverted=1 skipped=0 failed=0\n").unwrap(), (1, 0));
        let url = MysqlUrl::parse("mysql://app:pw@db:3307/orders?sql_mode=ANSI").unwrap();
        assert_eq!(
            (url.user.as_str(), url.password.as_deref(), url.host.as_str(), url.port, url.database.as_str()),
            ("app", Some("pw"), "db", 3307, "orders")
        );
    }
}
