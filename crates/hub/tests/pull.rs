//! Pulls against a hub on loopback that speaks the hub's protocol, serving the real SmolLM2 file
//! (`scripts/fetch-models`): quant choice, the cache layout, resume after a cut, a wrong hash,
//! split files, 401/404, a full disk, and a second pull that fetches nothing.

use bytes::Bytes;
use hearth_hub::testing::{self, HubFile, LoopbackHub, COMMIT, TOKEN};
use hearth_hub::{Hub, HubSettings, Progress, PullError, Reference};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1";

fn smol() -> Bytes {
    static BYTES: OnceLock<Bytes> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let home = std::env::var_os("HEARTH_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/hearth"));
            let path = home.join("models").join(format!("{SMOL}.gguf"));
            Bytes::from(
                std::fs::read(&path).unwrap_or_else(|e| panic!("run scripts/fetch-models ({}: {e})", path.display())),
            )
        })
        .clone()
}

fn hub_with_repos() -> LoopbackHub {
    let real = smol();
    let half = real.len() / 2;
    let mut repo = BTreeMap::new();
    repo.insert("SmolLM2-135M-Instruct-Q4_1.gguf".to_string(), HubFile::new(real.clone()));
    repo.insert("SmolLM2-135M-Instruct-Q8_0.gguf".to_string(), HubFile::new(real.slice(..4096)));
    repo.insert("split/m-F16-00001-of-00002.gguf".to_string(), HubFile::new(real.slice(..half)));
    repo.insert("split/m-F16-00002-of-00002.gguf".to_string(), HubFile::new(real.slice(half..)));
    repo.insert("README.md".to_string(), HubFile::new(Bytes::from_static(b"# test")));
    let mut liar = HubFile::new(real.slice(..8192));
    liar.sha256 = "ab".repeat(32);
    repo.insert("bad-Q4_0.gguf".to_string(), liar);
    let mut repos = BTreeMap::new();
    let few: BTreeMap<_, _> = ["SmolLM2-135M-Instruct-Q4_1.gguf", "SmolLM2-135M-Instruct-Q8_0.gguf"]
        .iter()
        .map(|n| (n.to_string(), repo[*n].clone()))
        .collect();
    repos.insert("test/Few-GGUF".to_string(), few);
    repos.insert("test/SmolLM2-GGUF".to_string(), repo.clone());
    repos.insert("private/SmolLM2-GGUF".to_string(), repo);
    LoopbackHub { repos, ..Default::default() }
}

struct Setup {
    hub: Arc<LoopbackHub>,
    client: Hub,
    cache: PathBuf,
    models: PathBuf,
}

