//! API keys and per-key rate limits.
//!
//! Keys are kept as SHA-256 digests only; a presented bearer token is hashed and compared with
//! every known digest in constant time. Each key may carry its own requests/minute and
//! tokens/minute limits (token buckets refilled continuously); a request over either gets 429
//! with `Retry-After`, and every authenticated answer carries OpenAI's `x-ratelimit-*` headers.

use crate::http::error::ApiError;
use crate::http::route::{Access, Matched};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use subtle::ConstantTimeEq;

/// One API key as configured.
#[derive(Clone, Default)]
pub struct ApiKey {
    /// A name for logs and metrics (never the key).
    pub name: String,
    /// SHA-256 of the key.
    pub sha256: [u8; 32],
    /// Requests per minute; `None` = unlimited.
    pub requests_per_minute: Option<u32>,
    /// Tokens (prompt + generated) per minute; `None` = unlimited.
    pub tokens_per_minute: Option<u64>,
    /// May load and unload models, read `/metrics` and see every key's objects.
    pub admin: bool,
    /// The only models (by id) the key may use and see; `None` = all.
    pub models: Option<Vec<String>>,
    /// What the key may keep in the store (`None` each: no limit).
    pub quotas: Quotas,
}

/// What one key may keep in the store; off (`None`) unless its line in the keys file sets them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quotas {
    /// Collections.
    pub collections: Option<u64>,
    /// Documents in all its collections.
    pub documents: Option<u64>,
    /// Bytes of the files its documents came from.
    pub bytes: Option<u64>,
    /// Conversations kept for the UI and other clients.
    pub conversations: Option<u64>,
    /// Retrieval sessions (`session_id` of `/api/v1/generate`).
    pub sessions: Option<u64>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("sha256", &"<redacted>")
            .field("requests_per_minute", &self.requests_per_minute)
            .field("tokens_per_minute", &self.tokens_per_minute)
            .field("admin", &self.admin)
            .field("models", &self.models)
            .field("quotas", &self.quotas)
            .finish()
    }
}

/// SHA-256 of a key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Who may call and which routes are open.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Accepted keys; empty = no authentication.
    pub keys: Vec<ApiKey>,
    /// `/health*` answers without a key.
    pub public_health: bool,
    /// `/metrics` answers without a key.
    pub public_metrics: bool,
    /// `/openapi.json` and `/docs` answer without a key.
    pub public_docs: bool,
}

/// A token bucket: `capacity` per minute, refilled continuously. May go negative when a
/// request used more tokens than were left; the next request then waits.
#[derive(Debug)]
struct Bucket {
    capacity: f64,
    level: f64,
    at: Instant,
}

impl Bucket {
    fn new(per_minute: f64) -> Self {
        Self { capacity: per_minute, level: per_minute, at: Instant::now() }
    }

    fn refill(&mut self, now: Instant) {
        let per_sec = self.capacity / 60.0;
        self.level = (self.level + (now - self.at).as_secs_f64() * per_sec).min(self.capacity);
        self.at = now;
    }

    /// Seconds until the level reaches `need`.
    fn wait(&self, need: f64) -> f64 {
        ((need - self.level) / (self.capacity / 60.0)).max(0.0)
    }
}

/// A key's live limits.
#[derive(Debug)]
struct Limiter {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

/// The key a request was made with; handlers charge its tokens with [`Caller::charge`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's name.
    pub name: String,
    /// An admin key.
    pub admin: bool,
    /// The models it may use (`None`: all).
    pub models: Option<Arc<[String]>>,
    /// What it may keep in the store.
    pub quotas: Quotas,
    limiter: Arc<Mutex<Limiter>>,
}

impl Caller {
    /// Counts tokens a request used against the key's tokens/minute.
    pub fn charge(&self, tokens: u64) {
        let mut l = self.limiter.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = l.tokens.as_mut() {
            b.refill(Instant::now());
            b.level -= tokens as f64;
        }
    }

