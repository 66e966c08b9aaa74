//! Tokenizers: byte-level by default, a HuggingFace `tokenizer.json` when the data names one.
//!
//! Both append the same five special tokens after their base vocabulary, so the rest of the
//! runtime asks for `specials()` instead of hard-coding ids. For the byte tokenizer the ids are:
//!
//! | id      | meaning                                   |
//! |---------|-------------------------------------------|
//! | 0..=255 | the byte itself                           |
//! | 256     | end of document (`eod`)                   |
//! | 257     | image placeholder, one per merged image token (`image`) |
//! | 258     | image start (`image_start`)               |
//! | 259     | image end (`image_end`)                   |
//! | 260     | padding (`pad`)                           |
//!
//! so the byte vocabulary is 261, which fits the smoke profile's `vocab = 512`. For a HF
//! tokenizer of base size `n` the specials are `n..n+5` in the same order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pipelang::schema::tokenizer as tokenizer_facts;

use super::error::{DataError, Result};

/// Number of special tokens appended after the base vocabulary: a language fact, declared in
/// `pipelang::schema::tokenizer` so the checker holds every decoder's `vocab` to it.
pub const N_SPECIALS: u32 = tokenizer_facts::SPECIALS as u32;

/// Ids of the byte tokenizer before the specials.
pub const BYTE_BASE: u32 = tokenizer_facts::BYTE_BASE as u32;

/// Ids of the special tokens of one tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    pub eod: u32,
    pub image: u32,
    pub image_start: u32,
    pub image_end: u32,
    pub pad: u32,
}

impl SpecialIds {
    fn after(base: u32) -> Self {
        SpecialIds {
            eod: base,
            image: base + 1,
            image_start: base + 2,
            image_end: base + 3,
            pad: base + 4,
        }
    }

    fn contains(&self, id: u32) -> bool {
        (self.eod..=self.pad).contains(&id)
    }
}

/// A text tokenizer. Cheap to clone (the HF model is shared).
#[derive(Clone)]
pub enum Tokenizer {
    /// Byte-level: ids 0..=255 are the UTF-8 bytes of the text.
    Bytes,
    /// A HuggingFace tokenizer loaded from a local `tokenizer.json`.
    Hf {
        path: PathBuf,
        inner: Arc<tokenizers::Tokenizer>,
        base_vocab: u32,
    },
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tokenizer::Bytes => write!(f, "Tokenizer::Bytes"),
            Tokenizer::Hf {
                path, base_vocab, ..
            } => write!(f, "Tokenizer::Hf({}, {base_vocab})", path.display()),
        }
    }
}

impl Tokenizer {
    /// Loads a HuggingFace `tokenizer.json` from disk (never from the network).
    pub fn from_hf_file(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(DataError::MissingFile {
                path: path.to_path_buf(),
                base: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            });
        }
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| DataError::Tokenizer {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base_vocab = inner.get_vocab_size(true) as u32;
        if base_vocab == 0 {
            return Err(DataError::Tokenizer {
                path: path.to_path_buf(),
                message: "the vocabulary is empty".into(),
            });
        }
        Ok(Tokenizer::Hf {
            path: path.to_path_buf(),
            inner: Arc::new(inner),
            base_vocab,
        })
    }

    /// Size of the base vocabulary, before the specials.
    pub fn base_vocab(&self) -> u32 {
        match self {
            Tokenizer::Bytes => BYTE_BASE,
            Tokenizer::Hf { base_vocab, .. } => *base_vocab,
        }
    }

    /// Total number of ids, specials included: the model's vocab must be at least this.
    pub fn vocab_size(&self) -> u32 {
        self.base_vocab() + N_SPECIALS
    }

    pub fn specials(&self) -> SpecialIds {
        SpecialIds::after(self.base_vocab())
    }

