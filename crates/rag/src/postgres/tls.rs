//! TLS to PostgreSQL with rustls. `sslmode` works as in PostgreSQL's client library except that
//! whenever TLS is used the server's certificate is verified: against the system's roots, the
//! Mozilla roots, and the PEM file named by `sslrootcert=` in the URL (read here; the client
//! crate does not know the parameter). `sslmode=prefer` (the default) falls back to plain TCP
//! only when the server offers no TLS; `disable` never uses it; `require` refuses plain TCP.

use crate::store::{Invalid, StoreError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The URL without its `sslrootcert` parameter, and the parameter's file.
pub(super) fn take_root_cert(url: &str) -> (String, Option<PathBuf>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), None) };
    let mut file = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| match p.strip_prefix("sslrootcert=") {
            Some(path) => {
                file = Some(PathBuf::from(percent_decode(path)));
                false
            }
            None => true,
        })
        .collect();
    let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    (url, file)
}

/// `%XX` escapes decoded (paths in URLs may carry them).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex =
            b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) if b[i] == b'%' => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The connector: rustls (ring) trusting the system roots, the Mozilla roots and `extra`.
/// An unusable `sslrootcert` file; the reason goes to the log.
fn bad_root(path: &std::path::Path, why: &dyn std::fmt::Display) -> StoreError {
    tracing::warn!(path = %path.display(), error = %why, "sslrootcert is not usable");
    StoreError::Invalid(Invalid::RootCert(path.to_path_buf()))
}

pub(super) fn connector(extra: Option<&PathBuf>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Unreadable system certificates are skipped: the other roots still apply.
    let (added, ignored) = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    tracing::debug!(added, ignored, "system root certificates");
    if let Some(path) = extra {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| bad_root(path, &e))?;
        if certs.is_empty() {
            return Err(bad_root(path, &"no certificate in it"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad_root(path, &e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(crate::store::Fault::Tls(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslrootcert_is_taken_out_of_the_url() {
        let (url, ca) =
            take_root_cert("postgres://u@h/db?sslmode=require&sslrootcert=%2Fetc%2Fca.pem&application_name=x");
        assert_eq!(url, "postgres://u@h/db?sslmode=require&application_name=x");
        assert_eq!(ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            take_root_cert("postgres://u@h/db?sslrootcert=/a.pem"),
            ("postgres://u@h/db".into(), Some("/a.pem".into()))
        );
        assert_eq!(take_root_cert("postgres://u@h/db"), ("postgres://u@h/db".into(), None));
    }

    #[test]
    fn a_missing_root_file_is_a_clear_error() {
        let Err(e) = connector(Some(&PathBuf::from("/nonexistent/ca.pem"))) else { panic!("accepted") };
        assert!(e.to_string().contains("sslrootcert /nonexistent/ca.pem"), "{e}");
    }
}
