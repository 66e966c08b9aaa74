//! What the file-aware checks read from a file, kept while the file's size and modification
//! time stay the same: the language server runs those checks on every edit, and the files are
//! large (a real `tokenizer.json` is megabytes of JSON, Llama 3's 9 MB; a sharded checkpoint's
//! headers are read from every shard). A file rewritten to the same size within one tick of
//! the file system's clock is not seen; editors, tokenizer trainers and checkpoint writers do
//! not do that.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct FileMemo<T> {
    seen: HashMap<PathBuf, (u64, Option<SystemTime>, T)>,
    /// How many times a file was read (not taken from the memo).
    pub reads: usize,
}

impl<T> Default for FileMemo<T> {
    fn default() -> Self {
        FileMemo {
            seen: HashMap::new(),
            reads: 0,
        }
    }
}

impl<T: Clone> FileMemo<T> {
    /// What `read` gives for `path`, read again only when the file changed. A file that cannot
    /// be stat'ed is an error here, never an old answer from the memo.
    pub fn get(
        &mut self,
        path: &Path,
        read: impl FnOnce(&Path) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        let meta = std::fs::metadata(path)?;
        let (len, modified) = (meta.len(), meta.modified().ok());
        if let Some((l, m, r)) = self.seen.get(path)
            && (*l, *m) == (len, modified)
        {
            return Ok(r.clone());
        }
        let r = read(path)?;
        self.reads += 1;
        self.seen
            .insert(path.to_path_buf(), (len, modified, r.clone()));
        Ok(r)
    }
}
