//! `metrics.jsonl`: one line per training step, whatever trained it. This is the schema's one
//! definition: the runner writes it, truncates it on resume, and `pipe report` reads it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    pub stage: String,
    pub phase: Option<String>,
    /// The step within the stage, and across the whole run.
    pub step: u64,
    pub global_step: u64,
    /// Tokens the stage has trained on once this step is done.
    pub tokens: f64,
    pub loss: f64,
    /// The schedule's LR at this step.
    pub lr: f64,
    /// The LR of each model whose `lr_scale` is not 1, as the optimizer applied it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub model_lr: BTreeMap<String, f64>,
    pub seq_len: u64,
    pub batch: u64,
    /// RoPE base per decoder.
    pub rope_base: BTreeMap<String, f64>,
    /// RoPE scaling per decoder that has one (as `StepState::rope_scaling`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rope_scaling: BTreeMap<String, pipelang::plan::rope::RopeScaling>,
    /// Sequences (or pairs) drawn from each source in this step.
    pub sources: BTreeMap<String, usize>,
    pub grad_norm: f64,
    pub tokens_per_s: f64,
    pub extra: Extra,
    pub time_ms: TimeMs,
}

/// The parts of the loss, by kind of stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Extra {
    Coca { contrastive: f64, caption: f64 },
    NextToken { aux: f64 },
}

/// Where the step's time went, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeMs {
    pub data: f64,
    pub forward: f64,
    pub backward: f64,
    pub optimizer: f64,
}

/// A duration in milliseconds, rounded to microseconds for the metrics file.
pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

pub fn path(run_dir: &Path) -> PathBuf {
    run_dir.join("metrics.jsonl")
}

/// Appends lines to a run's `metrics.jsonl`.
pub struct MetricsWriter {
    file: File,
}

impl MetricsWriter {
    pub fn open(run_dir: &Path) -> std::io::Result<MetricsWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path(run_dir))?;
        Ok(MetricsWriter { file })
    }

    pub fn write(&mut self, line: &MetricsLine) -> std::io::Result<()> {
        // Through `Value`, whose map sorts the keys: the order the lines have always had.
        let value = serde_json::to_value(line).map_err(std::io::Error::other)?;
        writeln!(self.file, "{value}")
    }

    /// Makes the lines written so far durable: a checkpoint is recorded only after the lines of
    /// the steps it holds.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.sync_data()
    }
}

/// Every line of a run's metrics, in order.
pub fn read(run_dir: &Path) -> Result<Vec<MetricsLine>, String> {
    let path = path(run_dir);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| format!("{}:{}: not a metrics line: {e}", path.display(), i + 1))
        })
        .collect()
}

/// On resume, drops the lines of steps from `global_step` on: the run writes them again.
pub fn truncate(run_dir: &Path, global_step: u64) -> std::io::Result<()> {
    let path = path(run_dir);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<MetricsLine>(l).is_ok_and(|m| m.global_step < global_step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    super::atomic::write(&path, kept.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(global_step: u64, extra: Extra) -> MetricsLine {
        MetricsLine {
            stage: "s".into(),
            phase: None,
            step: global_step,
            global_step,
            tokens: 64.0,
            loss: 2.5,
            lr: 1e-3,
            model_lr: BTreeMap::new(),
            seq_len: 16,
            batch: 4,
            rope_base: [("lm".to_string(), 10_000.0)].into(),
            rope_scaling: BTreeMap::new(),
            sources: [("web".to_string(), 4)].into(),
            grad_norm: 0.5,
            tokens_per_s: 1000.0,
            extra,
            time_ms: TimeMs {
                data: 0.1,
                forward: 1.0,
                backward: 2.0,
                optimizer: 0.5,
            },
        }
    }

    #[test]
    fn the_line_keeps_its_keys_sorted_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = MetricsWriter::open(dir.path()).unwrap();
        let a = line(0, Extra::NextToken { aux: 0.0 });
        let b = line(
            1,
            Extra::Coca {
                contrastive: 1.0,
                caption: 2.0,
            },
        );
        w.write(&a).unwrap();
        w.write(&b).unwrap();
        w.sync().unwrap();
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert!(text.starts_with(
            "{\"batch\":4,\"extra\":{\"aux\":0.0},\"global_step\":0,\"grad_norm\":0.5,"
        ));
        assert_eq!(read(dir.path()).unwrap(), vec![a.clone(), b]);
        truncate(dir.path(), 1).unwrap();
        assert_eq!(read(dir.path()).unwrap(), vec![a]);
    }
}