    /// Token ids of `text`, without any special token.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Bytes => Ok(text.bytes().map(u32::from).collect()),
            Tokenizer::Hf { path, inner, .. } => inner
                .encode(text, false)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| DataError::Tokenizer {
                    path: path.clone(),
                    message: e.to_string(),
                }),
        }
    }

    /// Text of `ids` for logs and samples; special tokens are shown as `<eod>`, `<img>`, ...
    pub fn decode(&self, ids: &[u32]) -> String {
        let sp = self.specials();
        let mut out = String::new();
        let mut run: Vec<u32> = Vec::new();
        let flush = |run: &mut Vec<u32>, out: &mut String| {
            if run.is_empty() {
                return;
            }
            match self {
                Tokenizer::Bytes => {
                    let bytes: Vec<u8> = run.iter().map(|&b| b as u8).collect();
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
                Tokenizer::Hf { inner, .. } => {
                    out.push_str(&inner.decode(run, false).unwrap_or_default());
                }
            }
            run.clear();
        };
        for &id in ids {
            if sp.contains(id) || id >= self.vocab_size() {
                flush(&mut run, &mut out);
                out.push_str(match id {
                    _ if id == sp.eod => "<eod>",
                    _ if id == sp.image => "<img>",
                    _ if id == sp.image_start => "<img_start>",
                    _ if id == sp.image_end => "<img_end>",
                    _ if id == sp.pad => "<pad>",
                    _ => "<unk>",
                });
            } else {
                run.push(id);
            }
        }
        flush(&mut run, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("crates/pipelang-runtime/tests/data_fixtures")
            .join(name)
    }

    #[test]
    fn bytes_round_trip_and_specials_fit_smoke_vocab() {
        let t = Tokenizer::Bytes;
        let ids = t.encode("hé!").unwrap();
        assert_eq!(ids, vec![104, 195, 169, 33]);
        assert_eq!(t.decode(&ids), "hé!");
        let sp = t.specials();
        assert_eq!(
            (sp.eod, sp.image, sp.image_start, sp.image_end, sp.pad),
            (256, 257, 258, 259, 260)
        );
        assert_eq!(t.vocab_size(), 261);
        assert!(t.vocab_size() <= 512);
        assert_eq!(
            t.decode(&[104, 256, 258, 257, 259]),
            "h<eod><img_start><img><img_end>"
        );
    }

    #[test]
    fn hf_word_level_tokenizer_from_fixture() {
        let t = Tokenizer::from_hf_file(&fixture("tokenizer_wordlevel.json")).unwrap();
        assert_eq!(t.base_vocab(), 8);
        assert_eq!(t.vocab_size(), 13);
        assert_eq!(t.specials().eod, 8);
        assert_eq!(t.encode("a red circle").unwrap(), vec![1, 2, 3]);
        // Unknown words map to the model's [UNK] id, not to an error.
        assert_eq!(t.encode("a green square").unwrap(), vec![1, 0, 4]);
        assert_eq!(t.decode(&[2, 3, 8]), "red circle<eod>");
    }

    #[test]
    fn the_checker_counts_a_tokenizer_file_as_the_runtime_loads_it() {
        // `pipe check` counts ids without the tokenizers crate; both must agree, or the check
        // would pass a vocab the run then overflows.
        let path = fixture("tokenizer_wordlevel.json");
        let t = Tokenizer::from_hf_file(&path).unwrap();
        let json = std::fs::read_to_string(&path).unwrap();
        let counted = pipelang::check::files::hf_base_vocab(&json).unwrap();
        assert_eq!(counted, u64::from(t.base_vocab()));
        assert_eq!(
            pipelang::schema::tokenizer::ids(counted),
            u64::from(t.vocab_size())
        );
        assert_eq!(
            u64::from(Tokenizer::Bytes.vocab_size()),
            pipelang::schema::tokenizer::BYTE_IDS
        );
    }

    #[test]
    fn hf_missing_and_broken_files_are_errors() {
        let err = Tokenizer::from_hf_file(&fixture("nope.json")).unwrap_err();
        assert!(matches!(err, DataError::MissingFile { .. }), "{err}");
        let err = Tokenizer::from_hf_file(&fixture("broken_tokenizer.json")).unwrap_err();
        assert!(matches!(err, DataError::Tokenizer { .. }), "{err}");
        assert!(err.to_string().contains("broken_tokenizer.json"));
    }
}
