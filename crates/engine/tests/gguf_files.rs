//! The header reader on the real GGUF files `scripts/fetch-models` fetches: the length a
//! complete file needs is what each file has (within the last tensor's padding), and a copy cut
//! short is seen as incomplete.

use hearth_engine::gguf::read_header;
use std::path::PathBuf;

fn models() -> Vec<PathBuf> {
    let home = std::env::var_os("HEARTH_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/hearth"));
    let mut v: Vec<PathBuf> = std::fs::read_dir(home.join("models"))
        .expect("run scripts/fetch-models")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    v.sort();
    assert!(v.len() >= 3, "the starter models: {v:?}");
    v
}

#[test]
fn complete_files_have_the_length_their_tensors_need() {
    for path in models() {
        let h = read_header(&path).unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        let need = h.min_len.unwrap_or_else(|| panic!("{}: a tensor type the reader does not know", path.display()));
        assert!(need <= len && len - need <= 64, "{}: needs {need} bytes, has {len}", path.display());
    }
}

#[test]
fn a_copy_cut_short_is_shorter_than_it_needs() {
    let path = &models()[0];
    let bytes = std::fs::read(path).unwrap();
    let cut = &bytes[..bytes.len() * 2 / 3];
    let h = hearth_engine::gguf::read_header_from(std::io::Cursor::new(cut)).unwrap();
    assert!(h.min_len.unwrap() > cut.len() as u64, "the header is whole, the data is not");
}
