//! The stored login: the hub's address and an API token, in `$XDG_CONFIG_HOME/migrate-hub/credentials.json`
//! (default `~/.config/…`), a file of mode 0600 in a directory of mode 0700.

use std::io::Write;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::api::Failure;

#[derive(Serialize, Deserialize)]
struct Stored {
    server: String,
    token: String,
}

/// A hub's address and a token for it.
pub struct Credentials {
    pub server: String,
    pub token: SecretString,
}

fn dir() -> Result<PathBuf, Failure> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => {
                return Err(Failure::Usage(
                    "neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the login".into(),
                ));
            }
        },
    };
    Ok(base.join("migrate-hub"))
}

pub fn path() -> Result<PathBuf, Failure> {
    Ok(dir()?.join("credentials.json"))
}

/// The stored login, if there is one.
pub fn load() -> Result<Option<Credentials>, Failure> {
    let path = path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::Usage(format!("cannot read {}: {e}", path.display()))),
    };
    let stored: Stored = serde_json::from_str(&text).map_err(|e| {
        Failure::Usage(format!(
            "{} is not a login this tool wrote ({e}); run `migrate-hub login` again",
            path.display()
        ))
    })?;
    Ok(Some(Credentials { server: stored.server, token: SecretString::from(stored.token) }))
}

/// Writes the login, readable by the user only (the file is created with mode 0600, never widened).
pub fn store(credentials: &Credentials) -> Result<PathBuf, Failure> {
    let dir = dir()?;
    let path = dir.join("credentials.json");
    let failed = |e: std::io::Error| Failure::Usage(format!("cannot write {}: {e}", path.display()));
    std::fs::create_dir_all(&dir).map_err(failed)?;
    let body = serde_json::to_vec_pretty(&Stored {
        server: credentials.server.clone(),
        token: credentials.token.expose_secret().to_owned(),
    })
    .map_err(|e| Failure::Usage(format!("cannot encode the login: {e}")))?;
    // Written beside and renamed over: a reader never sees half a file.
    let partial = dir.join("credentials.json.partial");
    let _ = std::fs::remove_file(&partial);
    let mut file = open_private(&partial).map_err(failed)?;
    file.write_all(&body).and_then(|()| file.sync_all()).map_err(failed)?;
    std::fs::rename(&partial, &path).map_err(failed)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    }
    Ok(path)
}

/// Removes the stored login; `false` when there was none.
pub fn forget() -> Result<bool, Failure> {
    let path = path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Failure::Usage(format!("cannot remove {}: {e}", path.display()))),
    }
}

#[cfg(unix)]
fn open_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn open_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}
