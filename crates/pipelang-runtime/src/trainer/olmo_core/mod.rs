//! `pipe run --engine olmo-core`: the plan's engine runs (`pipelang_engine::lower`) trained by
//! OLMo-core under `torchrun`, one process group per run, in plan order. pipelang writes the
//! configs, the driver and the token files into `OUT/engine/` (the same files as `pipe
//! export`, rerunnable by hand), launches each run, streams the steps the driver logs into
//! `metrics.jsonl` (the candle runtime's schema, so `pipe report` reads either) and records the
//! stages in `run.ron`.
//!
//! Resume: a run that finished leaves `DONE`; a run killed part-way continues from the last
//! checkpoint in its own save folder (the driver loads it with its trainer state: same run,
//! same dataset), and the steps it logged after that checkpoint are dropped and run again.

mod tokens;

use std::io::{BufRead, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pipelang::plan::Plan;
use pipelang_engine::olmo_core::{self, run_dir};
use pipelang_engine::runs::{EngineRun, Lowering, Options};

use crate::lock::RunLock;
use crate::metrics::{self, Extra, MetricsLine, MetricsWriter, TimeMs};
use crate::record::{RunRecord, StageRecord, Status};
use crate::setup::{Prepared, RunError};

pub struct EngineOptions {
    pub out: PathBuf,
    /// Processes per run (`torchrun --nproc-per-node`).
    pub nproc: u32,
    pub ramp_pieces: Option<u64>,
    pub resume: bool,
}

/// The Python of the pinned engines: `PIPE_ENGINE_PYTHON`, else `.tools/engines/bin/python`
/// under the current directory (what `scripts/install-engines.sh` makes), else `python3`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PIPE_ENGINE_PYTHON") {
        return p.into();
    }
    let local = Path::new(".tools/engines/bin/python");
    if local.exists() {
        return local.canonicalize().unwrap_or_else(|_| local.into());
    }
    "python3".into()
}

/// The lowering, or every stage the engine cannot take as located diagnostics.
pub fn lowering(prep: &Prepared, ramp_pieces: Option<u64>) -> Result<Lowering, RunError> {
    let p = prep.checked.pipeline.as_ref().expect("a planned pipeline");
    let mut l = pipelang_engine::lower(
        p,
        &prep.plan,
        &Options {
            ramp_pieces,
            target: pipelang_engine::Target::OlmoCore,
        },
    );
    l.unmappable.extend(olmo_core::refusals(p, &prep.plan, &l));
    if l.unmappable.is_empty() {
        return Ok(l);
    }
    Err(RunError::Diagnostics {
        file: prep.file.clone(),
        source: prep.source.clone(),
        diagnostics: l.unmappable.iter().map(|u| u.diagnostic.clone()).collect(),
    })
}

fn new_record(prep: &Prepared, out: &Path) -> Result<RunRecord, RunError> {
    let plan = &prep.plan;
    let mut r = RunRecord {
        pipeline: plan.pipeline.clone(),
        profile: plan.profile.clone(),
        seed: plan.seed,
        source_hash: crate::record::sha256(prep.source.as_bytes()),
        plan_hash: plan.hash(),
        stages: plan
            .stages
            .iter()
            .map(|s| StageRecord {
                name: s.name.clone(),
                status: Status::Pending,
                step: 0,
                steps: s.steps,
                tokens: s.trained_tokens,
                checkpoint: None,
                loader: None,
                loss_first_tenth: None,
                loss_last_tenth: None,
                evals: Default::default(),
                wall_s: 0.0,
                phases: vec![],
                earlier: vec![],
            })
            .collect(),
        cursors: Default::default(),
        versions: vec![],
        stopped: None,
    };
    r.add_version(out, &prep.source, None, 0, vec![])?;
    Ok(r)
}

