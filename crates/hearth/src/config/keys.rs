//! The API keys file: one key per line, `#` comments and blank lines ignored.
//!
//! ```text
//! # name:key[:rpm=N][:tpm=N][:admin][:models=ID,ID][:QUOTA=N...]   a key in clear (hashed when read)
//! # name:sha256:HEX[...]                              a key stored as its SHA-256 (`hearth hash-key`)
//! ops:sk-ops-secret:admin
//! alice:sk-alice-secret:rpm=60:tpm=100000:models=SmolLM2-135M-Instruct.Q4_1
//! ci:sha256:3b7f...e1
//! ```
//! Keys must not contain `:`; names are letters, digits, `-`, `_`, `.` and `@` (what a key
//! creates is stored under its name). A key without its own `rpm`/`tpm` gets the server-wide
//! `--rate-limit-rpm` / `--rate-limit-tpm` (0 = unlimited). `admin` keys load and unload
//! models, read `/metrics` and see every key's collections, sessions, jobs and
//! conversations; `models=` limits a key to those model ids (others are 404 to it). Quotas
//! (off unless set) bound what a key keeps: `collections=N`, `documents=N`, `storage=SIZE`
//! (bytes of uploaded files, e.g. `500MiB`), `conversations=N`, `sessions=N`; past one, the
//! key's request is a 403 naming it and nothing already stored is touched.

use hearth_server::http::auth::{hash_key, ApiKey};

/// Limits for keys that do not set their own.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultLimits {
    /// Requests per minute (0 = unlimited).
    pub rpm: u32,
    /// Tokens per minute (0 = unlimited).
    pub tpm: u64,
}

fn nonzero<T: PartialEq + Default>(v: T) -> Option<T> {
    (v != T::default()).then_some(v)
}

/// A key given on the command line (`--api-key`), named `key-` and the first 8 hex digits of
/// its SHA-256: a stable name (what it owns stays its own when other keys are added or
/// removed) that does not reveal the key. It is an admin key: the operator's, as
/// llama-server's `--api-key` is.
pub fn from_flag(key: &str, d: DefaultLimits) -> ApiKey {
    let sha256 = hash_key(key);
    ApiKey {
        name: format!("key-{}", sha256.iter().take(4).map(|b| format!("{b:02x}")).collect::<String>()),
        sha256,
        requests_per_minute: nonzero(d.rpm),
        tokens_per_minute: nonzero(d.tpm),
        admin: true,
        models: None,
        quotas: Default::default(),
    }
}

/// Parses the keys file.
///
/// # Errors
/// The first bad line, by number (never echoing the key).
pub fn parse(text: &str, d: DefaultLimits) -> anyhow::Result<Vec<ApiKey>> {
    let mut keys: Vec<ApiKey> = Vec::new();
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = parse_line(line, d).map_err(|e| anyhow::anyhow!("API keys file, line {n}: {e}"))?;
        anyhow::ensure!(!keys.iter().any(|k| k.name == key.name), "API keys file, line {n}: duplicate name");
        keys.push(key);
    }
    Ok(keys)
}

fn parse_line(line: &str, d: DefaultLimits) -> anyhow::Result<ApiKey> {
    let mut fields = line.split(':');
    let name = fields.next().unwrap_or_default().trim();
    anyhow::ensure!(!name.is_empty(), "a key needs a name (name:key)");
    anyhow::ensure!(
        hearth_server::services::owner::valid_owner(name),
        "a key's name is 1-64 letters, digits, '-', '_', '.' or '@'"
    );
    let secret = fields.next().map(str::trim).filter(|s| !s.is_empty());
    let secret = secret.ok_or_else(|| anyhow::anyhow!("no key after the name"))?;
    let sha256 = if secret == "sha256" {
        let hex = fields.next().unwrap_or_default().trim();
        parse_hex(hex).ok_or_else(|| anyhow::anyhow!("sha256: expects 64 hex digits"))?
    } else {
        hash_key(secret)
    };
    let mut key = ApiKey {
        name: name.to_string(),
        sha256,
        requests_per_minute: nonzero(d.rpm),
        tokens_per_minute: nonzero(d.tpm),
        admin: false,
        models: None,
        quotas: Default::default(),
    };
    for f in fields.map(str::trim) {
        match f.split_once('=') {
            _ if f == "admin" => key.admin = true,
            Some(("rpm", v)) => {
                key.requests_per_minute = nonzero(v.parse().map_err(|_| anyhow::anyhow!("rpm must be a number"))?)
            }
            Some(("tpm", v)) => {
                key.tokens_per_minute = nonzero(v.parse().map_err(|_| anyhow::anyhow!("tpm must be a number"))?)
            }
            Some(("models", v)) => {
                let ids: Vec<String> =
                    v.split(',').map(str::trim).filter(|m| !m.is_empty()).map(String::from).collect();
                anyhow::ensure!(!ids.is_empty(), "models= needs at least one model id");
                key.models = Some(ids);
            }
            Some((q @ ("collections" | "documents" | "storage" | "conversations" | "sessions"), v)) => {
                quota(&mut key.quotas, q, v)?;
            }
            _ => anyhow::bail!(
                "unknown field (expected rpm=N, tpm=N, admin, models=A,B or a quota: collections=N, documents=N, storage=SIZE, conversations=N, sessions=N; keys must not contain ':')"
            ),
        }
    }
    Ok(key)
}

