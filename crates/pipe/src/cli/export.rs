//! `pipe export FILE --engine olmo-core --out DIR [--profile NAME] [--ramp-pieces K]`: the plan
//! as an engine's runs, written without running them: each run's config, the driver, the plan
//! and launch scripts (one machine, `torchrun --nnodes`, sbatch). Stages the engine cannot
//! train are reported at the stage, and nothing is written.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{EXIT_ERRORS, EXIT_USAGE, read_source, use_color};
use pipelang::diag;
use pipelang_engine::{Options, olmo_core};

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum Engine {
    /// OLMo-core 3.0 (ai2-olmo-core) under torchrun.
    OlmoCore,
}

/// Write the engine runs of a recipe (configs, driver, launch scripts) without running them.
#[derive(clap::Args, Debug)]
pub struct Args {
    file: PathBuf,
    #[arg(long, value_enum)]
    engine: Engine,
    /// The directory to write (created; files already there are replaced).
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    profile: Option<String>,
    /// Pieces per phase whose mixture ramps (default: the fewest within 1 point of the plan).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    ramp_pieces: Option<u64>,
}

pub fn run(a: Args) -> ExitCode {
    let source = match read_source(&a.file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let name = a.file.display().to_string();
    let checked = pipelang::check::check_with(&source, a.profile.as_deref());
    let (Some(p), Some(plan)) = (&checked.pipeline, &checked.plan) else {
        eprint!(
            "{}",
            diag::render_human(&checked.diagnostics, &name, &source, use_color())
        );
        eprintln!("{name}: the pipeline has errors; fix them to export it (`pipe check {name}`)");
        return ExitCode::from(EXIT_ERRORS);
    };
    let Engine::OlmoCore = a.engine;
    let opts = Options {
        ramp_pieces: a.ramp_pieces,
    };
    let mut l = pipelang_engine::lower(p, plan, &opts);
    l.unmappable.extend(olmo_core::refusals(p, plan, &l));
    if !l.unmappable.is_empty() {
        let d: Vec<_> = l.unmappable.iter().map(|u| u.diagnostic.clone()).collect();
        eprint!("{}", diag::render_human(&d, &name, &source, use_color()));
        eprintln!(
            "{name}: {} stage(s) cannot be trained by OLMo-core; nothing was written",
            d.len()
        );
        return ExitCode::from(EXIT_ERRORS);
    }
    let files = olmo_core::files(p, plan, &l);
    if let Err(e) = olmo_core::write(&a.out, &files) {
        eprintln!("error: cannot write `{}`: {e}", a.out.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let out = a.out.display();
    eprintln!(
        "{} OLMo-core runs written to {out} (the plan's {} steps)",
        l.runs.len(),
        plan.total_steps
    );
    for (i, r) in l.runs.iter().enumerate() {
        eprintln!(
            "  {:<28} {:>8} steps  batch {:>5} x {:<6} rope {:<9} {}",
            olmo_core::run_dir(i, r),
            r.steps,
            r.batch,
            r.seq_len,
            olmo_core::rope_theta(r.rope_base),
            r.mixture
                .iter()
                .map(|s| format!("{} {:.1}%", s.source, 100.0 * s.share))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    eprintln!(
        "token files: `pipe prepare-data {name} --format olmo-core --out {out}/data`; then \
         {out}/launch.sh (NPROC=N), launch-cluster.sh or `sbatch launch.sbatch`"
    );
    ExitCode::SUCCESS
}
