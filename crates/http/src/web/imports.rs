//! Importing a directory of migration files from the browser: a folder (`<input type=file webkitdirectory>`,
//! whose parts carry each file's path inside the folder) or one `.zip`. The files go to the same
//! `app::migrations::import` as `POST /api/v1/projects/{id}/import`, and the page shows what happened per
//! migration, the layout read, and every file left out with why.

use std::io::Read;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::web;
use app::migrations::{ImportFile, ImportInput, ImportReport};
use domain::enums::Engine;
use domain::ids::ProjectId;
use domain::model::Project;
use futures_util::StreamExt;
use maud::{Markup, html};

use crate::startup::AppState;
use crate::web::forms::{self, Form, Problems, csrf};
use crate::web::{Page, PageError, Section, Viewer, layout, respond};

/// Most files a `.zip` may hold, and most bytes its files may hold uncompressed (the import's own limits
/// are smaller; these only stop an archive from costing more than the upload could).
const ZIP_ENTRIES: usize = 10_000;
const ZIP_BYTES: u64 = 64 << 20;

const LAYOUTS: &[&str] = &[
    "auto",
    "plain",
    "up-down",
    "sqlx",
    "golang-migrate",
    "goose",
    "flyway",
    "dbmate",
    "diesel",
    "refinery",
    "sql-migrate",
];

/// A file as uploaded: its path and bytes.
type Entry = (String, Vec<u8>);
/// Why an upload is refused: the form field and the reason.
type Refusal = (&'static str, String);

/// What was uploaded: the files read, the ones left out (with why), and the form's choices.
#[derive(Default)]
struct Upload {
    files: Vec<ImportFile>,
    left_out: Vec<(String, String)>,
    layout: Option<String>,
    engine: Option<Engine>,
    allow_unknown_files: bool,
}

fn page(viewer: &Viewer, project: &Project, form: &Form, problems: &Problems, result: Option<&Outcome>) -> Markup {
    let layouts: Vec<(String, String)> = LAYOUTS.iter().map(|l| ((*l).to_owned(), (*l).to_owned())).collect();
    let engines =
        vec![("postgres".to_owned(), "Postgres".to_owned()), ("mysql".to_owned(), "MySQL / MariaDB".to_owned())];
    let body = html! {
        p.muted { a href="/projects" { "Projects" } " / " a href={ "/projects/" (project.id) } { (project.name.as_str()) } " / import" }
        h1 { "Import migrations into " (project.name.as_str()) }
        @if let Some(outcome) = result { (report(project, outcome)) }
        section.card {
            h2 { "Upload a directory" }
            p { "Choose the folder that holds the migration files (its subfolders too, as diesel's are read), or one "
                code { ".zip" } " of it. Each migration is created, gets a new version when its files changed, or stays \
                unchanged. Files the layout does not read are listed, and stop the import unless you allow them." }
            (problems.summary())
            form method="post" action={ "/projects/" (project.id) "/import" } enctype="multipart/form-data" {
                (csrf(viewer))
                div.field {
                    label for="files" { "Folder" }
                    p.hint id="files-hint" { "With JavaScript this picks a folder; without it, select every file of the folder." }
                    input id="files" name="files" type="file" multiple data-directory aria-describedby="files-hint";
                }
                div.field {
                    label for="archive" { "Or a .zip" }
                    input id="archive" name="archive" type="file" accept=".zip,application/zip";
                }
                (forms::select(form, problems, "layout", "Layout", &layouts, Some("Detected from the file names when auto.")))
                (forms::select(form, problems, "engine", "Dialect of goose and dbmate annotations", &engines, None))
                div.field {
                    label.check { input type="checkbox" name="allow_unknown_files" value="true" checked[form.get("allow_unknown_files") == "true"]; " Import even if some files are not migrations of the layout" }
                }
                p { button type="submit" { "Import" } }
            }
        }
    };
    let body = html! {
        (body)
        script src=(*crate::web::assets::SCRIPT_PATH) defer {}
    };
    layout(viewer, Section::Migrations, &format!("Import into {}", project.name.as_str()), body)
}

/// What an upload came to.
struct Outcome {
    report: ImportReport,
    left_out: Vec<(String, String)>,
}

fn report(project: &Project, outcome: &Outcome) -> Markup {
    let r = &outcome.report;
    html! {
        section.card id="imported" role="status" {
            h2 { "Imported" }
            p.success {
                (r.created.len()) " created, " (r.updated.len()) " with a new version, " (r.unchanged.len()) " unchanged; layout "
                code { (r.layout) } "."
            }
            table {
                thead { tr { th scope="col" { "Migration" } th scope="col" { "What happened" } } }
                tbody {
                    @for key in &r.created { tr { td { code { (key) } } td { "created" } } }
                    @for key in &r.updated { tr { td { code { (key) } } td { "new version" } } }
                    @for key in &r.unchanged { tr { td { code { (key) } } td.muted { "unchanged" } } }
                }
            }
            @if !r.skipped.is_empty() || !outcome.left_out.is_empty() {
                h3 { "Not imported" }
                ul {
                    @for s in &r.skipped { li { code { (s.path) } ": " (s.reason) } }
                    @for (path, why) in &outcome.left_out { li { code { (path) } ": " (why) } }
                }
            }
            p { a.button href={ "/migrations?project_id=" (project.id) } { "See the migrations" } " "
                a.button.secondary href={ "/runs/new?project_id=" (project.id) } { "Request a release" } }
        }
    }
}

async fn project_of(state: &AppState, viewer: &Viewer, id: ProjectId) -> Result<Project, PageError> {
    app::projects::get_project(&state.hub, id).await.map_err(viewer.fail())
}

/// `GET /projects/{id}/import`.
pub(crate) async fn import_page(state: web::Data<AppState>, viewer: Viewer, id: web::Path<ProjectId>) -> Page {
    let project = project_of(&state, &viewer, *id).await?;
    let form = Form::with(&[("layout", "auto"), ("engine", "postgres")]);
    Ok(respond(StatusCode::OK, page(&viewer, &project, &form, &Problems::default(), None)))
}

/// `POST /projects/{id}/import`: the folder's files or the `.zip`'s, imported.
pub(crate) async fn import(
    state: web::Data<AppState>,
    viewer: Viewer,
    id: web::Path<ProjectId>,
    multipart: Multipart,
) -> Page {
    let project = project_of(&state, &viewer, *id).await?;
    let mut problems = Problems::default();
    let upload = match read_upload(multipart).await {
        Ok(upload) => upload,
        Err((field, message)) => {
            problems.add(field, message);
            Upload::default()
        }
    };
    let form = Form::with(&[
        ("layout", upload.layout.as_deref().unwrap_or("auto")),
        ("engine", upload.engine.map_or("postgres", |e| e.as_str())),
        ("allow_unknown_files", if upload.allow_unknown_files { "true" } else { "" }),
    ]);
    if problems.is_empty() && upload.files.is_empty() {
        let why = if upload.left_out.is_empty() {
            "choose a folder or a .zip with migration files".to_owned()
        } else {
            let names: Vec<String> = upload.left_out.iter().map(|(p, why)| format!("{p} ({why})")).collect();
            format!("nothing to import: every file was left out: {}", names.join(", "))
        };
        problems.add("files", why);
    }
    if problems.is_empty() {
        let input = ImportInput {
            files: upload.files,
            layout: upload.layout.filter(|l| l != "auto"),
            engine: upload.engine,
            allow_unknown_files: upload.allow_unknown_files,
        };
        match app::migrations::import(&state.hub, &viewer.caller, state.limits, &state.imports, project.id, input).await
        {
            Ok(report) => {
                let outcome = Outcome { report, left_out: upload.left_out };
                return Ok(respond(
                    StatusCode::OK,
                    page(&viewer, &project, &form, &Problems::default(), Some(&outcome)),
                ));
            }
            Err(e) => problems = Problems::from_app(&viewer, e, &["files", "layout", "engine"])?,
        }
    }
    Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page(&viewer, &project, &form, &problems, None)))
}