/// Sets quota `name` from `v` (a count, or for `storage` a size such as `500MiB`).
fn quota(q: &mut hearth_server::http::auth::Quotas, name: &str, v: &str) -> anyhow::Result<()> {
    let n = if name == "storage" {
        v.parse::<crate::config::units::Bytes>().map_err(|e| anyhow::anyhow!("storage: {e}"))?.0
    } else {
        v.parse::<u64>().map_err(|_| anyhow::anyhow!("{name} must be a number"))?
    };
    let slot = match name {
        "collections" => &mut q.collections,
        "documents" => &mut q.documents,
        "storage" => &mut q.bytes,
        "conversations" => &mut q.conversations,
        _ => &mut q.sessions,
    };
    *slot = Some(n);
    Ok(())
}

fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Lower-case hex of a key's SHA-256 (`hearth hash-key`).
pub fn hex_digest(key: &str) -> String {
    hash_key(key).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_and_hashed_keys_with_limits() {
        let d = DefaultLimits { rpm: 10, tpm: 0 };
        let text = format!("# team\n\nalice:sk-a:rpm=60:tpm=1000\nci:sha256:{}\n", hex_digest("sk-ci"));
        let keys = parse(&text, d).unwrap();
        assert_eq!(keys[0].name, "alice");
        assert_eq!(keys[0].sha256, hash_key("sk-a"));
        assert_eq!((keys[0].requests_per_minute, keys[0].tokens_per_minute), (Some(60), Some(1000)));
        assert_eq!(keys[1].sha256, hash_key("sk-ci"));
        assert_eq!((keys[1].requests_per_minute, keys[1].tokens_per_minute), (Some(10), None), "defaults");
        assert!(!keys[0].admin && keys[0].models.is_none());
    }

    #[test]
    fn admin_keys_and_model_scopes() {
        let keys = parse("ops:sk-o:admin\nbob@x.org:sk-b:models=a, b:rpm=5\n", DefaultLimits::default()).unwrap();
        assert!(keys[0].admin && keys[0].models.is_none());
        assert!(!keys[1].admin);
        assert_eq!(keys[1].models.as_deref(), Some(&["a".to_string(), "b".to_string()][..]));
        assert_eq!(keys[1].requests_per_minute, Some(5));
        assert!(from_flag("sk-flag", DefaultLimits::default()).admin, "the operator's key");
    }

    #[test]
    fn quotas_are_off_unless_set() {
        let text = "q:sk-q:collections=2:documents=100:storage=5MiB:conversations=10:sessions=3\nfree:sk-f\n";
        let keys = parse(text, DefaultLimits::default()).unwrap();
        let q = keys[0].quotas;
        assert_eq!((q.collections, q.documents, q.bytes), (Some(2), Some(100), Some(5 << 20)));
        assert_eq!((q.conversations, q.sessions), (Some(10), Some(3)));
        assert_eq!(keys[1].quotas, hearth_server::http::auth::Quotas::default());
        assert!(parse("q:k:storage=lots", DefaultLimits::default()).is_err());
        assert!(parse("q:k:documents=-1", DefaultLimits::default()).is_err());
    }

    #[test]
    fn bad_lines_name_the_line_not_the_key() {
        for bad in
            ["alice", ":sk", "a:sha256:abc", "a:k:rpm=x", "a:k:what=1", "a:k\na:j", "a/b:k", "a b:k", "a:k:models="]
        {
            let e = parse(bad, DefaultLimits::default()).unwrap_err().to_string();
            assert!(e.contains("line"), "{bad}: {e}");
            assert!(!e.contains("sk"), "{e}");
        }
    }
}
