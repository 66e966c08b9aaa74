//! OLMo-core's token files, as `olmo_core.data.numpy_dataset` reads them: a flat array of token
//! ids with no header (`np.memmap(path, dtype=...)`, named `.npy` as the Dolma toolkit names
//! them), every document ended by EOS, so that `iter_document_indices` finds the boundaries in
//! the array itself; and beside it the Dolma metadata file `NAME.csv.gz`, one `start,end` line
//! per document, which OLMo-core reads instead when asked (`use_array_if_local=False`).

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::manifest::Dtype;
use super::staged::Staged;
use super::writer::TokenWriter;

pub struct OlmoCoreWriter {
    data: Staged,
    meta: GzEncoder<Staged>,
    dtype: Dtype,
    eos: u32,
    buf: Vec<u8>,
    tokens: u64,
    doc_start: u64,
    documents: u64,
}

impl OlmoCoreWriter {
    /// Writes `PREFIX.npy` and `PREFIX.csv.gz`.
    pub fn create(prefix: &Path, dtype: Dtype, eos: u32) -> std::io::Result<Self> {
        Ok(OlmoCoreWriter {
            data: Staged::create(&prefix.with_extension("npy"))?,
            meta: GzEncoder::new(
                Staged::create(&prefix.with_extension("csv.gz"))?,
                Compression::fast(),
            ),
            dtype,
            eos,
            buf: Vec::with_capacity(1 << 16),
            tokens: 0,
            doc_start: 0,
            documents: 0,
        })
    }
}

impl TokenWriter for OlmoCoreWriter {
    fn push(&mut self, ids: &[u32]) -> std::io::Result<()> {
        self.buf.clear();
        self.dtype.extend_bytes(ids, &mut self.buf);
        self.data.write_all(&self.buf)?;
        self.tokens += ids.len() as u64;
        Ok(())
    }

    fn end_document(&mut self) -> std::io::Result<()> {
        self.push(&[self.eos])?;
        writeln!(self.meta, "{},{}", self.doc_start, self.tokens)?;
        self.doc_start = self.tokens;
        self.documents += 1;
        Ok(())
    }

    fn counts(&self) -> (u64, u64) {
        (self.documents, self.tokens)
    }

    fn commit(self: Box<Self>) -> std::io::Result<()> {
        let meta = self.meta.finish()?;
        self.data.commit()?;
        meta.commit()
    }
}
