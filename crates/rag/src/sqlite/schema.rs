//! The embedded store's tables (created when missing at open).

pub(super) const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS collections (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, dim INTEGER NOT NULL, model TEXT NOT NULL,
  created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
  id INTEGER PRIMARY KEY, collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
  name TEXT NOT NULL, title TEXT, sha256 TEXT NOT NULL, metadata TEXT NOT NULL, chunks INTEGER NOT NULL,
  bytes INTEGER NOT NULL, created INTEGER NOT NULL, UNIQUE (collection_id, name));
CREATE INDEX IF NOT EXISTS documents_hash ON documents (collection_id, sha256);
CREATE TABLE IF NOT EXISTS chunks (
  id INTEGER PRIMARY KEY, document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  ord INTEGER NOT NULL, text TEXT NOT NULL, page INTEGER, section TEXT, start INTEGER NOT NULL,
  end INTEGER NOT NULL, embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks (document_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, content='chunks', content_rowid='id');
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, created INTEGER NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
  id INTEGER PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  role TEXT NOT NULL, content TEXT NOT NULL, created INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS turns_session ON turns (session_id, id);
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL, updated INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_updated ON jobs (updated);
CREATE TABLE IF NOT EXISTS conversations (
  id TEXT NOT NULL, owner TEXT NOT NULL, title TEXT NOT NULL, created INTEGER NOT NULL,
  updated INTEGER NOT NULL, version INTEGER NOT NULL, settings TEXT NOT NULL, messages TEXT NOT NULL,
  message_count INTEGER NOT NULL, search TEXT NOT NULL, PRIMARY KEY (owner, id));
CREATE INDEX IF NOT EXISTS conversations_owner ON conversations (owner, updated);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_vocab USING fts5vocab(chunks_fts, 'row');
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text); END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text); END;
";
