//! The progress bar of the stage being trained, drawn from its metrics lines (hidden when stderr
//! is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

use super::metrics::MetricsLine;

pub struct StageBar {
    bar: ProgressBar,
}

impl StageBar {
    pub fn new(stage: &str, steps: u64, start: u64, visible: bool) -> StageBar {
        let bar = if visible {
            ProgressBar::new(steps)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>20} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_prefix(stage.to_string());
        bar.set_position(start);
        StageBar { bar }
    }

    /// Moves past the step of `line`; after the stage's last step the bar is cleared, so that
    /// what the stage prints next starts on a clean line.
    pub fn step(&self, line: &MetricsLine) {
        self.bar.set_position(line.step + 1);
        self.bar.set_message(format!(
            "loss {:.3} lr {} {:.0} tok/s",
            line.loss,
            pipelang::check::units::lr(line.lr),
            line.tokens_per_s
        ));
        if Some(line.step + 1) == self.bar.length() {
            self.bar.finish_and_clear();
        }
    }
}