/// The newest `stepN` checkpoint in a run's save folder: where a killed try continues.
fn last_checkpoint(dir: &Path) -> Option<u64> {
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
            model_lr: Default::default(),
            seq_len: s.seq_len,
            batch: s.batch,
            rope_base: [(r.model.name.clone(), s.rope_base.unwrap_or(f64::NAN))].into(),
            // The mixture dataset does not say which source a sequence came from.
            sources: Default::default(),
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

/// Trains the plan with OLMo-core; returns the record it wrote.
pub fn run(
    prep: &Prepared,
    o: &EngineOptions,
    log: &mut dyn FnMut(String),
) -> Result<RunRecord, RunError> {
    let l = lowering(prep, o.ramp_pieces)?;
    let (_lock, _) = RunLock::acquire(&o.out).map_err(|e| RunError::Locked(e.to_string()))?;
    let record_path = o.out.join("run.ron");
    let mut record = if o.resume {
        let r = RunRecord::load(&record_path).map_err(RunError::Other)?;
        if r.plan_hash != prep.plan.hash() {
            return Err(RunError::Other(format!(
                "`{}` was run with another plan; resume it with the pipeline it ran",
                o.out.display()
            )));
        }
        r
    } else if record_path.exists() {
        return Err(RunError::Other(format!(
            "`{}` already holds a run: continue it with --resume, or pick another --out",
            o.out.display()
        )));
    } else {
        new_record(prep, &o.out)?
    };
    record.save(&record_path)?;
    let p = prep.checked.pipeline.as_ref().expect("a planned pipeline");
    let eng = o.out.join("engine");
    olmo_core::write(&eng, &olmo_core::files(p, &prep.plan, &l))?;
    let mut used: Vec<String> = l
        .runs
        .iter()
        .flat_map(|r| r.mixture.iter().map(|s| s.source.clone()))
        .collect();
    used.sort();
    used.dedup();
    let wide = l.runs.iter().any(|r| r.model.vocab > u16::MAX as u64 + 1);
    tokens::write(prep, &used, wide, &eng, log)?;
    let python = python();
    // Losses of each stage so far (on a resume, from the metrics of the runs that finished).
    let mut losses: Vec<Vec<f64>> = vec![vec![]; prep.plan.stages.len()];
    let done = |i: usize, r: &EngineRun| eng.join(run_dir(i, r)).join("DONE").exists();
    let first_todo = l.runs.iter().enumerate().find(|(i, r)| !done(*i, r));
    let resume_from = first_todo.map_or(prep.plan.total_steps, |(_, r)| r.global_first_step);
    metrics::truncate(&o.out, resume_from)?;
    if let Ok(lines) = metrics::read(&o.out) {
        for m in lines {
            if let Some(i) = prep.plan.stage_index(&m.stage) {
                losses[i].push(m.loss);
            }
        }
    }
    for (i, r) in l.runs.iter().enumerate() {
        let dir = eng.join(run_dir(i, r));
        if done(i, r) {
            continue;
        }
        let started = std::time::Instant::now();
        let from = last_checkpoint(&dir).unwrap_or(0).min(r.steps);
        let steps_path = dir.join("steps.jsonl");
        truncate_steps(&steps_path, from)?;
        metrics::truncate(&o.out, r.global_first_step + from)?;
        losses[r.stage_index].truncate((r.first_step + from) as usize);
        log(format!(
            "{}: {} steps of {} x {} tokens on {} process(es){}",
            r.name,
            r.steps,
            r.batch,
            r.seq_len,
            o.nproc,
            if from > 0 {
                format!(", from its checkpoint at step {from}")
            } else {
                String::new()
            }
        ));
        let engine_log = std::fs::File::create(dir.join("engine.log"))?;
        let mut cmd = Command::new(&python);
        // torchrun dies with pipe (and its ranks with it, as the driver asks): a killed run
        // leaves nothing behind that would write into the folder it is resumed from.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                #[cfg(target_os = "linux")]
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        // The cores shared among the ranks (torch would start a thread per core in each).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (cores / o.nproc as usize).max(1);
        let mut child = cmd
            .args(["-m", "torch.distributed.run", "--standalone"])
            .arg(format!("--nproc-per-node={}", o.nproc))
            .arg("driver.py")
            .arg(Path::new(&run_dir(i, r)).join("config.json"))
            .current_dir(&eng)
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
            plan: &prep.plan,
            writer: MetricsWriter::open(&o.out)?,
            next: from,
            last_time: None,
            losses: vec![],
        };
        let mut offset = 0;
        let mut pending = String::new();
        let mut read_new =
            |stream: &mut Stream, log: &mut dyn FnMut(String)| -> Result<(), RunError> {
                let Ok(mut f) = std::fs::File::open(&steps_path) else {
                    return Ok(());
                };
                f.seek(SeekFrom::Start(offset))?;
                let mut reader = std::io::BufReader::new(f);
                loop {
                    let mut buf = String::new();
                    let n = reader.read_line(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    offset += n as u64;
                    pending.push_str(&buf);
                    if pending.ends_with('\n') {
                        let line = std::mem::take(&mut pending);
                        let s: EngineStep = serde_json::from_str(line.trim()).map_err(|e| {
                            RunError::Training(format!(
                                "{}: a line the driver wrote is not a step: {e}",
                                steps_path.display()
                            ))
                        })?;
                        stream.line(s, log)?;
                    }
                }
                Ok(())
            };
        let status = loop {
            if let Err(e) = read_new(&mut stream, log) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
            if let Some(s) = child.try_wait()? {
                read_new(&mut stream, log)?;
                break s;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        stream.writer.sync()?;
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
        let run_losses = std::mem::take(&mut stream.losses);
        losses[r.stage_index].extend(run_losses);
        pipelang::atomic::write(&dir.join("DONE"), b"")?;
        let st = &prep.plan.stages[r.stage_index];
        let rec = record.stage_mut(&st.name).expect("every stage is recorded");
        rec.step = r.first_step + r.steps;
        rec.status = if rec.step == st.steps {
            Status::Done
        } else {
            Status::Running
        };
        rec.checkpoint = Some(format!("engine/{}/checkpoint", run_dir(i, r)));
        rec.wall_s += started.elapsed().as_secs_f64();
        if losses[r.stage_index].len() as u64 == rec.step {
            rec.add_losses(st, 0, &losses[r.stage_index]);
        }
        record.save(&record_path)?;
    }
    Ok(record)
}

/// `pipe run FILE --engine olmo-core`: the source (on a resume, the version the run recorded
/// last), checked, planned and lowered before anything is written; then `run`.
pub fn run_file(
    file: &Path,
    profile: Option<&str>,
    o: &EngineOptions,
    log: &mut dyn FnMut(String),
) -> Result<(Prepared, RunRecord), RunError> {
    let record_path = o.out.join("run.ron");
    let source = if o.resume {
        let r = RunRecord::load(&record_path).map_err(|e| {
            RunError::Other(format!(
                "{e}\n  --resume continues a run directory made by `pipe run`"
            ))
        })?;
        let last = r
            .versions
            .last()
            .ok_or_else(|| RunError::Other("run.ron records no source version".into()))?;
        std::fs::read_to_string(o.out.join(&last.source_file))?
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| RunError::Other(format!("cannot read `{}`: {e}", file.display())))?
    };
    let prep = crate::setup::prepare(file, profile, source)?;
    lowering(&prep, o.ramp_pieces)?;
    let p = prep.checked.pipeline.as_ref().expect("a planned pipeline");
    crate::setup::ensure_sample_data(p, &prep.data_root, p.seed.value, log)?;
    let record = run(&prep, o, log)?;
    Ok((prep, record))
}
