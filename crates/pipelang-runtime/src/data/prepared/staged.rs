//! A file written beside its final name and renamed over it once complete and on disk, for
//! outputs too large to hold in memory (`pipelang::atomic` takes the bytes whole).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
}

/// The temporary name of `path`: hidden, with the writer's PID, so that a later run knows it
/// for an interrupted write and removes it (see [`remove_stale`]).
fn tmp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(
        ".{}.tmp{}",
        name.unwrap_or_default(),
        std::process::id()
    ))
}

impl Staged {
    pub fn create(path: &Path) -> std::io::Result<Staged> {
        let tmp = tmp_name(path);
        let out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        Ok(Staged {
            tmp,
            path: path.to_path_buf(),
            out,
        })
    }

    /// Flushes, fsyncs and renames over the final name.
    pub fn commit(self) -> std::io::Result<()> {
        let f = self.out.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&self.tmp, &self.path)?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Removes what interrupted writes left in `dir` (hidden `.NAME.tmpPID` files).
pub fn remove_stale(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp") && e.path().is_file() {
            std::fs::remove_file(e.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_appears_under_the_final_name_before_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part-00000.bin");
        let mut s = Staged::create(&p).unwrap();
        s.write_all(b"tokens").unwrap();
        assert!(!p.exists());
        s.commit().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"tokens");
        let left = Staged::create(&dir.path().join("part-00001.bin")).unwrap();
        drop(left);
        assert_eq!(remove_stale(dir.path()).unwrap(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
