//! Megatron's indexed dataset, as `megatron/core/datasets/indexed_dataset.py` (megatron-core
//! 0.16.1) writes and reads it, and as `tools/preprocess_data.py --append-eod` lays it out:
//! `PREFIX.bin` holds the tokens; `PREFIX.idx` is the header `MMIDIDX\0\0`, version 1 (u64),
//! the dtype code (u8), the sequence count (u64), the document-index count (u64), then the
//! length of every sequence (i32), its byte offset in `.bin` (i64), and the document indices
//! (i64: 0, then the sequence count at the end of each document). One document is one
//! sequence, ended by EOS.

use std::io::Write;
use std::path::Path;

use super::manifest::Dtype;
use super::staged::Staged;
use super::writer::TokenWriter;

const HEADER: &[u8; 9] = b"MMIDIDX\x00\x00";

/// `DType` of indexed_dataset.py: the code stored in the index.
fn code(d: Dtype) -> u8 {
    match d {
        Dtype::Int32 => 4,
        Dtype::Uint16 => 8,
        // Megatron's optimal_dtype never picks it, but its DType table has no uint32:
        // the writer is only ever given the dtype Megatron would pick.
        Dtype::Uint32 => unreachable!("megatron-core has no uint32 token type"),
    }
}

pub struct MegatronWriter {
    bin: Staged,
    idx: Staged,
    dtype: Dtype,
    eos: u32,
    buf: Vec<u8>,
    /// Tokens of the document being written.
    current: u64,
    lengths: Vec<i32>,
    tokens: u64,
}

impl MegatronWriter {
    /// Writes `PREFIX.bin` and `PREFIX.idx`.
    pub fn create(prefix: &Path, dtype: Dtype, eos: u32) -> std::io::Result<Self> {
        code(dtype);
        Ok(MegatronWriter {
            bin: Staged::create(&prefix.with_extension("bin"))?,
            idx: Staged::create(&prefix.with_extension("idx"))?,
            dtype,
            eos,
            buf: Vec::with_capacity(1 << 16),
            current: 0,
            lengths: vec![],
            tokens: 0,
        })
    }
}

impl TokenWriter for MegatronWriter {
    fn push(&mut self, ids: &[u32]) -> std::io::Result<()> {
        self.buf.clear();
        self.dtype.extend_bytes(ids, &mut self.buf);
        self.bin.write_all(&self.buf)?;
        self.current += ids.len() as u64;
        self.tokens += ids.len() as u64;
        Ok(())
    }

    fn end_document(&mut self) -> std::io::Result<()> {
        self.push(&[self.eos])?;
        let len = i32::try_from(self.current).map_err(|_| {
            std::io::Error::other(format!(
                "a document of {} tokens is longer than Megatron's index can hold (2^31 - 1)",
                self.current
            ))
        })?;
        self.lengths.push(len);
        self.current = 0;
        Ok(())
    }

    fn counts(&self) -> (u64, u64) {
        (self.lengths.len() as u64, self.tokens)
    }

    fn commit(mut self: Box<Self>) -> std::io::Result<()> {
        let n = self.lengths.len() as u64;
        let mut head = Vec::with_capacity(34);
        head.extend_from_slice(HEADER);
        head.extend_from_slice(&1u64.to_le_bytes());
        head.push(code(self.dtype));
        head.extend_from_slice(&n.to_le_bytes());
        head.extend_from_slice(&(n + 1).to_le_bytes());
        self.idx.write_all(&head)?;
        let mut b = Vec::with_capacity(self.lengths.len() * 20 + 8);
        for &l in &self.lengths {
            b.extend_from_slice(&l.to_le_bytes());
        }
        let mut ptr = 0i64;
        let size = self.dtype.size() as i64;
        for &l in &self.lengths {
            b.extend_from_slice(&ptr.to_le_bytes());
            ptr += i64::from(l) * size;
        }
        for i in 0..=n as i64 {
            b.extend_from_slice(&i.to_le_bytes());
        }
        self.idx.write_all(&b)?;
        self.bin.commit()?;
        self.idx.commit()
    }
}
