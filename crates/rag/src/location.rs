//! Where the store lives: a SQLite file (the default) or a PostgreSQL URL.

use crate::store::{Fault, StoreError, VectorStore};
use std::path::PathBuf;
use std::sync::Arc;

/// A store's location, from `--vector-store`.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded store: a SQLite file.
    Sqlite(PathBuf),
    /// PostgreSQL with pgvector: `postgres://` or `postgresql://` URL (may hold a password).
    Postgres(String),
}

impl StoreLocation {
    /// A URL starting `postgres://` or `postgresql://` is PostgreSQL; anything else a file.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Self::Postgres(s.to_string())
        } else {
            Self::Sqlite(PathBuf::from(s))
        }
    }

    /// Opens (or connects to) the store. Blocking: PostgreSQL's client must not be created on
    /// an async runtime's thread.
    ///
    /// # Errors
    /// When the file cannot be opened or the server cannot be reached or set up.
    pub fn open(&self) -> Result<Arc<dyn VectorStore>, StoreError> {
        Ok(match self {
            Self::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|source| StoreError::Backend(Fault::Folder { path: dir.to_path_buf(), source }))?;
                }
                Arc::new(crate::sqlite::SqliteStore::open(path)?)
            }
            Self::Postgres(url) => Arc::new(crate::postgres::PgStore::connect(url)?),
        })
    }
}

/// Shown without the password.
impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "{}", p.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreLocation({self})")
    }
}

/// The URL as PostgreSQL's client reads it, rebuilt from its parts without the password (so no
/// quirk of the URL syntax can show it); unparseable ones are not shown at all.
fn redact(url: &str) -> String {
    let Ok(c) = url.parse::<postgres::Config>() else { return "postgres://(an unparseable URL, not shown)".into() };
    let user = match (c.get_user(), c.get_password().is_some()) {
        (Some(u), true) => format!("{u}:***@"),
        (Some(u), false) => format!("{u}@"),
        (None, true) => ":***@".to_string(),
        (None, false) => String::new(),
    };
    let ports = c.get_ports();
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        })
        .collect();
    format!("postgres://{user}{}/{}", hosts.join(","), c.get_dbname().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_the_rest_files() {
        assert!(matches!(StoreLocation::parse("postgres://h/db"), StoreLocation::Postgres(_)));
        assert!(matches!(StoreLocation::parse("postgresql://h/db"), StoreLocation::Postgres(_)));
        assert_eq!(StoreLocation::parse("/data/rag.sqlite"), StoreLocation::Sqlite("/data/rag.sqlite".into()));
    }

    #[test]
    fn passwords_never_show() {
        let shown = |s: &str| StoreLocation::parse(s).to_string();
        assert_eq!(shown("postgres://hearth:s3cret@db:5432/rag"), "postgres://hearth:***@db:5432/rag");
        assert_eq!(shown("postgres://a:b:c@db/x?sslmode=disable"), "postgres://a:***@db:5432/x");
        assert_eq!(shown("postgresql://db/rag?user=u&password=s3cret"), "postgres://u:***@db:5432/rag");
        assert_eq!(shown("postgres://u@db/rag"), "postgres://u@db:5432/rag");
        for tricky in
            ["postgres://hearth:ab/cd+ef@db/rag", "postgres://h:p?w@db/r", "postgres://db/r?pass%77ord=s3cret"]
        {
            let s = shown(tricky);
            assert!(!s.contains("cd+ef") && !s.contains("p?w") && !s.contains("s3cret"), "{tricky} -> {s}");
        }
        assert!(!format!("{:?}", StoreLocation::parse("postgres://u:pw@h/d")).contains("pw"));
    }
}
