//! Where the store lives: a SQLite file (the default) or a PostgreSQL URL.

use crate::store::{StoreError, VectorStore};
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
                        .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", dir.display())))?;
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

/// The URL with its password (`user:password@`, or a `password=` parameter) replaced by `***`.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| if p.starts_with("password=") { "password=***".to_string() } else { p.to_string() })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
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
        assert_eq!(shown("postgres://a:b:c@db/x?sslmode=disable"), "postgres://a:***@db/x?sslmode=disable");
        assert_eq!(shown("postgresql://db/rag?user=u&password=s3cret"), "postgresql://db/rag?user=u&password=***");
        assert_eq!(shown("postgres://u@db/rag"), "postgres://u@db/rag");
        assert!(!format!("{:?}", StoreLocation::parse("postgres://u:pw@h/d")).contains("pw"));
    }
}
