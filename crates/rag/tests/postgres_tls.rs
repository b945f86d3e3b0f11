//! TLS to PostgreSQL. The test server is built without TLS, so a small TLS terminator that
//! speaks PostgreSQL's SSLRequest handshake stands in front of it, with a certificate made here:
//! the store must verify it against `sslrootcert`, refuse it without, and refuse a server with
//! no TLS when `sslmode=require`.

use hearth_rag::fixtures::postgres_database;
use hearth_rag::postgres::PgStore;
use hearth_rag::store::{NewChunk, NewDocument, Query, SearchMode, VectorStore};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 4, 210, 22, 47];

/// Starts the terminator for `upstream`; its address.
fn terminator(upstream: SocketAddr, cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((mut client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let mut first = [0u8; 8];
                    client.read_exact(&mut first).await.ok()?;
                    assert_eq!(first, SSL_REQUEST, "the client asks for TLS first");
                    client.write_all(b"S").await.ok()?;
                    let mut tls = acceptor.accept(client).await.ok()?;
                    let mut server = tokio::net::TcpStream::connect(upstream).await.ok()?;
                    tokio::io::copy_bidirectional(&mut tls, &mut server).await.ok()
                });
            }
        });
    });
    addr
}

#[test]
fn tls_is_verified_against_sslrootcert() {
    let Some(url) = postgres_database("tls") else { return };
    let config: postgres::Config = url.parse().unwrap();
    let upstream: SocketAddr = match &config.get_hosts()[0] {
        postgres::config::Host::Tcp(h) => format!("{h}:{}", config.get_ports()[0]).parse().unwrap(),
        other => panic!("{other:?}"),
    };
    let db = config.get_dbname().unwrap().to_string();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("hearth-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, made.cert.pem()).unwrap();
    let key = PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let tls = terminator(upstream, made.cert.der().clone(), key);

    let base = format!("postgres://hearth@localhost:{}/{db}?sslmode=require", tls.port());
    let store = PgStore::connect(&format!("{base}&sslrootcert={}", ca.display())).unwrap();
    store.create_collection("secure", 3, "m").unwrap();
    let doc =
        NewDocument { name: "a.md".into(), title: None, sha256: "ab".into(), metadata: Default::default(), bytes: 1 };
    let chunk = NewChunk {
        text: "encrypted hello".into(),
        page: None,
        section: None,
        start: 0,
        end: 15,
        embedding: vec![1.0, 0.0, 0.0],
    };
    store.put_document("secure", doc, vec![chunk]).unwrap();
    let q = Query {
        vector: Some(vec![1.0, 0.0, 0.0]),
        text: "hello".into(),
        mode: SearchMode::Hybrid,
        top_k: 1,
        filter: Default::default(),
    };
    assert_eq!(store.search("secure", &q).unwrap()[0].text, "encrypted hello", "queries go through TLS");

    let Err(e) = PgStore::connect(&base) else { panic!("an unknown certificate was trusted") };
    assert!(e.to_string().contains("certificate"), "{e}");
    let plain = format!("postgres://hearth@{upstream}/{db}?sslmode=require");
    assert!(PgStore::connect(&plain).is_err(), "require refuses a server without TLS");
    std::fs::remove_dir_all(&dir).ok();
}