/// Reads the form's parts: every `files` part is a file of the folder (its name is its path in the
/// folder), `archive` a `.zip`; the rest are the choices. `Err`: the field and why the upload is refused.
async fn read_upload(mut multipart: Multipart) -> Result<Upload, Refusal> {
    let mut upload = Upload::default();
    let mut folder = Vec::new();
    let mut archive: Option<Entry> = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| ("files", format!("the upload could not be read: {e}")))?;
        let name = field.name().unwrap_or_default().to_owned();
        let file_name = field.content_disposition().and_then(|d| d.get_filename()).map(str::to_owned);
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            data.extend_from_slice(&chunk.map_err(|e| ("files", format!("the upload was cut off: {e}")))?);
        }
        let text = || String::from_utf8_lossy(&data).trim().to_owned();
        match name.as_str() {
            "files" => {
                // A browser sends an empty part when no folder was chosen.
                if let Some(path) = file_name.filter(|p| !p.is_empty()) {
                    folder.push((path, data));
                }
            }
            "archive" => {
                if let Some(path) = file_name.filter(|p| !p.is_empty()) {
                    archive = Some((path, data));
                }
            }
            "layout" => upload.layout = Some(text()).filter(|l| !l.is_empty()),
            "engine" => {
                let engine = text();
                if !engine.is_empty() {
                    upload.engine = Some(engine.parse().map_err(|e| ("engine", format!("{e}")))?);
                }
            }
            "allow_unknown_files" => upload.allow_unknown_files = text() == "true",
            _ => {}
        }
    }
    let entries = match (folder.is_empty(), archive) {
        (false, Some(_)) => return Err(("files", "choose a folder or a .zip, not both".to_owned())),
        (true, Some((name, bytes))) => unzip(&name, &bytes)?,
        (_, None) => folder,
    };
    let (files, left_out) = relative_files(entries);
    upload.files = files;
    upload.left_out = left_out;
    Ok(upload)
}

