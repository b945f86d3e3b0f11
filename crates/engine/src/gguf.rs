//! A GGUF header reader: metadata and tensor shapes, without loading any weights.
//!
//! Only the fields the registry needs are kept (scalars and strings); arrays are skipped except
//! for their length. Every length read from the file is bounded, so a corrupt or hostile file
//! gives an error, never a huge allocation or a panic.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

/// A metadata value kept from a GGUF header.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// Any integer type.
    Int(i64),
    /// f32 or f64.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string.
    Str(String),
    /// An array (contents skipped).
    Array {
        /// Number of elements.
        len: u64,
    },
}

/// What a GGUF header says.
#[derive(Debug, Clone, Default)]
pub struct GgufHeader {
    /// GGUF version.
    pub version: u32,
    /// Metadata key-value pairs.
    pub meta: HashMap<String, GgufValue>,
    /// Total number of weights over all tensors.
    pub n_params: u64,
    /// Number of tensors.
    pub n_tensors: u64,
    /// The length a complete file has at least (header, padding, and every tensor's data);
    /// `None` when a tensor's type is one this reader does not know.
    pub min_len: Option<u64>,
}

impl GgufHeader {
    /// A string value.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.meta.get(key) {
            Some(GgufValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer value.
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.meta.get(key) {
            Some(GgufValue::Int(v)) => Some(*v),
            _ => None,
        }
    }
}

/// Why a GGUF header could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be read.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not GGUF or is corrupt.
    #[error("not a valid GGUF file: {0}")]
    Invalid(String),
}

const MAX_STRING: u64 = 64 << 20;
const MAX_COUNT: u64 = 1 << 24;
const MAX_DIMS: u32 = 8;

struct Reader<R> {
    inner: R,
}

impl<R: Read + Seek> Reader<R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        self.inner.read_exact(&mut b)?;
        Ok(b)
    }
    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn count(&mut self, what: &str) -> Result<u64, GgufError> {
        let n = self.u64()?;
        if n > MAX_COUNT {
            return Err(GgufError::Invalid(format!("{what} count {n} is implausible")));
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, GgufError> {
        let len = self.u64()?;
        if len > MAX_STRING {
            return Err(GgufError::Invalid(format!("string of {len} bytes")));
        }
        let mut buf = vec![0u8; len as usize];
        self.inner.read_exact(&mut buf)?;
        String::from_utf8(buf).map_err(|_| GgufError::Invalid("string is not UTF-8".into()))
    }
    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        let n = i64::try_from(n).map_err(|_| GgufError::Invalid("skip too large".into()))?;
        self.inner.seek_relative(n)?;
        Ok(())
    }

    /// Reads a value of GGUF type `ty`.
    fn value(&mut self, ty: u32) -> Result<GgufValue, GgufError> {
        Ok(match ty {
            0 => GgufValue::Int(self.bytes::<1>()?[0] as i64),
            1 => GgufValue::Int(self.bytes::<1>()?[0] as i8 as i64),
            2 => GgufValue::Int(u16::from_le_bytes(self.bytes()?) as i64),
            3 => GgufValue::Int(i16::from_le_bytes(self.bytes()?) as i64),
            4 => GgufValue::Int(self.u32()? as i64),
            5 => GgufValue::Int(i32::from_le_bytes(self.bytes()?) as i64),
            6 => GgufValue::Float(f32::from_le_bytes(self.bytes()?) as f64),
            7 => GgufValue::Bool(self.bytes::<1>()?[0] != 0),
            8 => GgufValue::Str(self.string()?),
            9 => self.array()?,
            10 => GgufValue::Int(self.u64()? as i64),
            11 => GgufValue::Int(i64::from_le_bytes(self.bytes()?)),
            12 => GgufValue::Float(f64::from_le_bytes(self.bytes()?)),
            t => return Err(GgufError::Invalid(format!("unknown value type {t}"))),
        })
    }

    fn array(&mut self) -> Result<GgufValue, GgufError> {
        let ty = self.u32()?;
        let len = self.count("array")?;
        let width = match ty {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        };
        match width {
            Some(w) => self.skip(w * len)?,
            None if ty == 8 => {
                for _ in 0..len {
                    let n = self.u64()?;
                    if n > MAX_STRING {
                        return Err(GgufError::Invalid(format!("string of {n} bytes")));
                    }
                    self.skip(n)?;
                }
            }
            None => return Err(GgufError::Invalid(format!("array of type {ty}"))),
        }
        Ok(GgufValue::Array { len })
    }

    /// A tensor's weights, and where its data ends after the data section's start (`None` for
    /// a type this reader does not know).
    fn tensor(&mut self) -> Result<(u64, Option<u64>), GgufError> {
        let _name = self.string()?;
        let n_dims = self.u32()?;
        if n_dims > MAX_DIMS {
            return Err(GgufError::Invalid(format!("tensor with {n_dims} dimensions")));
        }
        let mut n: u64 = 1;
        for _ in 0..n_dims {
            n = n.saturating_mul(self.u64()?);
        }
        let ty = self.u32()?;
        let offset = self.u64()?;
        let end = type_size(ty).map(|(block, bytes)| offset.saturating_add(n.div_ceil(block).saturating_mul(bytes)));
        Ok((n, end))
    }
}

