//! The candle trainer: trains a stage in this process, on the CPU (fused kernels by default) or
//! a CUDA device.

mod average;
mod evals;
mod heldout;
mod session;
mod step;

use std::time::Instant;

use candle_core::Device;

use self::evals::StageEvals;
use self::session::Session;
use super::{StageContext, StageOutcome, Trainer};
use crate::checkpoint;
use crate::metrics::{MetricsLine, TimeMs, ms};
use crate::model::Kernels;
use crate::setup::RunError;
use pipelang::check::ir::Pipeline;
use pipelang::plan::StagePlan;

pub struct CandleTrainer {
    dev: Device,
    kernels: Kernels,
}

impl CandleTrainer {
    /// `kernels`: `None` for the fused ones on CPU and the reference ones on any other device
    /// (the fused ones are CPU code).
    pub fn new(cuda: bool, kernels: Option<Kernels>) -> Result<CandleTrainer, RunError> {
        let dev = device(cuda)?;
        if kernels == Some(Kernels::Fused) && !dev.is_cpu() {
            return Err(RunError::Other(
                "the fused kernels run on the CPU only: drop `--kernels fused` to use the \
                 reference kernels on this device"
                    .into(),
            ));
        }
        let kernels = kernels.unwrap_or_else(|| Kernels::for_device(&dev));
        Ok(CandleTrainer { dev, kernels })
    }

    /// One step: forward, backward, optimizer; its metrics line once the loss is known to be
    /// finite.
    fn step(
        &self,
        s: &mut Session,
        ctx: &StageContext,
        step: u64,
    ) -> Result<MetricsLine, RunError> {
        let (plan, st) = (ctx.plan(), ctx.stage());
        let t0 = Instant::now();
        let at = plan.step(ctx.index, step);
        let shares: Vec<f64> = s.used.iter().map(|&d| at.shares[d]).collect();
        let fwd = s.forward(&at, &shares, &self.dev)?;
        let t_fwd = t0.elapsed();
        let grads = fwd.loss.backward()?;
        let t_bwd = t0.elapsed();
        // Checked before the update, so that nothing non-finite reaches the weights.
        let loss = step::scalar(&fwd.loss)?;
        if !loss.is_finite() {
            return Err(ctx.diverged(step, at.lr, &format!("the loss is {loss}")));
        }
        let stats = s.opt.step(&grads, at.lr).map_err(|e| {
            // candle appends a backtrace when RUST_BACKTRACE is set: the first line says it.
            let what = e.to_string();
            ctx.diverged(step, at.lr, what.lines().next().unwrap_or(""))
        })?;
        let t_opt = t0.elapsed();
        Ok(MetricsLine {
            stage: st.name.clone(),
            step,
            global_step: ctx.global_step(step),
            tokens: at.tokens + at.tokens_per_step as f64,
            loss,
            lr: at.lr,
            // What the optimizer applied, read back from it (not recomputed from the plan).
            model_lr: st
                .lr_scale
                .iter()
                .filter(|(_, f)| **f != 1.0)
                .filter_map(|(m, _)| Some((m.clone(), s.opt.lr_of_model(m, at.lr)?)))
                .collect(),
            seq_len: at.seq_len,
            batch: at.batch,
            sources: s
                .used
                .iter()
                .zip(fwd.counts)
                .map(|(&d, c)| (plan.sources[d].clone(), c))
                .collect(),
            grad_norm: stats.grad_norm,
            tokens_per_s: at.tokens_per_step as f64 / t0.elapsed().as_secs_f64().max(1e-9),
            extra: fwd.extra,
            phase: at.phase,
            rope_base: at.rope_base,
            rope_scaling: at.rope_scaling,
            time_ms: TimeMs {
                data: ms(fwd.data),
                forward: ms(t_fwd - fwd.data),
                backward: ms(t_bwd - t_fwd),
                optimizer: ms(t_opt - t_bwd),
            },
        })
    }

    fn checkpoint(&self, s: &Session, ctx: &mut StageContext, step: u64) -> Result<(), RunError> {
        let st = ctx.stage();
        let done = step + 1;
        let rel = checkpoint::rel_path(&st.name, done, done == st.steps);
        s.checkpoint(&self.dev, done, st.steps)?
            .save(ctx.run_dir, &rel)
            .map_err(|e| ctx.checkpoint_failed(&rel, &e))?;
        ctx.checkpointed(done, rel, Some(s.loader.state()))
    }
}

impl Trainer for CandleTrainer {
    fn name(&self) -> &str {
        "candle"
    }

    fn can_train(&self, _: &Pipeline, _: &StagePlan) -> Result<(), String> {
        Ok(())
    }

    fn train_stage(&mut self, ctx: &mut StageContext) -> Result<StageOutcome, RunError> {
        let mut s = Session::open(ctx, self.kernels, &self.dev)?;
        let evals = StageEvals::prepare(ctx, &s);
        let start = ctx.start.first_step();
        let mut found = match start {
            0 => evals.at_start(&s, &self.dev)?,
            _ => Default::default(),
        };
        let mut losses = vec![];
        for step in start..ctx.stage().steps {
            let line = self.step(&mut s, ctx, step)?;
            s.average_step(step)?;
            losses.push(line.loss);
            ctx.step_done(&line)?;
            for branch in ctx.branches_after(step) {
                let rel = checkpoint::branch_path(&ctx.stage().name, &branch);
                // The weights after this step, never the stage's average (a branch point lies
                // strictly inside the stage).
                s.checkpoint(&self.dev, step + 1, ctx.stage().steps)?
                    .save(ctx.run_dir, &rel)
                    .map_err(|e| ctx.checkpoint_failed(&rel, &e))?;
            }
            if ctx.checkpoint_due(step) {
                self.checkpoint(&s, ctx, step)?;
            }
            if ctx.stop_requested(step) {
                return Err(ctx.stopped(step + 1));
            }
        }
        // The stage hands on its average (`average`, `ema`): evaluate that, not the last step.
        s.take_average(ctx.stage().steps)?;
        found.extend(evals.at_end(&s, &self.dev)?);
        Ok(StageOutcome {
            losses,
            evals: found,
            cursors: s.loader.cursors(),
        })
    }
}

fn device(cuda: bool) -> Result<Device, RunError> {
    if !cuda {
        return Ok(Device::Cpu);
    }
    #[cfg(feature = "cuda")]
    {
        Device::new_cuda(0).map_err(|e| RunError::Other(format!("no CUDA device: {e}")))
    }
    #[cfg(not(feature = "cuda"))]
    Err(RunError::Other(
        "this `pipe` was built without CUDA: rebuild with `cargo build --release --features cuda`"
            .into(),
    ))
}
