//! The parallel layout an export is written for (`pipe export --nodes --gpus-per-node --tp
//! --pp --ep --micro-batch`), checked against the recipe before anything is written: every
//! model's heads divide by the tensor size, its layers by the pipeline size, its experts by
//! the expert size, and every run's global batch by micro-batch x data-parallel size. Each
//! problem is reported at the value in the recipe that does not divide (`P0904`).

use pipelang::check::ir::{ModelKind, Pipeline};
use pipelang::diag::{Code, Diagnostic};
use pipelang::plan::Plan;
use pipelang::syntax::Span;

use crate::runs::Lowering;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub nodes: u64,
    pub gpus_per_node: u64,
    /// Tensor, pipeline and expert parallel sizes.
    pub tp: u64,
    pub pp: u64,
    pub ep: u64,
    /// Sequences per GPU per forward pass.
    pub micro_batch: u64,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            nodes: 1,
            gpus_per_node: 1,
            tp: 1,
            pp: 1,
            ep: 1,
            micro_batch: 1,
        }
    }
}

impl Layout {
    pub fn world(&self) -> u64 {
        self.nodes * self.gpus_per_node
    }
    /// Data-parallel size: the GPUs left once tensor and pipeline parallelism took theirs.
    pub fn dp(&self) -> u64 {
        self.world() / (self.tp * self.pp).max(1)
    }
}

fn problem(span: Span, what: &str, msg: String, help: String) -> Diagnostic {
    Diagnostic::new(Code::ENGINE_PARALLEL_LAYOUT, msg)
        .label(span, what)
        .help(help)
}

/// Every way the layout does not divide the recipe (empty: it fits).
pub fn check(p: &Pipeline, plan: &Plan, l: &Lowering, par: &Layout) -> Vec<Diagnostic> {
    let mut out = vec![];
    let whole = |s: Span| s;
    if [
        par.nodes,
        par.gpus_per_node,
        par.tp,
        par.pp,
        par.ep,
        par.micro_batch,
    ]
    .contains(&0)
    {
        out.push(problem(
            whole(p.name_span),
            "this pipeline",
            "every parallel size and the micro-batch must be at least 1".into(),
            "pass --nodes, --gpus-per-node, --tp, --pp, --ep and --micro-batch of 1 or more".into(),
        ));
        return out;
    }
    if par.world() % (par.tp * par.pp) != 0 {
        out.push(problem(
            p.name_span,
            "this pipeline",
            format!(
                "{} GPUs do not split into tensor x pipeline groups of {} x {}",
                par.world(),
                par.tp,
                par.pp
            ),
            "make --nodes x --gpus-per-node a multiple of --tp x --pp".into(),
        ));
        return out;
    }
    let dp = par.dp();
    let mut seen = std::collections::BTreeSet::new();
    for r in &l.runs {
        let Some(mid) = p.model_id(&r.model.name) else {
            continue;
        };
        if seen.insert(mid) {
            let ModelKind::Decoder(d) = &p.models[mid].kind else {
                continue;
            };
            let name = &p.models[mid].name;
            // Each tensor rank holds whole key-value heads too (grouped-query attention).
            if let Some(kv) = d.kv_heads.filter(|k| k.value % par.tp != 0) {
                out.push(problem(
                    kv.span,
                    "these key-value heads",
                    format!(
                        "`{name}` has {} key-value heads, which tensor parallelism of {} cannot \
                         split",
                        kv.value, par.tp
                    ),
                    format!("use a --tp that divides {}", kv.value),
                ));
            }
            if d.heads.value % par.tp != 0 {
                out.push(problem(
                    d.heads.span,
                    "these heads",
                    format!(
                        "`{name}` has {} attention heads (and as many key-value heads), which \
                         tensor parallelism of {} cannot split",
                        d.heads.value, par.tp
                    ),
                    format!("use a --tp that divides {}", d.heads.value),
                ));
            }
            // Megatron pads the vocabulary to a multiple of the tensor size: another model.
            if d.vocab.value % par.tp != 0 {
                out.push(problem(
                    d.vocab.span,
                    "this vocabulary",
                    format!(
                        "`{name}`'s vocabulary of {} does not divide by tensor parallelism of {}: \
                         Megatron-LM would pad it",
                        d.vocab.value, par.tp
                    ),
                    format!("use a --tp that divides {}", d.vocab.value),
                ));
            }
            if d.layers.value % par.pp != 0 {
                out.push(problem(
                    d.layers.span,
                    "these layers",
                    format!(
                        "`{name}` has {} layers, which pipeline parallelism of {} cannot split \
                         evenly",
                        d.layers.value, par.pp
                    ),
                    format!("use a --pp that divides {}", d.layers.value),
                ));
            }
            match &d.experts {
                Some(e) if e.value % par.ep != 0 => out.push(problem(
                    e.span,
                    "these experts",
                    format!(
                        "`{name}` has {} experts, which expert parallelism of {} cannot split",
                        e.value, par.ep
                    ),
                    format!("use an --ep that divides {}", e.value),
                )),
                Some(_) if dp % par.ep != 0 => out.push(problem(
                    d.experts.as_ref().unwrap().span,
                    "these experts",
                    format!(
                        "expert parallelism of {} does not divide the data-parallel size {dp}",
                        par.ep
                    ),
                    "make --ep divide the GPUs left after --tp and --pp".into(),
                )),
                None if par.ep != 1 => out.push(problem(
                    d.layers.span,
                    "this decoder",
                    format!(
                        "`{name}` has no experts: --ep {} has nothing to split",
                        par.ep
                    ),
                    "leave --ep at 1".into(),
                )),
                _ => {}
            }
        }
    }
    let per_step = par.micro_batch * dp;
    for r in &l.runs {
        if r.batch % per_step != 0 {
            let st = &p.stages[plan.stages[r.stage_index].id];
            let span = r
                .phase
                .as_ref()
                .and_then(|ph| st.phases.iter().find(|x| &x.name == ph))
                .and_then(|ph| ph.batch.as_ref().map(|b| b.span))
                .or(st.batch.as_ref().map(|b| b.span))
                .unwrap_or(p.batch.span);
            out.push(problem(
                span,
                "this batch",
                format!(
                    "run `{}` has a global batch of {} sequences, which is not a multiple of \
                     micro-batch {} x data-parallel size {dp}",
                    r.name, r.batch, par.micro_batch
                ),
                format!(
                    "make the batch a multiple of {per_step}, or lower --micro-batch or the \
                     data-parallel size"
                ),
            ));
        }
    }
    out
}