/// The files of a `.zip` (directories left out), as `(path, bytes)`.
fn unzip(name: &str, bytes: &[u8]) -> Result<Vec<Entry>, Refusal> {
    let refused = |why: String| ("archive", format!("{name}: {why}"));
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| refused(format!("not a zip archive ({e})")))?;
    if zip.len() > ZIP_ENTRIES {
        return Err(refused(format!("{} entries; at most {ZIP_ENTRIES} are read", zip.len())));
    }
    let mut total = 0u64;
    let mut files = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| refused(format!("entry {i} cannot be read ({e})")))?;
        if entry.is_dir() {
            continue;
        }
        // Paths that would leave the archive's root (`../`, absolute) are refused, not cleaned up.
        let Some(path) = entry.enclosed_name() else {
            return Err(refused(format!("the entry {:?} names a path outside the archive", entry.name())));
        };
        let path =
            path.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/");
        let mut data = Vec::new();
        let budget = ZIP_BYTES.saturating_sub(total);
        (&mut entry)
            .take(budget + 1)
            .read_to_end(&mut data)
            .map_err(|e| refused(format!("{path} cannot be unpacked ({e})")))?;
        total += data.len() as u64;
        if total > ZIP_BYTES {
            return Err(refused(format!("its files hold more than {} MiB", ZIP_BYTES >> 20)));
        }
        files.push((path, data));
    }
    Ok(files)
}

/// The files as the import takes them: paths relative to the chosen folder (a folder upload's paths, and
/// most archives', start with the folder's own name: a first component shared by every file is dropped),
/// `/`-separated, UTF-8 text. Hidden files (`.DS_Store`, `.git/…`), macOS's `__MACOSX/` copies and files
/// that are not UTF-8 are left out, with why.
fn relative_files(entries: Vec<Entry>) -> (Vec<ImportFile>, Vec<(String, String)>) {
    let split = |path: &str| -> Vec<String> {
        path.split(['/', '\\']).filter(|c| !c.is_empty() && *c != ".").map(str::to_owned).collect()
    };
    let mut left_out = Vec::new();
    let mut kept: Vec<(Vec<String>, Vec<u8>)> = Vec::new();
    for (path, data) in entries {
        let parts = split(&path);
        if parts.first().is_some_and(|p| p == "__MACOSX") || parts.iter().any(|p| p.starts_with('.')) {
            left_out.push((path, "hidden or a macOS copy".to_owned()));
        } else if parts.is_empty() {
            left_out.push((path, "no file name".to_owned()));
        } else {
            kept.push((parts, data));
        }
    }
    let shared = kept.first().map(|(parts, _)| parts[0].clone());
    let strip = kept.iter().all(|(parts, _)| parts.len() > 1 && Some(&parts[0]) == shared.as_ref());
    let mut files = Vec::new();
    for (parts, data) in kept {
        let path = parts[usize::from(strip)..].join("/");
        match String::from_utf8(data) {
            Ok(content) => files.push(ImportFile { path, content }),
            Err(_) => left_out.push((path, "not UTF-8 text".to_owned())),
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    (files, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, text: &str) -> Entry {
        (path.to_owned(), text.as_bytes().to_vec())
    }

    #[test]
    fn a_folder_upload_is_read_relative_to_the_folder_without_hidden_files() {
        let (files, left_out) = relative_files(vec![
            entry("migrations/002_b.up.sql", "B"),
            entry("migrations/001_a.up.sql", "A"),
            entry("migrations/.DS_Store", "x"),
            entry("migrations/sub/003_c.sql", "C"),
            ("migrations/blob.bin".to_owned(), vec![0xff, 0xfe]),
        ]);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["001_a.up.sql", "002_b.up.sql", "sub/003_c.sql"]);
        let out: Vec<&str> = left_out.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(out, ["migrations/.DS_Store", "blob.bin"]);
    }

    #[test]
    fn files_at_the_root_keep_their_paths() {
        let (files, _) = relative_files(vec![entry("001_a.sql", "A"), entry("dir/002_b.sql", "B")]);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["001_a.sql", "dir/002_b.sql"]);
    }

    #[test]
    fn a_zip_is_unpacked_and_one_leaving_its_root_is_refused() {
        use std::io::Write;
        let build = |names: &[&str]| {
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            for name in names {
                zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
                zip.write_all(b"SELECT 1;").unwrap();
            }
            zip.finish().unwrap().into_inner()
        };
        let files = unzip("m.zip", &build(&["m/001_a.sql", "m/002_b.sql"])).unwrap();
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["m/001_a.sql", "m/002_b.sql"]);
        let refused = unzip("evil.zip", &build(&["../etc/passwd"])).unwrap_err();
        assert!(refused.1.contains("outside the archive"), "{refused:?}");
        assert!(unzip("x.zip", b"not a zip").unwrap_err().1.contains("not a zip archive"));
    }
}
