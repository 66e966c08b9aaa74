//! `manifest.json` of a prepared folder, and the record each finished shard leaves beside its
//! files. The record is written last, atomically: a shard without one was interrupted and is
//! built again; a shard whose record matches its input's content hash, the tokenizer's hash
//! and the format is skipped.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Format;

/// The file that describes a prepared folder.
pub const MANIFEST: &str = "manifest.json";

/// The numeric type the token files store, chosen by the vocabulary as each engine chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Uint16,
    Uint32,
    Int32,
}

impl Dtype {
    /// OLMo-core's `NumpyDatasetConfig.get_dtype`: the smallest unsigned type that holds
    /// `vocab - 1` (uint8 is never enough: the byte tokenizer alone has 261 ids).
    pub fn olmo_core(vocab: u32) -> Dtype {
        if vocab - 1 <= u32::from(u16::MAX) {
            Dtype::Uint16
        } else {
            Dtype::Uint32
        }
    }

    /// megatron-core's `DType.optimal_dtype(vocab_size)`: uint16 below 65,500, else int32.
    pub fn megatron(vocab: u32) -> Dtype {
        if vocab < 65_500 {
            Dtype::Uint16
        } else {
            Dtype::Int32
        }
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::Uint16 => 2,
            Dtype::Uint32 | Dtype::Int32 => 4,
        }
    }

    /// numpy's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Uint16 => "uint16",
            Dtype::Uint32 => "uint32",
            Dtype::Int32 => "int32",
        }
    }

    /// Little-endian bytes of `ids` (every id is below the vocabulary, so it fits).
    pub fn extend_bytes(self, ids: &[u32], out: &mut Vec<u8>) {
        match self {
            Dtype::Uint16 => ids
                .iter()
                .for_each(|&t| out.extend_from_slice(&(t as u16).to_le_bytes())),
            Dtype::Uint32 | Dtype::Int32 => ids
                .iter()
                .for_each(|&t| out.extend_from_slice(&t.to_le_bytes())),
        }
    }
}

/// Which tokenizer made the tokens: the byte tokenizer, or a `tokenizer.json` by content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenizerId {
    /// `bytes`, or the path of the `tokenizer.json`.
    pub name: String,
    /// SHA-256 of the `tokenizer.json`; empty for the byte tokenizer.
    pub sha256: String,
}

/// One input file and what became of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// The input, absolute.
    pub input: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    pub documents: u64,
    /// Tokens written, one end-of-document per document included.
    pub tokens: u64,
    /// The files written, relative to the prepared folder: `.npy` + `.csv.gz` (OLMo-core) or
    /// `.bin` + `.idx` (Megatron).
    pub outputs: Vec<PathBuf>,
    pub format: Format,
    pub tokenizer: TokenizerId,
    pub dtype: Dtype,
    pub eos: u32,
    /// The string column read, for a Parquet input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

/// One source of the recipe, prepared.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourceEntry {
    pub name: String,
    pub kind: String,
    pub tokenizer: TokenizerId,
    /// Ids the tokenizer uses, specials included (the engines' `vocab_size`).
    pub vocab_size: u32,
    pub eos: u32,
    pub pad: u32,
    pub dtype: Dtype,
    pub documents: u64,
    pub tokens: u64,
    pub bytes: u64,
    pub shards: Vec<Shard>,
}

impl SourceEntry {
    /// The token files an engine reads, absolute: OLMo-core's `paths` (the `.npy` files) or
    /// Megatron's data prefixes (without `.bin`/`.idx`).
    pub fn engine_paths(&self, root: &Path) -> Vec<PathBuf> {
        self.shards
            .iter()
            .filter_map(|s| Some((s.format, s.outputs.first()?)))
            .map(|(format, o)| match format {
                Format::OlmoCore => root.join(o),
                Format::Megatron => root.join(o.with_extension("")),
            })
            .collect()
    }
}