    /// Takes one request from the key's budget, or says how long to wait.
    fn admit(&self) -> Result<(), u64> {
        let now = Instant::now();
        let mut l = self.limiter.lock().unwrap_or_else(PoisonError::into_inner);
        let mut wait = 0.0_f64;
        if let Some(b) = l.tokens.as_mut() {
            b.refill(now);
            if b.level <= 0.0 {
                wait = wait.max(b.wait(1.0));
            }
        }
        if let Some(b) = l.requests.as_mut() {
            b.refill(now);
            if b.level < 1.0 {
                wait = wait.max(b.wait(1.0));
            }
        }
        if wait > 0.0 {
            return Err(wait.ceil().max(1.0) as u64);
        }
        if let Some(b) = l.requests.as_mut() {
            b.level -= 1.0;
        }
        Ok(())
    }

    /// OpenAI's rate limit headers for the key's current state.
    fn headers(&self, h: &mut HeaderMap) {
        let l = self.limiter.lock().unwrap_or_else(PoisonError::into_inner);
        let mut put = |name: &'static str, v: String| {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(name, v);
            }
        };
        for (kind, b) in [("requests", &l.requests), ("tokens", &l.tokens)] {
            let Some(b) = b else { continue };
            let reset = b.wait(b.capacity);
            let (limit, remaining) = (b.capacity as u64, b.level.max(0.0) as u64);
            match kind {
                "requests" => {
                    put("x-ratelimit-limit-requests", limit.to_string());
                    put("x-ratelimit-remaining-requests", remaining.to_string());
                    put("x-ratelimit-reset-requests", format!("{reset:.0}s"));
                }
                _ => {
                    put("x-ratelimit-limit-tokens", limit.to_string());
                    put("x-ratelimit-remaining-tokens", remaining.to_string());
                    put("x-ratelimit-reset-tokens", format!("{reset:.0}s"));
                }
            }
        }
    }
}

/// The configured keys with their live limiters.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    keys: Arc<Vec<(ApiKey, Caller)>>,
    public_health: bool,
    public_metrics: bool,
    public_docs: bool,
}

impl Keys {
    /// Live state for `cfg`.
    pub fn new(cfg: AuthConfig) -> Self {
        let keys = cfg
            .keys
            .into_iter()
            .map(|k| {
                let limiter = Limiter {
                    requests: k.requests_per_minute.map(|n| Bucket::new(f64::from(n))),
                    tokens: k.tokens_per_minute.map(|n| Bucket::new(n as f64)),
                };
                let caller = Caller {
                    name: k.name.clone(),
                    admin: k.admin,
                    models: k.models.as_deref().map(Arc::from),
                    quotas: k.quotas,
                    limiter: Arc::new(Mutex::new(limiter)),
                };
                (k, caller)
            })
            .collect();
        Self {
            keys: Arc::new(keys),
            public_health: cfg.public_health,
            public_metrics: cfg.public_metrics,
            public_docs: cfg.public_docs,
        }
    }

    /// Whether any key is configured.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The caller a bearer token belongs to. Every digest is compared, in constant time.
    fn find(&self, token: &str) -> Option<Caller> {
        let digest = hash_key(token);
        let mut found = None;
        for (k, caller) in self.keys.iter() {
            if bool::from(k.sha256.ct_eq(&digest)) {
                found = Some(caller.clone());
            }
        }
        found
    }

    /// Whether `route` is open without a key.
    pub fn is_public(&self, route: Option<Matched>) -> bool {
        match route.map(|r| (r.access, r.path)) {
            Some((Access::Probe, _)) => self.public_health,
            Some((Access::Docs, _)) => self.public_docs,
            Some((Access::Ui, _)) => true,
            Some((Access::Admin, "/metrics")) => self.public_metrics,
            _ => false,
        }
    }
}

