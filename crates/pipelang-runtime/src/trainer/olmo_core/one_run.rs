//! One engine run under `torchrun`: launched in its own folder, its `steps.jsonl` streamed
//! into the run directory's `metrics.jsonl` as the driver writes it, and its end judged (every
//! step logged, exit 0). A try killed part-way continues from the newest checkpoint in the
//! run's save folder; the steps it logged past that checkpoint are dropped and run again.

use std::io::{BufRead, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use pipelang::plan::Plan;
use pipelang_engine::runs::EngineRun;

use crate::metrics::{self, Extra, MetricsLine, MetricsWriter, TimeMs};
use crate::setup::RunError;
use crate::stop::StopFlag;

/// The newest `stepN` checkpoint in a run's save folder: where a killed try continues.
pub fn last_checkpoint(dir: &Path) -> Option<u64> {
    std::fs::read_dir(dir.join("checkpoint"))
        .ok()?
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("step")?
                .parse()
                .ok()
        })
        .max()
}

/// One line of the driver's `steps.jsonl`.
#[derive(serde::Deserialize)]
struct EngineStep {
    /// The trainer's bookkeeping before its first batch may log step -1: not a step.
    step: i64,
    loss: f64,
    lr: f64,
    grad_norm: Option<f64>,
    seq_len: u64,
    batch: u64,
    rope_base: Option<f64>,
    /// Sequences drawn from each source in the step (over all ranks).
    #[serde(default)]
    sources: std::collections::BTreeMap<String, usize>,
    time: f64,
}

/// Keeps the lines of steps before `step` (a killed try's steps past its checkpoint go).
fn truncate_steps(path: &Path, step: u64) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<EngineStep>(l)
                .is_ok_and(|s| s.step >= 0 && (s.step as u64) < step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    pipelang::atomic::write(path, kept.as_bytes())
}

struct Stream<'a> {
    run: &'a EngineRun,
    plan: &'a Plan,
    writer: MetricsWriter,
    /// The next step expected; lines arrive in order, repeated lines are ignored.
    next: u64,
    last_time: Option<f64>,
    losses: Vec<f64>,
}

impl Stream<'_> {
    fn line(&mut self, s: EngineStep, log: &mut dyn FnMut(String)) -> Result<(), RunError> {
        if s.step != self.next as i64 {
            return Ok(());
        }
        let step = s.step as u64;
        let r = self.run;
        let st = &self.plan.stages[r.stage_index];
        let k = r.first_step + step;
        let dt = self.last_time.map(|t| s.time - t).filter(|d| *d > 0.0);
        self.last_time = Some(s.time);
        let m = MetricsLine {
            stage: r.stage.clone(),
            phase: r.phase.clone(),
            step: k,
            global_step: r.global_first_step + step,
            tokens: st.tokens_at(k) + r.tokens_per_step as f64,
            loss: s.loss,
            lr: s.lr,
            // Only models with an lr_scale are listed, and the export refuses one.
            model_lr: Default::default(),
            seq_len: s.seq_len,
            batch: s.batch,
            rope_base: [(r.model.name.clone(), s.rope_base.unwrap_or(f64::NAN))].into(),
            // The export refuses a scaling it cannot map; a mapped one is the run's own.
            rope_scaling: if r.rope_scaling.is_none() {
                Default::default()
            } else {
                [(r.model.name.clone(), r.rope_scaling)].into()
            },
            sources: s.sources.clone(),
            grad_norm: s.grad_norm.unwrap_or(f64::NAN),
            tokens_per_s: dt.map_or(0.0, |d| r.tokens_per_step as f64 / d),
            extra: Extra::NextToken { aux: 0.0 },
            time_ms: TimeMs {
                data: 0.0,
                forward: 0.0,
                backward: 0.0,
                optimizer: 0.0,
            },
        };
        self.writer.write(&m)?;
        if !s.loss.is_finite() {
            return Err(RunError::Training(format!(
                "run `{}` diverged at step {k} of stage `{}` (loss {}, lr {:e})",
                r.name, r.stage, s.loss, s.lr
            )));
        }
        self.losses.push(s.loss);
        self.next += 1;
        if self.next == r.steps || self.next % 10 == 0 {
            log(format!(
                "{:<28} step {:>6}/{:<6} loss {:.4}  lr {:.3e}  {:.0} tok/s",
                r.name, self.next, r.steps, s.loss, s.lr, m.tokens_per_s
            ));
        }
        Ok(())
    }
}

/// What a try of a run leaves for the runner.
pub struct Finished {
    /// The losses of the steps this try trained (from its first step not yet logged).
    pub losses: Vec<f64>,
    /// Stopped on request before its last step (the ranks checkpointed where they stopped).
    pub stopped: bool,
}

