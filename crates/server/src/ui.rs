//! The browser UI (`web/`), embedded in the binary by `build.rs`: every file of `web/dist`
//! stored raw and gzipped (level 9), with an ETag, served at `/` (the page) and `/assets/...`
//! (hashed names, cached for a year) under a Content-Security-Policy that allows only the
//! server itself. `GET /` answers a browser (`Accept: text/html`) with the page and any other
//! client with a line saying Hearth is running; `--no-ui` keeps only that line.

use crate::http::error::ApiError;
use crate::services::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its path under `/`.
    pub path: &'static str,
    /// `Content-Type`.
    pub mime: &'static str,
    /// Strong ETag (quoted), from the content's SHA-256.
    pub etag: &'static str,
    /// The ETag of the gzipped bytes (another representation, another tag).
    pub etag_gzip: &'static str,
    /// The bytes.
    pub raw: &'static [u8],
    /// The bytes, gzipped.
    pub gzip: &'static [u8],
}

/// Every file of the UI.
pub static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// Only the server itself: scripts and styles from its own files, style attributes allowed
/// (rendered math sets them), calls back to the same origin only.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; \
img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'; form-action 'self'";

/// What `GET /` tells a client that is not a browser.
pub const RUNNING: &str = "Hearth is running\n";

/// The embedded file at `path`.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

fn accepts(headers: &HeaderMap, name: header::HeaderName, what: &str) -> bool {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|part| {
            let mut it = part.split(';');
            let token = it.next().unwrap_or("").trim();
            let refused =
                it.any(|p| matches!(p.trim().strip_prefix("q="), Some(q) if q.trim().parse::<f32>() == Ok(0.0)));
            token.eq_ignore_ascii_case(what) && !refused
        })
    })
}

/// Answers with `a`: 304 when the client has it, gzip when the client takes it.
fn serve(a: &Asset, headers: &HeaderMap, immutable: bool) -> Response {
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    let gzip = accepts(headers, header::ACCEPT_ENCODING, "gzip");
    let etag = if gzip { a.etag_gzip } else { a.etag };
    let mut res = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else if gzip {
        let mut r = a.gzip.into_response();
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        a.raw.into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(header::ETAG, HeaderValue::from_static(etag));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

fn running() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], RUNNING).into_response()
}

/// `GET /`: the UI for a browser, a line of text for other clients.
pub async fn index(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if !app.ui || !accepts(&headers, header::ACCEPT, "text/html") {
        return running();
    }
    match asset("/index.html") {
        Some(a) => {
            let mut res = serve(a, &headers, false);
            // The same URL answers other clients with text.
            res.headers_mut().insert(header::VARY, HeaderValue::from_static("accept, accept-encoding"));
            res
        }
        None => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Hearth is running; this build has no browser UI (web/dist was empty when it was built)\n",
        )
            .into_response(),
    }
}

/// `GET /assets/{*file}`: the UI's scripts, styles and fonts.
///
/// # Errors
/// 404 for an unknown file, or with the UI off.
pub async fn file(
    State(app): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = format!("/assets/{rest}");
    match asset(&path).filter(|_| app.ui) {
        Some(a) => Ok(serve(a, &headers, true)),
        None => Err(ApiError::NotFound(path)),
    }
}

/// `GET /favicon.svg`.
///
/// # Errors
/// 404 without a UI.
pub async fn favicon(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    match asset("/favicon.svg").filter(|_| app.ui) {
        Some(a) => Ok(serve(a, &headers, false)),
        None => Err(ApiError::NotFound("/favicon.svg".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: header::HeaderName, v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(name, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn browsers_are_told_apart_by_accept() {
        let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(accepts(&h(header::ACCEPT, chrome), header::ACCEPT, "text/html"));
        assert!(!accepts(&h(header::ACCEPT, "*/*"), header::ACCEPT, "text/html"));
        assert!(!accepts(&h(header::ACCEPT, "text/html;q=0"), header::ACCEPT, "text/html"));
        assert!(!accepts(&HeaderMap::new(), header::ACCEPT, "text/html"));
    }

    #[test]
    fn gzip_only_when_taken() {
        assert!(accepts(&h(header::ACCEPT_ENCODING, "gzip, deflate, br"), header::ACCEPT_ENCODING, "gzip"));
        assert!(!accepts(&h(header::ACCEPT_ENCODING, "br, gzip;q=0"), header::ACCEPT_ENCODING, "gzip"));
    }

    #[test]
    fn asset_answers_304_for_its_etag_and_carries_the_policy() {
        let a = Asset {
            path: "/x.js",
            mime: "text/javascript",
            etag: "\"abc\"",
            etag_gzip: "\"abc-gz\"",
            raw: b"raw",
            gzip: b"gz",
        };
        let res = serve(&a, &h(header::IF_NONE_MATCH, "\"abc\""), true);
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        let mut both = h(header::IF_NONE_MATCH, "\"abc\"");
        both.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(serve(&a, &both, true).status(), StatusCode::OK, "the gzip body has its own tag");
        let res = serve(&a, &h(header::ACCEPT_ENCODING, "gzip"), true);
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
        assert!(res.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
        assert_eq!(res.headers()[header::CONTENT_SECURITY_POLICY], CSP);
    }
}