/// A source that has no token file (image data: engines that train on images read them from
/// the source itself).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    pub name: String,
    pub kind: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: Format,
    /// The pipeline the sources were declared in.
    pub pipeline: PathBuf,
    pub pipelang: String,
    pub sources: Vec<SourceEntry>,
    pub skipped: Vec<Skipped>,
}

impl Manifest {
    pub fn source(&self, name: &str) -> Option<&SourceEntry> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// Reads `DIR/manifest.json`.
    pub fn read(dir: &Path) -> std::result::Result<Manifest, String> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not a manifest of `pipe prepare-data`: {e}",
                path.display()
            )
        })
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).expect("the manifest serialises");
        crate::atomic::write(&dir.join(MANIFEST), json.as_bytes())
    }
}

/// Where a shard's record lives: beside its first output, `NAME.done.json`.
pub fn record_path(dir: &Path, first_output: &Path) -> PathBuf {
    let mut name = first_output.with_extension("").into_os_string();
    name.push(".done.json");
    dir.join(name)
}

/// The record of a finished shard, if there is one that reads.
pub fn read_record(path: &Path) -> Option<Shard> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// SHA-256 of a file's content, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// A reader that hashes what passes through it, so an input is read once to be both
/// tokenised and hashed.
pub struct Hashing<R> {
    pub inner: R,
    pub hash: Sha256,
}

impl<R> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
        }
    }

    pub fn hex(self) -> String {
        format!("{:x}", self.hash.finalize())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtypes_follow_each_engine() {
        // OLMo-core: vocab - 1 must fit; Megatron: strictly below 65,500.
        assert_eq!(Dtype::olmo_core(261), Dtype::Uint16);
        assert_eq!(Dtype::olmo_core(65_536), Dtype::Uint16);
        assert_eq!(Dtype::olmo_core(65_537), Dtype::Uint32);
        assert_eq!(Dtype::megatron(65_499), Dtype::Uint16);
        assert_eq!(Dtype::megatron(65_500), Dtype::Int32);
        let mut b = vec![];
        Dtype::Uint16.extend_bytes(&[1, 258], &mut b);
        assert_eq!(b, [1, 0, 2, 1]);
    }

    #[test]
    fn engine_paths_are_the_npy_files_or_the_megatron_prefixes() {
        let shard = |format, outputs: &[&str]| Shard {
            input: "/in/a.jsonl".into(),
            bytes: 1,
            sha256: String::new(),
            documents: 1,
            tokens: 1,
            outputs: outputs.iter().map(PathBuf::from).collect(),
            format,
            tokenizer: TokenizerId {
                name: "bytes".into(),
                sha256: String::new(),
            },
            dtype: Dtype::Uint16,
            eos: 256,
            column: None,
        };
        let mut e = SourceEntry {
            name: "web".into(),
            kind: "text".into(),
            tokenizer: shard(Format::OlmoCore, &[]).tokenizer,
            vocab_size: 261,
            eos: 256,
            pad: 260,
            dtype: Dtype::Uint16,
            documents: 2,
            tokens: 2,
            bytes: 2,
            shards: vec![
                shard(
                    Format::OlmoCore,
                    &["web/part-00000.npy", "web/part-00000.csv.gz"],
                ),
                shard(
                    Format::OlmoCore,
                    &["web/part-00001.npy", "web/part-00001.csv.gz"],
                ),
            ],
        };
        let root = Path::new("/tok");
        assert_eq!(
            e.engine_paths(root),
            [
                PathBuf::from("/tok/web/part-00000.npy"),
                PathBuf::from("/tok/web/part-00001.npy")
            ]
        );
        e.shards = vec![shard(
            Format::Megatron,
            &["web/part-00000.bin", "web/part-00000.idx"],
        )];
        assert_eq!(e.engine_paths(root), [PathBuf::from("/tok/web/part-00000")]);
    }

    #[test]
    fn hashing_reader_matches_the_file_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, vec![7u8; 3 << 20]).unwrap();
        let mut r = Hashing::new(std::fs::File::open(&p).unwrap());
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(r.hex(), sha256_file(&p).unwrap());
    }
}
