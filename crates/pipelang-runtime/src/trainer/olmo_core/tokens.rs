//! OLMo-core's token files, written from the runtime's own text sources so the engine reads
//! the tokens candle would: each source's documents in file order, end-of-document after each
//! (as packing sees them), as a flat little-endian array (`np.memmap`'s format: no header),
//! `uint16` where the vocabulary fits, else `uint32`. Cached by content: a source whose files
//! and tokenizer hash as before is not tokenised again.
//!
//! A minimal writer for `pipe run --engine olmo-core`: `pipe prepare-data` is the general one.

use std::path::Path;

use pipelang::check::ir::DataKind;
use sha2::{Digest, Sha256};

use crate::data::{TextSource, expand_globs};
use crate::setup::{Prepared, RunError, data_error, tokenizer_for};
use pipelang_engine::olmo_core::data_glob;

/// Writes `DIR/data/SOURCE/part-0.npy` for each named source; returns how many were
/// tokenised (the others were up to date).
pub fn write(
    prep: &Prepared,
    sources: &[String],
    wide: bool,
    dir: &Path,
    log: &mut dyn FnMut(String),
) -> Result<usize, RunError> {
    let p = prep.checked.pipeline.as_ref().expect("a planned pipeline");
    let mut written = 0;
    for name in sources {
        let d = p.data_id(name).expect("a source of the plan");
        let data = &p.data[d];
        if data.kind != DataKind::Text {
            return Err(RunError::Other(format!(
                "source `{name}` is {}: OLMo-core's token files hold text only",
                data.kind.name()
            )));
        }
        let globs: Vec<String> = data.globs.iter().map(|g| g.value.clone()).collect();
        let files = expand_globs(&prep.data_root, &globs).map_err(|e| data_error(prep, d, e))?;
        let mut h = Sha256::new();
        h.update(format!(
            "{wide} {:?}\n",
            data.tokenizer.as_ref().map(|t| &t.value)
        ));
        if let Some(t) = &data.tokenizer {
            h.update(std::fs::read(prep.data_root.join(&t.value)).unwrap_or_default());
        }
        for f in &files {
            h.update(f.to_string_lossy().as_bytes());
            h.update(
                std::fs::read(f).map_err(|e| RunError::Other(format!("{}: {e}", f.display())))?,
            );
        }
        let hash = format!("{:x}", h.finalize());
        let out = dir.join(data_glob(name).replace("*.npy", "part-0.npy"));
        let stamp = out.with_file_name("source.sha256");
        if std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == hash) && out.exists() {
            continue;
        }
        let tok = tokenizer_for(p, d, &prep.data_root)?;
        let mut src = TextSource::open(name, &prep.data_root, &globs, tok)
            .map_err(|e| data_error(prep, d, e))?;
        let ids = src.one_pass().map_err(|e| data_error(prep, d, e))?;
        let bytes: Vec<u8> = if wide {
            ids.iter().flat_map(|t| t.to_le_bytes()).collect()
        } else {
            ids.iter().flat_map(|&t| (t as u16).to_le_bytes()).collect()
        };
        std::fs::create_dir_all(out.parent().unwrap())?;
        pipelang::atomic::write(&out, &bytes)?;
        pipelang::atomic::write(&stamp, hash.as_bytes())?;
        log(format!(
            "data: {name}: {} tokens from {} file(s) -> {}",
            ids.len(),
            files.len(),
            out.display()
        ));
        written += 1;
    }
    Ok(written)
}
