//! The API keys file: one key per line, `#` comments and blank lines ignored.
//!
//! ```text
//! # name:key[:rpm=N][:tpm=N]            a key in clear (hashed when read)
//! # name:sha256:HEX[:rpm=N][:tpm=N]     a key stored as its SHA-256 (`hearth hash-key`)
//! alice:sk-alice-secret:rpm=60:tpm=100000
//! ci:sha256:3b7f...e1
//! ```
//! Keys must not contain `:`. A key without its own `rpm`/`tpm` gets the server-wide
//! `--rate-limit-rpm` / `--rate-limit-tpm` (0 = unlimited).

use hearth_server::auth::{hash_key, ApiKey};

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
/// removed) that does not reveal the key.
pub fn from_flag(key: &str, d: DefaultLimits) -> ApiKey {
    let sha256 = hash_key(key);
    ApiKey {
        name: format!("key-{}", sha256.iter().take(4).map(|b| format!("{b:02x}")).collect::<String>()),
        sha256,
        requests_per_minute: nonzero(d.rpm),
        tokens_per_minute: nonzero(d.tpm),
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
    let secret = fields.next().map(str::trim).filter(|s| !s.is_empty());
    let secret = secret.ok_or_else(|| anyhow::anyhow!("no key after the name"))?;
    let sha256 = if secret == "sha256" {
        let hex = fields.next().unwrap_or_default().trim();
        parse_hex(hex).ok_or_else(|| anyhow::anyhow!("sha256: expects 64 hex digits"))?
    } else {
        hash_key(secret)
    };
    let (mut rpm, mut tpm) = (nonzero(d.rpm), nonzero(d.tpm));
    for f in fields {
        match f.trim().split_once('=') {
            Some(("rpm", v)) => rpm = nonzero(v.parse().map_err(|_| anyhow::anyhow!("rpm must be a number"))?),
            Some(("tpm", v)) => tpm = nonzero(v.parse().map_err(|_| anyhow::anyhow!("tpm must be a number"))?),
            _ => anyhow::bail!("unknown field (expected rpm=N or tpm=N; keys must not contain ':')"),
        }
    }
    Ok(ApiKey { name: name.to_string(), sha256, requests_per_minute: rpm, tokens_per_minute: tpm })
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
    }

    #[test]
    fn bad_lines_name_the_line_not_the_key() {
        for bad in ["alice", ":sk", "a:sha256:abc", "a:k:rpm=x", "a:k:what=1", "a:k\na:j"] {
            let e = parse(bad, DefaultLimits::default()).unwrap_err().to_string();
            assert!(e.contains("line"), "{bad}: {e}");
            assert!(!e.contains("sk"), "{e}");
        }
    }
}