/// Reads the header of the GGUF file at `path`.
///
/// # Errors
/// [`GgufError`] when the file cannot be read or is not a well-formed GGUF header.
pub fn read_header(path: &Path) -> Result<GgufHeader, GgufError> {
    read_header_from(BufReader::with_capacity(1 << 16, File::open(path)?))
}

/// Reads a GGUF header from `source` (a file, or bytes in memory).
///
/// # Errors
/// As [`read_header`].
pub fn read_header_from(source: impl Read + Seek) -> Result<GgufHeader, GgufError> {
    let mut r = Reader { inner: source };
    if &r.bytes::<4>()? != b"GGUF" {
        return Err(GgufError::Invalid("missing GGUF magic".into()));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::Invalid(format!("unsupported GGUF version {version}")));
    }
    let n_tensors = r.count("tensor")?;
    let n_kv = r.count("metadata")?;
    let mut meta = HashMap::new();
    for _ in 0..n_kv {
        let key = r.string()?;
        let ty = r.u32()?;
        let value = r.value(ty)?;
        meta.insert(key, value);
    }
    let mut n_params = 0u64;
    let mut data_end = Some(0u64);
    for _ in 0..n_tensors {
        let (n, end) = r.tensor()?;
        n_params = n_params.saturating_add(n);
        data_end = data_end.zip(end).map(|(a, b)| a.max(b));
    }
    let header_end = r.inner.stream_position()?;
    let align = match meta.get("general.alignment") {
        Some(GgufValue::Int(a)) if *a > 0 && (*a as u64).is_power_of_two() => *a as u64,
        _ => 32,
    };
    let min_len = match data_end {
        Some(0) => Some(header_end), // no tensor data to wait for
        end => end.map(|end| header_end.div_ceil(align).saturating_mul(align).saturating_add(end)),
    };
    Ok(GgufHeader { version, meta, n_params, n_tensors, min_len })
}

/// Elements per block and bytes per block of a ggml tensor type (ggml's type traits).
fn type_size(ty: u32) -> Option<(u64, u64)> {
    Some(match ty {
        0 => (1, 4),           // F32
        1 | 30 => (1, 2),      // F16, BF16
        2 | 20 => (32, 18),    // Q4_0, IQ4_NL
        3 => (32, 20),         // Q4_1
        6 => (32, 22),         // Q5_0
        7 => (32, 24),         // Q5_1
        8 => (32, 34),         // Q8_0
        9 => (32, 36),         // Q8_1
        10 => (256, 84),       // Q2_K
        11 | 21 => (256, 110), // Q3_K, IQ3_S
        12 => (256, 144),      // Q4_K
        13 => (256, 176),      // Q5_K
        14 => (256, 210),      // Q6_K
        15 => (256, 292),      // Q8_K
        16 => (256, 66),       // IQ2_XXS
        17 => (256, 74),       // IQ2_XS
        18 => (256, 98),       // IQ3_XXS
        19 => (256, 50),       // IQ1_S
        22 => (256, 82),       // IQ2_S
        23 => (256, 136),      // IQ4_XS
        24 => (1, 1),          // I8
        25 => (1, 2),          // I16
        26 => (1, 4),          // I32
        27 | 28 => (1, 8),     // I64, F64
        29 => (256, 56),       // IQ1_M
        _ => return None,
    })
}

