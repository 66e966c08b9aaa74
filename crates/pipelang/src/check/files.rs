//! The checks that need the files a pipeline names but not its data: each `tokenizer` file is
//! found and its ids counted, and the decoders it feeds are held to them
//! ([P0406](../../../../docs/errors/P0406.md)); a tokenizer file that is missing or unreadable
//! is reported at its `tokenizer` value ([P0701](../../../../docs/errors/P0701.md)).
//!
//! `check()` never touches the file system; `pipe check` runs this pass after it, and
//! `pipe run` runs it before anything is written. Paths resolve as the runtime resolves them:
//! relative to the pipeline file's folder, or to its `data_root` when it has one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::diag::{Code, Diagnostic, Diagnostics};

use super::file_memo::FileMemo;
use super::ir::{DataId, IndexVec, Pipeline};
use super::vocab::{self, Ids, thousands};

/// The folder data globs and tokenizer files are resolved under.
pub fn data_root(file: &Path, p: &Pipeline) -> PathBuf {
    let base = file.parent().map_or(PathBuf::from("."), Path::to_path_buf);
    match &p.data_root {
        Some(r) => base.join(&r.value),
        None => base,
    }
}

/// The base vocabulary of a HuggingFace `tokenizer.json`, as the `tokenizers` crate counts it
/// (`get_vocab_size(true)`): the model's vocabulary (a map for BPE, WordLevel and WordPiece,
/// a list of `[piece, score]` for Unigram) and the added tokens it does not already hold.
pub fn hf_base_vocab(json: &str) -> Result<u64, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not a tokenizer.json: {e}"))?;
    let mut seen: HashSet<&str> = HashSet::new();
    match v.pointer("/model/vocab") {
        Some(serde_json::Value::Object(m)) => seen.extend(m.keys().map(String::as_str)),
        Some(serde_json::Value::Array(a)) => {
            for e in a {
                match e.get(0).and_then(|p| p.as_str()) {
                    Some(piece) => {
                        seen.insert(piece);
                    }
                    None => return Err("a `model.vocab` entry is not `[piece, score]`".into()),
                }
            }
        }
        _ => return Err("no `model.vocab` (a map or a list of pieces)".into()),
    }
    if let Some(serde_json::Value::Array(added)) = v.get("added_tokens") {
        for t in added {
            if let Some(c) = t.get("content").and_then(|c| c.as_str()) {
                seen.insert(c);
            }
        }
    }
    if seen.is_empty() {
        return Err("the vocabulary is empty".into());
    }
    Ok(seen.len() as u64)
}

/// Tokenizer files counted once while they are unchanged ([`FileMemo`]).
pub type TokenizerCounts = FileMemo<Result<u64, String>>;

fn base_vocab(counts: &mut TokenizerCounts, path: &Path) -> std::io::Result<Result<u64, String>> {
    counts.get(path, |path| {
        Ok(hf_base_vocab(&std::fs::read_to_string(path)?))
    })
}

/// What a source's tokenizer file gives, or the diagnostic saying why it gives nothing.
fn tokenizer_ids(
    p: &Pipeline,
    d: DataId,
    root: &Path,
    counts: &mut TokenizerCounts,
) -> Option<Result<Ids, Diagnostic>> {
    let data = &p.data[d];
    let tok = data.tokenizer.as_ref()?;
    let path = root.join(&tok.value);
    let fail = |what: String| {
        Diagnostic::new(
            Code::DATA_FILES,
            format!("data source `{}`: tokenizer {what}", data.name),
        )
        .label(tok.span, format!("resolved as {}", path.display()))
        .help(
            "tokenizer paths are relative to the pipeline file (or its data_root); the file \
             is a HuggingFace tokenizer.json",
        )
    };
    let counted = match base_vocab(counts, &path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Some(Err(fail(format!("`{}` not found", tok.value))));
        }
        Err(e) => return Some(Err(fail(format!("`{}` cannot be read: {e}", tok.value)))),
    };
    Some(match counted {
        Ok(base) => Ok(Ids {
            base,
            what: format!("`{}`: {} ids", tok.value, thousands(base)),
            span: tok.span,
        }),
        Err(e) => Err(fail(format!("`{}`: {e}", tok.value))),
    })
}

/// Every file-aware problem of a checked pipeline read from `file`: tokenizer files that are
/// missing or unreadable, and decoders whose `vocab` is below the ids of a tokenizer file
/// that feeds them. Sources without a tokenizer are `check()`'s (the byte tokenizer needs
/// no file).
pub fn check(p: &Pipeline, file: &Path) -> Vec<Diagnostic> {
    check_counted(p, file, &mut TokenizerCounts::default())
}

/// [`check`], with tokenizer files taken from `counts` while they have not changed.
pub fn check_counted(p: &Pipeline, file: &Path, counts: &mut TokenizerCounts) -> Vec<Diagnostic> {
    let root = data_root(file, p);
    let mut diags = Diagnostics::default();
    let feeds = vocab::feeds(p);
    let used: HashSet<DataId> = feeds.iter().map(|f| f.data).collect();
    let mut counted: IndexVec<DataId, Option<Ids>> = IndexVec::from_elem(None, p.data.len());
    // Only the sources a stage reads: the run opens no other (an unused one is P0105).
    for d in p.data.indices().filter(|d| used.contains(d)) {
        match tokenizer_ids(p, d, &root, counts) {
            Some(Ok(ids)) => counted[d] = Some(ids),
            Some(Err(diag)) => diags.push(diag),
            None => {}
        }
    }
    vocab::check(p, &feeds, |d| counted[d].clone(), &mut diags);
    diags.finish()
}
