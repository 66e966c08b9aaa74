//! Hot reload: edits to stages not yet run are re-checked and applied between stages.

pub mod watch;