/// Trains run `r` (folder `dir`, under the export `eng`) with `nproc` ranks from step `from`.
#[allow(clippy::too_many_arguments)]
pub fn train(
    python: &Path,
    eng: &Path,
    rel: &Path,
    r: &EngineRun,
    plan: &Plan,
    out: &Path,
    nproc: u32,
    from: u64,
    stop: &StopFlag,
    log: &mut dyn FnMut(String),
) -> Result<Finished, RunError> {
    let dir = eng.join(rel);
    let steps_path = dir.join("steps.jsonl");
    truncate_steps(&steps_path, from)?;
    metrics::truncate(out, r.global_first_step + from)?;
    let engine_log = std::fs::File::create(dir.join("engine.log"))?;
    let mut cmd = Command::new(python);
    // torchrun dies with pipe (and its ranks with it, as the driver asks): a killed run
    // leaves nothing behind that would write into the folder it is resumed from.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
        // Its own process group: a Ctrl-C at the terminal reaches pipe only, which decides
        // what the ranks are told (below).
        cmd.process_group(0);
    }
    // The cores shared among the ranks (torch would start a thread per core in each).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / nproc as usize).max(1);
    let mut child = cmd
        .args(["-m", "torch.distributed.run", "--standalone"])
        .arg(format!("--nproc-per-node={nproc}"))
        .arg("driver.py")
        .arg(rel.join("config.json"))
        .current_dir(eng)
        .env("OMP_NUM_THREADS", threads.to_string())
        .stdin(Stdio::null())
        .stdout(engine_log.try_clone()?)
        .stderr(engine_log)
        .spawn()
        .map_err(|e| {
            RunError::Other(format!(
                "cannot start `{}` (install the pinned engines with \
                 scripts/install-engines.sh, or set PIPE_ENGINE_PYTHON): {e}",
                python.display()
            ))
        })?;
    let mut stream = Stream {
        run: r,
        plan,
        writer: MetricsWriter::open(out)?,
        next: from,
        last_time: None,
        losses: vec![],
    };
    let mut tail = Tail {
        path: steps_path,
        offset: 0,
        pending: String::new(),
    };
    let mut stopping = false;
    let status = loop {
        if let Err(e) = tail.read(&mut stream, log) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        if stop.requested() && !stopping {
            // OLMo-core's trainer takes SIGTERM as a cancel: the ranks agree to stop after the
            // step they are on and save a checkpoint there.
            stopping = true;
            terminate_ranks(child.id());
        }
        if let Some(s) = child.try_wait()? {
            tail.read(&mut stream, log)?;
            break s;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    stream.writer.sync()?;
    if stopping {
        return Ok(Finished {
            losses: stream.losses,
            stopped: true,
        });
    }
    if !status.success() || stream.next != r.steps {
        let text = std::fs::read_to_string(dir.join("engine.log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        return Err(RunError::Training(format!(
            "OLMo-core stopped run `{}` after {} of {} steps ({status}); the last lines of {}:\n{}",
            r.name,
            stream.next,
            r.steps,
            dir.join("engine.log").display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    Ok(Finished {
        losses: stream.losses,
        stopped: false,
    })
}

/// SIGTERM to the ranks (torchrun's children) rather than to torchrun, which would give them
/// 30 s before killing them; torchrun then ends when they do. Without /proc's child lists the
/// whole group is told, torchrun included.
fn terminate_ranks(torchrun: u32) {
    let children = std::fs::read_to_string(format!("/proc/{torchrun}/task/{torchrun}/children"))
        .unwrap_or_default();
    let ranks: Vec<i32> = children
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    // SAFETY: signals to processes this run started.
    unsafe {
        if ranks.is_empty() {
            libc::killpg(torchrun as libc::pid_t, libc::SIGTERM);
        }
        for p in ranks {
            libc::kill(p, libc::SIGTERM);
        }
    }
}

/// The driver's `steps.jsonl`, read as it grows: whole lines only.
struct Tail {
    path: std::path::PathBuf,
    offset: u64,
    pending: String,
}

impl Tail {
    fn read(&mut self, stream: &mut Stream, log: &mut dyn FnMut(String)) -> Result<(), RunError> {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Ok(());
        };
        f.seek(SeekFrom::Start(self.offset))?;
        let mut reader = std::io::BufReader::new(f);
        loop {
            let mut buf = String::new();
            let n = reader.read_line(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.offset += n as u64;
            self.pending.push_str(&buf);
            if self.pending.ends_with('\n') {
                let line = std::mem::take(&mut self.pending);
                let s: EngineStep = serde_json::from_str(line.trim()).map_err(|e| {
                    RunError::Training(format!(
                        "{}: a line the driver wrote is not a step: {e}",
                        self.path.display()
                    ))
                })?;
                stream.line(s, log)?;
            }
        }
    }
}
