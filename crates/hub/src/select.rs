//! Which GGUF files of a repository a reference means: one file named exactly, or the files
//! of one quantisation (all parts of a split model), chosen as Ollama and llama.cpp's `-hf` do.

use crate::reference::Reference;
use crate::PullError;
use hearth_engine::registry::split_part;

/// A file the repository holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// Its path in the repository.
    pub name: String,
    /// Bytes, when the hub said.
    pub size: Option<u64>,
    /// SHA-256 of its content (the LFS object id), when the hub said.
    pub sha256: Option<String>,
}

/// The files to fetch for a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// One file, or the parts of a split model in order.
    pub files: Vec<RepoFile>,
    /// The quantisation chosen (or the file's stem when it names none).
    pub quant: String,
    /// Why it is not the one asked for (the default was missing), for the user.
    pub note: Option<String>,
}

/// The quantisation taken when the reference names none.
pub const DEFAULT_QUANT: &str = "Q4_K_M";

/// Taken in this order when the default is missing: good quality per byte first.
const PREFERENCE: &[&str] = &[
    "Q4_K_M", "Q4_K_S", "Q5_K_M", "Q4_0", "Q5_K_S", "Q6_K", "Q8_0", "IQ4_XS", "IQ4_NL", "Q3_K_M", "Q4_1", "Q5_0",
    "Q5_1", "Q3_K_L", "Q3_K_S", "Q2_K", "BF16", "F16", "F32",
];

fn stem(name: &str) -> &str {
    let file = name.rsplit('/').next().unwrap_or(name);
    file.strip_suffix(".gguf").or_else(|| file.strip_suffix(".GGUF")).unwrap_or(file)
}

/// Whether `quant` appears in `stem` as a whole tag (`Q4_K` is not in `Q4_K_M`).
fn has_quant(stem: &str, quant: &str) -> bool {
    let (s, q) = (stem.to_ascii_uppercase(), quant.to_ascii_uppercase());
    let edge = |c: Option<char>| c.is_none_or(|c| matches!(c, '-' | '.' | '_'));
    s.match_indices(&q).any(|(i, _)| {
        let before = s[..i].chars().next_back();
        let after = s[i + q.len()..].chars().next();
        edge(before) && (after.is_none() || matches!(after, Some('-' | '.')))
    })
}

fn quant_of(stem: &str) -> Option<&'static str> {
    PREFERENCE.iter().copied().find(|q| has_quant(stem, q))
}

/// One model of the repository: a file, or the parts of a split one.
struct Group {
    key: String,
    parts: Vec<(u32, RepoFile)>,
    count: u32,
}