/// The key a request presents: `Authorization: Bearer KEY`, or Anthropic's `x-api-key: KEY`.
fn bearer(req: &Request) -> Option<&str> {
    let h = req.headers();
    let from_auth = h.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let from_x = || h.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim);
    from_auth.filter(|t| !t.is_empty()).or_else(from_x).filter(|t| !t.is_empty())
}

/// The middleware: no keys configured, a public route, or a valid key within its limits.
pub async fn require_key(State(keys): State<Keys>, mut req: Request, next: Next) -> Response {
    let keys = &keys;
    let route = Matched::of(&req);
    if !keys.enabled() || req.method() == axum::http::Method::OPTIONS {
        return next.run(req).await;
    }
    if keys.is_public(route) {
        // Open to all; a valid key still identifies its caller (a probe without one sees
        // less, see `health`).
        if let Some(c) = bearer(&req).and_then(|t| keys.find(t)) {
            req.extensions_mut().insert(c);
        }
        return next.run(req).await;
    }
    let caller = match bearer(&req) {
        None => return ApiError::Unauthorized { provided: false }.into_response(),
        Some(token) => match keys.find(token) {
            None => return ApiError::Unauthorized { provided: true }.into_response(),
            Some(c) => c,
        },
    };
    let admin_only = route.is_some_and(|r| r.access == Access::Admin);
    if admin_only && !caller.admin {
        return ApiError::Forbidden("this operation needs an admin API key".into()).into_response();
    }
    if let Err(retry_after) = caller.admit() {
        let mut res = ApiError::RateLimited { retry_after }.into_response();
        caller.headers(res.headers_mut());
        return res;
    }
    tracing::debug!(key = %caller.name, "authenticated");
    req.extensions_mut().insert(caller.clone());
    let mut res = next.run(req).await;
    caller.headers(res.headers_mut());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(rpm: Option<u32>, tpm: Option<u64>) -> Keys {
        let key = ApiKey {
            name: "alice".into(),
            sha256: hash_key("sk-alice"),
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
            ..ApiKey::default()
        };
        Keys::new(AuthConfig { keys: vec![key], public_health: true, public_metrics: false, public_docs: true })
    }

    #[test]
    fn keys_match_by_digest_only() {
        let k = keys(None, None);
        assert_eq!(k.find("sk-alice").map(|c| c.name), Some("alice".into()));
        assert!(k.find("sk-alic").is_none() && k.find("").is_none());
        assert!(!format!("{:?}", k).contains(&format!("{:?}", hash_key("sk-alice"))), "digests not in Debug");
    }

    #[test]
    fn request_and_token_buckets_refuse_then_recover() {
        let c = keys(Some(2), Some(100)).find("sk-alice").unwrap();
        assert!(c.admit().is_ok() && c.admit().is_ok());
        let wait = c.admit().unwrap_err();
        assert!((1..=30).contains(&wait), "{wait}");
        let c = keys(None, Some(100)).find("sk-alice").unwrap();
        assert!(c.admit().is_ok());
        c.charge(150);
        assert!(c.admit().is_err(), "over the token budget");
        // Refill: move the clock back instead of sleeping.
        c.limiter.lock().unwrap().tokens.as_mut().unwrap().at -= std::time::Duration::from_secs(60);
        assert!(c.admit().is_ok());
    }

    #[test]
    fn probes_are_public_only_when_configured() {
        let k = keys(None, None);
        let at = |access, path| Some(Matched { path, access, protocol: crate::http::route::Protocol::OpenAi });
        assert!(k.is_public(at(Access::Probe, "/health/ready")) && !k.is_public(at(Access::Admin, "/metrics")));
        assert!(!k.is_public(at(Access::Key, "/v1/models")) && !k.is_public(None));
        assert!(k.is_public(at(Access::Docs, "/docs/{*rest}")) && k.is_public(at(Access::Ui, "/")));
    }
}
