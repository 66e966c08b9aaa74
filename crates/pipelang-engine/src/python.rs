//! Which Python runs the engines: the one place that knows where `scripts/install-engines.sh`
//! puts the pinned venv. `pipe run --engine` launches it; the tests that drive the engines'
//! own code find it here and fail with [`MISSING`] when it is not installed.

use std::path::{Path, PathBuf};

/// The environment variable that names another Python with the pinned engines.
pub const ENV: &str = "PIPE_ENGINE_PYTHON";

/// What to do when it is missing.
pub const MISSING: &str =
    "install the pinned engines with scripts/install-engines.sh (or set PIPE_ENGINE_PYTHON)";

/// `PIPE_ENGINE_PYTHON`, else `.tools/engines/bin/python` under `root` when it exists; either
/// made absolute but not resolved: a venv's `python` is a link to the base interpreter, and only
/// the venv's path finds the venv's packages.
pub fn find(root: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(ENV) {
        // Absolute against the directory pipe was started in: the engine is launched from
        // the run's own folder.
        let p = PathBuf::from(p);
        return Some(std::path::absolute(&p).unwrap_or(p));
    }
    let local = root.join(".tools/engines/bin/python");
    local
        .exists()
        .then(|| std::path::absolute(&local).unwrap_or(local))
}

/// [`find`] for a test: its absence is a failure that says how to install it, never a skip.
pub fn for_tests(root: &Path) -> PathBuf {
    match find(root) {
        Some(p) if p.exists() => p,
        Some(p) => panic!("{} not found: {MISSING}", p.display()),
        None => panic!(
            "{} not found: {MISSING}",
            root.join(".tools/engines/bin/python").display()
        ),
    }
}