/// The name of llama.cpp's `general.file_type` value.
pub fn file_type_name(ft: i64) -> &'static str {
    match ft {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4",
        _ => "unknown",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{Seek, Write};

    /// Writes a tiny GGUF file with the given string metadata and one 4x8 tensor.
    pub(crate) fn write_gguf(path: &Path, strings: &[(&str, &str)], ints: &[(&str, u32)]) {
        let mut f = File::create(path).unwrap();
        let s = |f: &mut File, v: &str| {
            f.write_all(&(v.len() as u64).to_le_bytes()).unwrap();
            f.write_all(v.as_bytes()).unwrap();
        };
        f.write_all(b"GGUF").unwrap();
        f.write_all(&3u32.to_le_bytes()).unwrap();
        f.write_all(&1u64.to_le_bytes()).unwrap();
        f.write_all(&((strings.len() + ints.len() + 1) as u64).to_le_bytes()).unwrap();
        for (k, v) in strings {
            s(&mut f, k);
            f.write_all(&8u32.to_le_bytes()).unwrap();
            s(&mut f, v);
        }
        for (k, v) in ints {
            s(&mut f, k);
            f.write_all(&4u32.to_le_bytes()).unwrap();
            f.write_all(&v.to_le_bytes()).unwrap();
        }
        s(&mut f, "tokenizer.ggml.tokens");
        f.write_all(&9u32.to_le_bytes()).unwrap();
        f.write_all(&8u32.to_le_bytes()).unwrap();
        f.write_all(&2u64.to_le_bytes()).unwrap();
        s(&mut f, "<s>");
        s(&mut f, "hello");
        s(&mut f, "w");
        f.write_all(&2u32.to_le_bytes()).unwrap();
        f.write_all(&4u64.to_le_bytes()).unwrap();
        f.write_all(&8u64.to_le_bytes()).unwrap();
        f.write_all(&0u32.to_le_bytes()).unwrap();
        f.write_all(&0u64.to_le_bytes()).unwrap();
        // The tensor's data (4 x 8 f32), after padding to the default alignment of 32.
        let at = f.stream_position().unwrap();
        f.write_all(&vec![0u8; (at.div_ceil(32) * 32 - at) as usize + 4 * 8 * 4]).unwrap();
    }

    #[test]
    fn a_file_cut_inside_its_tensor_data_is_short_of_its_length() {
        let dir = std::env::temp_dir().join(format!("hearth-gguf-len-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.gguf");
        write_gguf(&p, &[("general.architecture", "llama")], &[]);
        let len = std::fs::metadata(&p).unwrap().len();
        assert_eq!(read_header(&p).unwrap().min_len, Some(len), "whole");
        let bytes = std::fs::read(&p).unwrap();
        let cut = read_header_from(std::io::Cursor::new(&bytes[..bytes.len() - 10])).unwrap();
        assert_eq!(cut.min_len, Some(len), "the header still says how long the file must be");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reads_metadata_and_counts_params() {
        let dir = std::env::temp_dir().join(format!("hearth-gguf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.gguf");
        write_gguf(&p, &[("general.architecture", "llama")], &[("llama.context_length", 2048)]);
        let h = read_header(&p).unwrap();
        assert_eq!(h.str("general.architecture"), Some("llama"));
        assert_eq!(h.int("llama.context_length"), Some(2048));
        assert_eq!(h.meta.get("tokenizer.ggml.tokens"), Some(&GgufValue::Array { len: 2 }));
        assert_eq!(h.n_params, 32);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn truncated_and_garbage_files_are_errors_not_panics() {
        let dir = std::env::temp_dir().join(format!("hearth-gguf-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.gguf");
        write_gguf(&good, &[("general.architecture", "llama")], &[]);
        let bytes = std::fs::read(&good).unwrap();
        for cut in 0..bytes.len() {
            let p = dir.join("cut.gguf");
            std::fs::write(&p, &bytes[..cut]).unwrap();
            // The header fails, or it says the file is shorter than it must be.
            let short = read_header(&p).map_or(true, |h| h.min_len.is_some_and(|n| n > cut as u64));
            assert!(short, "cut at {cut} should fail or be incomplete");
        }
        let p = dir.join("huge.gguf");
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(u64::MAX.to_le_bytes());
        std::fs::write(&p, b).unwrap();
        assert!(matches!(read_header(&p), Err(GgufError::Invalid(_))));
        std::fs::remove_dir_all(&dir).ok();
    }
}