fn groups(files: &[RepoFile]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for f in files {
        let lower = f.name.to_ascii_lowercase();
        if !lower.ends_with(".gguf") || lower.contains("mmproj") {
            continue;
        }
        let s = stem(&f.name);
        let (key, part, count) = match split_part(s) {
            // The name with the part suffix taken off its stem (only there, not in a folder name).
            Some((base, part, count)) => {
                let folder = &f.name[..f.name.len() - f.name.rsplit('/').next().map_or(0, str::len)];
                (format!("{folder}{base}.gguf"), part, count)
            }
            None => (f.name.clone(), 1, 1),
        };
        match out.iter_mut().find(|g| g.key == key) {
            Some(g) => g.parts.push((part, f.clone())),
            None => out.push(Group { key, parts: vec![(part, f.clone())], count }),
        }
    }
    for g in &mut out {
        g.parts.sort_by_key(|(p, _)| *p);
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

impl Group {
    fn files(&self, repo: &str) -> Result<Vec<RepoFile>, PullError> {
        let complete = self.parts.len() == self.count as usize
            && self.parts.iter().enumerate().all(|(i, (p, _))| *p == i as u32 + 1);
        if !complete {
            return Err(PullError::IncompleteSplit { repo: repo.to_string(), file: self.key.clone() });
        }
        Ok(self.parts.iter().map(|(_, f)| f.clone()).collect())
    }

    fn label(&self) -> String {
        let s = stem(&self.key);
        quant_of(s).map_or_else(|| s.to_string(), str::to_string)
    }
}

/// The files `r` means among `files`.
///
/// # Errors
/// [`PullError::NoGguf`], [`PullError::NoSuchFile`], [`PullError::NoSuchQuant`] (with the
/// quantisations there are), or [`PullError::IncompleteSplit`].
pub fn choose(files: &[RepoFile], r: &Reference) -> Result<Choice, PullError> {
    let all = groups(files);
    if let Some(name) = &r.file {
        let g = all.iter().find(|g| g.key == *name || g.parts.iter().any(|(_, f)| f.name == *name));
        let g = g.ok_or_else(|| PullError::NoSuchFile { repo: r.repo.clone(), file: name.clone() })?;
        return Ok(Choice { files: g.files(&r.repo)?, quant: g.label(), note: None });
    }
    if all.is_empty() {
        return Err(PullError::NoGguf(r.repo.clone()));
    }
    let available = || {
        let mut v: Vec<String> = all.iter().map(Group::label).collect();
        v.dedup();
        v
    };
    if let Some(q) = &r.quant {
        let g = all.iter().find(|g| has_quant(stem(&g.key), q));
        let g =
            g.ok_or_else(|| PullError::NoSuchQuant { repo: r.repo.clone(), quant: q.clone(), available: available() })?;
        return Ok(Choice { files: g.files(&r.repo)?, quant: q.to_ascii_uppercase(), note: None });
    }
    let preferred = PREFERENCE.iter().find_map(|q| all.iter().find(|g| has_quant(stem(&g.key), q)));
    let g = preferred.unwrap_or(&all[0]);
    let label = g.label();
    let note = (label != DEFAULT_QUANT && all.len() > 1).then(|| {
        format!("{} has no {DEFAULT_QUANT} file; taking {label} (there are: {})", r.repo, available().join(", "))
    });
    Ok(Choice { files: g.files(&r.repo)?, quant: label, note })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<RepoFile> {
        names.iter().map(|n| RepoFile { name: n.to_string(), size: None, sha256: None }).collect()
    }

    fn pick(names: &[&str], r: &str) -> Result<Choice, PullError> {
        choose(&files(names), &r.parse().unwrap())
    }

    fn names(c: &Choice) -> Vec<&str> {
        c.files.iter().map(|f| f.name.as_str()).collect()
    }

    const REPO: &[&str] = &[
        "README.md",
        "m-Q2_K.gguf",
        "m-Q4_K_M.gguf",
        "m-Q4_K_S.gguf",
        "m-IQ4_K_M.gguf",
        "m-Q8_0.gguf",
        "mmproj-m-f16.gguf",
        "big/m-F16-00002-of-00002.gguf",
        "big/m-F16-00001-of-00002.gguf",
    ];

    #[test]
    fn quant_by_tag_case_insensitive_default_q4_k_m() {
        assert_eq!(names(&pick(REPO, "o/r").unwrap()), ["m-Q4_K_M.gguf"]);
        assert_eq!(names(&pick(REPO, "o/r:q8_0").unwrap()), ["m-Q8_0.gguf"]);
        assert_eq!(names(&pick(REPO, "o/r:Q4_K_S").unwrap()), ["m-Q4_K_S.gguf"]);
        assert!(matches!(pick(REPO, "o/r:Q4_K"), Err(PullError::NoSuchQuant { .. })), "a tag matches whole");
    }

    #[test]
    fn split_parts_come_together_in_order() {
        let c = pick(REPO, "o/r:f16").unwrap();
        assert_eq!(names(&c), ["big/m-F16-00001-of-00002.gguf", "big/m-F16-00002-of-00002.gguf"]);
        let c = pick(REPO, "o/r/big/m-F16-00002-of-00002.gguf").unwrap();
        assert_eq!(c.files.len(), 2, "naming one part brings the set");
        let missing = pick(&["a-Q8_0-00001-of-00003.gguf", "a-Q8_0-00003-of-00003.gguf"], "o/r:Q8_0");
        assert!(matches!(missing, Err(PullError::IncompleteSplit { .. })));
    }

    #[test]
    fn without_the_default_the_best_available_with_a_note() {
        let c = pick(&["m-Q8_0.gguf", "m-Q2_K.gguf", "m-Q5_K_M.gguf"], "o/r").unwrap();
        assert_eq!((names(&c), c.quant.as_str()), (vec!["m-Q5_K_M.gguf"], "Q5_K_M"));
        assert!(c.note.unwrap().contains("Q8_0"), "the note lists what there is");
        let one = pick(&["model.gguf"], "o/r").unwrap();
        assert_eq!((names(&one), one.note.as_deref()), (vec!["model.gguf"], None));
    }

    #[test]
    fn missing_files_and_quants_say_what_there_is() {
        match pick(REPO, "o/r:Q3_K_L") {
            Err(PullError::NoSuchQuant { available, .. }) => assert!(available.contains(&"Q8_0".to_string())),
            other => panic!("{other:?}"),
        }
        assert!(matches!(pick(REPO, "o/r/nope.gguf"), Err(PullError::NoSuchFile { .. })));
        assert!(matches!(pick(&["README.md", "mmproj-x.gguf"], "o/r"), Err(PullError::NoGguf(_))));
    }
}
