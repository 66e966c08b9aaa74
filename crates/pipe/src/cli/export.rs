//! `pipe export FILE --engine megatron|olmo-core|torchtitan --out DIR [--profile NAME]
//! [--ramp-pieces K] [--skip STAGE[=PATH]]... [--nodes N --gpus-per-node G --tp T --pp P --ep E
//! --micro-batch M]`: the plan written as
//! an external engine's launch files. Everything the engine cannot train or say is reported,
//! located in the recipe, before anything is written; approximations are warnings with their
//! bound, and the export goes ahead.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use pipelang::diag::{self, Severity};
use pipelang_engine::parallel::Layout;
use pipelang_engine::{Options, Skip, Target, megatron, olmo_core, torchtitan};

use super::{EXIT_ERRORS, EXIT_USAGE, read_source, use_color};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Engine {
    /// Megatron-LM core_v0.16.1: a bash launch script per run.
    Megatron,
    /// OLMo-core 3.0: a JSON config per run and the driver that reads it.
    OlmoCore,
    /// torchtitan 0.3.0: a Python config module per run and the helper they import.
    Torchtitan,
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
    /// Leave a stage out (one the engine cannot train, trained elsewhere); `=PATH` gives the
    /// weights it trains, read by the stages that take them (docs/engines.md). Repeatable.
    #[arg(long, value_name = "STAGE[=PATH]")]
    skip: Vec<String>,
    /// The parallel layout the launch files are written for (Megatron, torchtitan), checked against the
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
    let (Some(p), Some(plan)) = (checked.pipeline.as_ref(), checked.plan()) else {
        eprintln!("{name}: no plan could be made");
        return ExitCode::from(EXIT_ERRORS);
    };
    let target = match a.engine {
        Engine::Megatron => Target::Megatron,
        Engine::OlmoCore => Target::OlmoCore,
        Engine::Torchtitan => Target::Torchtitan,
    };
    let mut skip = vec![];
    for s in &a.skip {
        let (stage, path) = match s.split_once('=') {
            Some((st, path)) => (st, Some(path)),
            None => (s.as_str(), None),
        };
        if plan.stage_index(stage).is_none() {
            let names: Vec<_> = plan.stages.iter().map(|s| s.name.as_str()).collect();
            eprintln!(
                "error: --skip {s}: `{name}` has no stage `{stage}` (its stages: {})",
                names.join(", ")
            );
            return ExitCode::from(EXIT_USAGE);
        }
        // Engines resolve checkpoint paths from their own working directory: make it absolute.
        let weights = path.map(|p| {
            let p = PathBuf::from(p);
            let abs = if p.is_absolute() {
                p
            } else {
                std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
            };
            abs.display().to_string()
        });
        skip.push(Skip {
            stage: stage.to_string(),
            weights,
        });
    }
    if !skip.is_empty() && a.engine == Engine::OlmoCore {
        eprintln!("error: --skip is for the engines with vision stages (megatron, torchtitan)");
        return ExitCode::from(EXIT_USAGE);
    }
    let opts = Options {
        ramp_pieces: a.ramp_pieces,
        target,
        skip,
    };
    let l = pipelang_engine::lower(p, plan, &opts);
    let mut ds: Vec<diag::Diagnostic> = l.unmappable.iter().map(|u| u.diagnostic.clone()).collect();
    ds.extend(l.notes.iter().cloned());
    let layout = Layout {
        nodes: a.nodes,
        gpus_per_node: a.gpus_per_node,
        tp: a.tp,
        pp: a.pp,
        ep: a.ep,
        micro_batch: a.micro_batch,
    };
    let files = match a.engine {
        Engine::OlmoCore => olmo_core::files(p, plan, &l, &Default::default()),
        Engine::Torchtitan => {
            ds.extend(
                torchtitan::refusals(p, plan, &l)
                    .into_iter()
                    .map(|u| u.diagnostic),
            );
            ds.extend(pipelang_engine::parallel::check(p, plan, &l, &layout));
            let (files, notes) = torchtitan::files(p, plan, &l, &layout);
            ds.extend(notes);
            files
        }
        Engine::Megatron => {
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
    match a.engine {
        Engine::Megatron | Engine::OlmoCore => {
            let format = if a.engine == Engine::Megatron {
                "megatron"
            } else {
                "olmo-core"
            };
            eprintln!(
                "token files: `pipe prepare-data {name} --format {format} --out {}/data`",
                a.out.display()
            );
        }
        Engine::Torchtitan => eprintln!(
            "data: the sources' JSON-lines files under {}/data (or PIPE_DATA_ROOT), by the \
             recipe's globs; the tokenizer under {}/tokenizer",
            a.out.display(),
            a.out.display()
        ),
    }
    ExitCode::SUCCESS
}