async fn setup(name: &str, token: Option<&str>) -> Setup {
    let dir = std::env::temp_dir().join(format!("hearth-pull-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let hub = Arc::new(hub_with_repos());
    let endpoint = testing::serve(hub.clone()).await;
    let cache = dir.join("hf");
    let settings = HubSettings { endpoint, token: token.map(str::to_string), cache: cache.clone() };
    Setup { hub, client: Hub::new(settings).unwrap(), cache, models: dir.join("models") }
}

async fn pull(s: &Setup, r: &str) -> Result<hearth_hub::Pulled, PullError> {
    let r: Reference = r.parse().unwrap();
    s.client.pull(&r, &s.models, &mut |_p: Progress| {}).await
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn pulls_the_quant_into_the_hub_cache_and_the_models_folder() {
    let s = setup("quant", None).await;
    let mut events = Vec::new();
    let r: Reference = "hf.co/test/SmolLM2-GGUF:q4_1".parse().unwrap();
    let got = s.client.pull(&r, &s.models, &mut |p| events.push(p)).await.unwrap();
    assert_eq!(got.id, "SmolLM2-135M-Instruct-Q4_1");
    assert_eq!(got.fetched, smol().len() as u64);
    assert_eq!(std::fs::read(&got.paths[0]).unwrap(), smol(), "the models folder serves the real bytes");
    assert_eq!(listing(&s.models), ["SmolLM2-135M-Instruct-Q4_1.gguf"], "no partial or hidden files left");
    let repo = s.cache.join("models--test--SmolLM2-GGUF");
    let sha: String = Sha256::digest(smol()).iter().map(|b| format!("{b:02x}")).collect();
    assert!(repo.join("blobs").join(&sha).is_file(), "the blob is named by its sha256");
    let snap = repo.join("snapshots").join(COMMIT).join("SmolLM2-135M-Instruct-Q4_1.gguf");
    assert!(std::fs::symlink_metadata(&snap).unwrap().file_type().is_symlink(), "the snapshot links to the blob");
    assert_eq!(std::fs::read_to_string(repo.join("refs/main")).unwrap(), COMMIT);
    assert!(matches!(events.first(), Some(Progress::Resolved { .. })), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Progress::Verifying { .. })));
    // A HEAD on resolve first (metadata without the redirect), then the bytes where it points.
    let seen = s.hub.seen.lock().unwrap().clone();
    assert!(seen.iter().any(|(m, p, _)| m == "HEAD" && p.contains("/resolve/")), "{seen:?}");
}

#[tokio::test]
async fn without_the_default_quant_the_best_there_is_pulled_with_a_note() {
    let s = setup("best", None).await;
    let mut notes = Vec::new();
    let r: Reference = "test/Few-GGUF".parse().unwrap();
    let got = s
        .client
        .pull(&r, &s.models, &mut |p| {
            if let Progress::Resolved { note: Some(n), .. } = p {
                notes.push(n);
            }
        })
        .await
        .unwrap();
    assert_eq!((got.quant.as_str(), got.id.as_str()), ("Q8_0", "SmolLM2-135M-Instruct-Q8_0"));
    assert!(got.note.as_deref().is_some_and(|n| n.contains("Q4_K_M") && n.contains("Q8_0")), "{:?}", got.note);
    assert_eq!(notes.len(), 1, "the note comes with the file list: {notes:?}");
}

#[tokio::test]
async fn a_second_pull_fetches_no_bytes() {
    let s = setup("again", None).await;
    pull(&s, "test/SmolLM2-GGUF:Q4_1").await.unwrap();
    std::fs::remove_dir_all(&s.models).unwrap();
    let before = s.hub.downloads().len();
    let again = pull(&s, "test/SmolLM2-GGUF:Q4_1").await.unwrap();
    assert_eq!((again.fetched, s.hub.downloads().len()), (0, before), "the hub cache is reused");
    assert!(again.paths[0].is_file());
}

#[tokio::test]
async fn two_repositories_with_one_file_name_keep_their_own_models() {
    let s = setup("same-name", Some(TOKEN)).await;
    let first = pull(&s, "test/SmolLM2-GGUF:Q4_1").await.unwrap();
    let again = pull(&s, "test/SmolLM2-GGUF:Q4_1").await.unwrap();
    assert_eq!(again.paths, first.paths, "the same repository's file keeps its name");
    let other = pull(&s, "private/SmolLM2-GGUF:Q4_1").await.unwrap();
    assert_eq!(other.id, "private--SmolLM2-GGUF--SmolLM2-135M-Instruct-Q4_1");
    assert_eq!(
        listing(&s.models),
        ["SmolLM2-135M-Instruct-Q4_1.gguf", "private--SmolLM2-GGUF--SmolLM2-135M-Instruct-Q4_1.gguf"]
    );
    let target = |p: &Path| std::fs::canonicalize(p).unwrap();
    assert!(
        target(&first.paths[0]).starts_with(std::fs::canonicalize(s.cache.join("models--test--SmolLM2-GGUF")).unwrap())
    );
    assert!(target(&other.paths[0])
        .starts_with(std::fs::canonicalize(s.cache.join("models--private--SmolLM2-GGUF")).unwrap()));
}

#[tokio::test]
async fn a_renamed_repository_is_followed_to_its_new_name() {
    let dir = std::env::temp_dir().join(format!("hearth-pull-renamed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut hub = hub_with_repos();
    hub.renamed.insert("old/SmolLM2-GGUF".into(), "test/SmolLM2-GGUF".into());
    let hub = Arc::new(hub);
    let endpoint = testing::serve(hub.clone()).await;
    let client = Hub::new(HubSettings { endpoint, token: None, cache: dir.join("hf") }).unwrap();
    let r: Reference = "old/SmolLM2-GGUF:Q4_1".parse().unwrap();
    let got = client.pull(&r, &dir.join("models"), &mut |_p: Progress| {}).await.unwrap();
    assert_eq!(std::fs::read(&got.paths[0]).unwrap(), smol());
    let seen = hub.seen.lock().unwrap().clone();
    for (method, at) in [("GET", "/api/models/test/SmolLM2-GGUF/"), ("HEAD", "/test/SmolLM2-GGUF/resolve/")] {
        assert!(seen.iter().any(|(m, p, _)| m == method && p.starts_with(at)), "{method} {at} followed: {seen:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn two_pulls_of_one_file_at_once_download_it_once() {
    let s = setup("together", None).await;
    s.hub.pace.store(16 << 20, std::sync::atomic::Ordering::SeqCst);
    let (a, b) = tokio::join!(pull(&s, "test/SmolLM2-GGUF:Q4_1"), pull(&s, "hf.co/test/SmolLM2-GGUF:q4_1"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(s.hub.downloads().len(), 1, "the second waited for the first: {:?}", s.hub.downloads());
    assert_eq!(a.fetched + b.fetched, smol().len() as u64);
    assert_eq!(std::fs::read(&b.paths[0]).unwrap(), smol());
    let lock = s.cache.join(".locks/models--test--SmolLM2-GGUF");
    assert_eq!(listing(&lock).len(), 1, "huggingface_hub's lock file: {:?}", listing(&lock));
}

#[tokio::test]
async fn a_cut_download_resumes_with_range() {
    let s = setup("resume", None).await;
    s.hub.cut_next.store(true, std::sync::atomic::Ordering::SeqCst);
    let got = pull(&s, "test/SmolLM2-GGUF:Q4_1").await.unwrap();
    assert_eq!(std::fs::read(&got.paths[0]).unwrap(), smol());
    let downloads = s.hub.downloads();
    let half = smol().len() / 2;
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    // Resumed where the bytes stopped: at most half (the connection dropped while sending it).
    let from: usize =
        downloads[1].2.as_deref().and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()).unwrap();
    assert!(from > 0 && from <= half, "{downloads:?}");
    assert_eq!(got.fetched, smol().len() as u64, "no byte fetched twice");
}

#[tokio::test]
async fn a_wrong_hash_is_refused_and_nothing_is_left() {
    let s = setup("hash", None).await;
    let e = pull(&s, "test/SmolLM2-GGUF:Q4_0").await.unwrap_err();
    assert!(matches!(e, PullError::ChecksumMismatch { .. }), "{e}");
    assert!(e.to_string().contains("bad-Q4_0.gguf"), "{e}");
    assert!(listing(&s.models).is_empty(), "no model appears");
    let blobs = s.cache.join("models--test--SmolLM2-GGUF/blobs");
    assert!(listing(&blobs).iter().all(|n| !n.ends_with(".incomplete")), "{:?}", listing(&blobs));
}

#[tokio::test]
async fn split_parts_arrive_together_under_one_id() {
    let s = setup("split", None).await;
    let got = pull(&s, "test/SmolLM2-GGUF:F16").await.unwrap();
    assert_eq!(got.id, "m-F16");
    assert_eq!(listing(&s.models), ["m-F16-00001-of-00002.gguf", "m-F16-00002-of-00002.gguf"]);
    let joined: Vec<u8> = got.paths.iter().flat_map(|p| std::fs::read(p).unwrap()).collect();
    assert_eq!(joined, smol(), "the parts in order are the whole");
}

#[tokio::test]
async fn missing_repos_quants_and_credentials_say_so() {
    let s = setup("errors", None).await;
    let e = pull(&s, "test/nothing-here").await.unwrap_err();
    assert!(matches!(e, PullError::NoRepo { .. }), "{e}");
    let e = pull(&s, "test/SmolLM2-GGUF:Q6_K").await.unwrap_err();
    assert!(matches!(&e, PullError::NoSuchQuant { available, .. } if available.contains(&"Q4_1".to_string())), "{e}");
    let e = pull(&s, "private/SmolLM2-GGUF:Q8_0").await.unwrap_err();
    assert!(matches!(e, PullError::Unauthorized { status: 401, token: false, .. }), "{e}");
    assert!(e.to_string().contains("HF_TOKEN"), "{e}");
    let wrong = setup("wrong-token", Some("hf_wrong")).await;
    let e = pull(&wrong, "private/SmolLM2-GGUF:Q8_0").await.unwrap_err();
    assert!(matches!(e, PullError::Unauthorized { token: true, .. }), "{e}");
    assert!(!format!("{e} {e:?}").contains("hf_wrong"), "the token is never shown");
    let right = setup("token", Some(TOKEN)).await;
    assert!(pull(&right, "private/SmolLM2-GGUF:Q8_0").await.is_ok());
    assert!(matches!("not a ref".parse::<Reference>(), Err(PullError::BadReference(_))));
}

#[tokio::test]
async fn a_full_disk_is_one_clear_error() {
    let s = setup("full", None).await;
    let sha: String = Sha256::digest(smol()).iter().map(|b| format!("{b:02x}")).collect();
    let blobs = s.cache.join("models--test--SmolLM2-GGUF/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    // Every write to the partial file fails as on a full disk.
    std::os::unix::fs::symlink("/dev/full", blobs.join(format!("{sha}.incomplete"))).unwrap();
    let e = pull(&s, "test/SmolLM2-GGUF:Q4_1").await.unwrap_err();
    assert!(matches!(e, PullError::DiskFull(_)), "{e}");
    assert!(e.to_string().contains("no space left"), "{e}");
    assert!(listing(&s.models).is_empty());
}
