//! `pipe export FILE --engine megatron|olmo-core --out DIR [--profile NAME] [--ramp-pieces K]
//! [--nodes N --gpus-per-node G --tp T --pp P --ep E --micro-batch M]`: the plan written as
//! an external engine's launch files. Everything the engine cannot train or say is reported,
//! located in the recipe, before anything is written; approximations are warnings with their
//! bound, and the export goes ahead.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use pipelang::diag::{self, Severity};
use pipelang_engine::parallel::Layout;
use pipelang_engine::{Options, Target, megatron, olmo_core};

use super::{EXIT_ERRORS, EXIT_USAGE, read_source, use_color};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Engine {
    /// Megatron-LM core_v0.16.1: a bash launch script per run.
    Megatron,
    /// OLMo-core 3.0: a JSON config per run and the driver that reads it.
    OlmoCore,
}

/// Write the plan as an external engine's launch files (docs/engines.md).
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
    /// Runs per phase whose mixture moves (default: the fewest within 1 point of the plan).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    ramp_pieces: Option<u64>,
    /// The parallel layout the launch files are written for (Megatron), checked against the
    /// recipe: heads and layers divide by --tp and --pp, experts by --ep, every global batch by
    /// --micro-batch x the data-parallel size.
    #[arg(long, default_value_t = 1)]
    nodes: u64,
    #[arg(long, default_value_t = 1)]
    gpus_per_node: u64,
    #[arg(long, default_value_t = 1)]
    tp: u64,
    #[arg(long, default_value_t = 1)]
    pp: u64,
    #[arg(long, default_value_t = 1)]
    ep: u64,
    #[arg(long, default_value_t = 1)]
    micro_batch: u64,
}

pub fn run(a: Args) -> ExitCode {
    let source = match read_source(&a.file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let name = a.file.display().to_string();
    let checked = pipelang::check::check_with(&source, a.profile.as_deref());
    let show = |ds: &[diag::Diagnostic]| {
        if !ds.is_empty() {
            eprint!("{}", diag::render_human(ds, &name, &source, use_color()));
        }
    };
    if checked.has_errors() {
        show(&checked.diagnostics);
        eprintln!("{name}: the pipeline has errors; fix them to export it (`pipe check {name}`)");
        return ExitCode::from(EXIT_ERRORS);
    }
    let (Some(p), Some(plan)) = (checked.pipeline.as_ref(), checked.plan.as_ref()) else {
        eprintln!("{name}: no plan could be made");
        return ExitCode::from(EXIT_ERRORS);
    };
    let target = match a.engine {
        Engine::Megatron => Target::Megatron,
        Engine::OlmoCore => Target::OlmoCore,
    };
    let opts = Options {
        ramp_pieces: a.ramp_pieces,
        target,
    };
    let l = pipelang_engine::lower(p, plan, &opts);
    let mut ds: Vec<diag::Diagnostic> = l.unmappable.iter().map(|u| u.diagnostic.clone()).collect();
    let files = match a.engine {
        Engine::OlmoCore => {
            ds.extend(
                olmo_core::refusals(p, plan, &l)
                    .into_iter()
                    .map(|u| u.diagnostic),
            );
            olmo_core::files(p, plan, &l)
        }
        Engine::Megatron => {
            let layout = Layout {
                nodes: a.nodes,
                gpus_per_node: a.gpus_per_node,
                tp: a.tp,
                pp: a.pp,
                ep: a.ep,
                micro_batch: a.micro_batch,
            };
            ds.extend(pipelang_engine::parallel::check(p, plan, &l, &layout));
            let x = megatron::export(p, plan, &l);
            ds.extend(x.diagnostics.iter().cloned());
            megatron::files(p, plan, &l, &x, &layout)
        }
    };
    show(&ds);
    if ds.iter().any(|d| d.severity == Severity::Error) {
        eprintln!(
            "{name}: nothing written; {} cannot take the recipe as it is (docs/engines.md)",
            target.name()
        );
        return ExitCode::from(EXIT_ERRORS);
    }
    if let Err(e) = olmo_core::write(&a.out, &files) {
        eprintln!(
            "error: cannot write the export under `{}`: {e}",
            a.out.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    eprintln!(
        "{} runs for {} written to {} (start with {}/launch.sh)",
        l.runs.len(),
        target.name(),
        a.out.display(),
        a.out.display()
    );
    let format = match a.engine {
        Engine::Megatron => "megatron",
        Engine::OlmoCore => "olmo-core",
    };
    eprintln!(
        "token files: `pipe prepare-data {name} --format {format} --out {}/data`",
        a.out.display()
    );
    ExitCode::SUCCESS
}
