//! One process per run directory. A scheduler that requeues a job, or a second terminal, must
//! not train into a directory a live run is writing: `run.lock` holds an advisory `flock` for
//! the life of the run, with the holder's PID inside for the message. The kernel drops the
//! lock when its holder dies, so a lock file left by a killed run is taken over, and said.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "run.lock";

/// Held while the run lives; dropping it (or the process dying) releases the directory.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    _file: File,
}

#[derive(Debug, PartialEq)]
pub enum LockError {
    /// Another live process holds the directory.
    Held {
        dir: PathBuf,
        pid: Option<u32>,
    },
    Io(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Held { dir, pid } => {
                let who = pid.map_or("another process".to_string(), |p| format!("process {p}"));
                write!(
                    f,
                    "`{}` is in use by {who}, which is training into it\n  \
                     wait for it to finish (or stop it), or choose another --out",
                    dir.display()
                )
            }
            LockError::Io(e) => f.write_str(e),
        }
    }
}

/// What acquiring found: a fresh directory, or a lock a dead process left behind.
#[derive(Debug, PartialEq)]
pub enum Acquired {
    Fresh,
    TakenOver { pid: Option<u32> },
}

impl RunLock {
    /// Takes the directory's lock (creating the directory), or says who holds it.
    pub fn acquire(dir: &Path) -> Result<(RunLock, Acquired), LockError> {
        let io = |what: &str, e: std::io::Error| {
            LockError::Io(format!("cannot {what} `{}`: {e}", dir.display()))
        };
        std::fs::create_dir_all(dir).map_err(|e| io("create", e))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("open the lock of", e))?;
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        let pid = previous.trim().parse::<u32>().ok();
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    pid,
                }),
                _ => Err(io("lock", e)),
            };
        }
        file.set_len(0).map_err(|e| io("write the lock of", e))?;
        file.rewind().map_err(|e| io("write the lock of", e))?;
        writeln!(file, "{}", std::process::id()).map_err(|e| io("write the lock of", e))?;
        let found = match (previous.trim().is_empty(), pid) {
            (true, _) => Acquired::Fresh,
            (false, pid) => Acquired::TakenOver { pid },
        };
        Ok((RunLock { path, _file: file }, found))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Emptied, not removed: removing would let a process that opened the old inode and a
        // newcomer that creates a new one both hold "the" lock.
        if let Ok(f) = OpenOptions::new().write(true).open(&self.path) {
            let _ = f.set_len(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let (first, found) = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(found, Acquired::Fresh);
        // flock locks belong to the open file description, so a second open in the same
        // process conflicts exactly as another process would.
        let err = RunLock::acquire(dir.path()).unwrap_err();
        assert_eq!(
            err,
            LockError::Held {
                dir: dir.path().to_path_buf(),
                pid: Some(std::process::id())
            }
        );
        assert!(err.to_string().contains(&std::process::id().to_string()));
        drop(first);
        let (_again, found) = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(found, Acquired::Fresh);
    }

    #[test]
    fn a_lock_left_by_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // What a SIGKILLed run leaves: the file with its PID, and no flock (the kernel dropped it).
        std::fs::write(dir.path().join(LOCK_FILE), "4194999\n").unwrap();
        let (_lock, found) = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(found, Acquired::TakenOver { pid: Some(4194999) });
        let now = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(now.trim(), std::process::id().to_string());
    }
}
