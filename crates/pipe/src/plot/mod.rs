//! Figures: the plan along the run (`pipe plan --plot`) and a run's loss and LR
//! (`pipe report --plot`), as SVG or PNG with a bundled font.

pub mod plan;
#[cfg(feature = "train")]
pub mod report;

pub use plan::register_font;
