//! The walk: stages in execution order, each receiving what its predecessors hand over
//! (`Handed`) and checking it against what it declares. Split by what is carried: weights
//! (`weights`), sequence length and RoPE bases (`transitions`), steps per phase (`phases`),
//! and LR schedule runs (`schedules`). The result is what `resolve` turns into the `Plan`.

mod phases;
mod schedules;
mod transitions;
mod weights;

use crate::check::graph::Ancestors;
use crate::check::ir::*;
use crate::diag::Diagnostics;

pub(crate) use phases::PhaseSteps;
pub(crate) use schedules::{RunId, Runs, ScheduleRun};
use transitions::Held;

/// What a stage hands over along its out-edges, per model where it is per model.
#[derive(Debug, Clone)]
pub(super) struct Handed {
    /// The stages whose weights a successor receives (several while ambiguous).
    trained: IndexVec<ModelId, Vec<StageId>>,
    /// The stages that last used the model: its RoPE state comes from there.
    used: IndexVec<ModelId, Vec<StageId>>,
    rope: IndexVec<ModelId, Option<Held<f64>>>,
    scaling: IndexVec<ModelId, Option<Held<RopeScaling>>>,
    seq_len: Held<u64>,
    run: RunId,
}

/// One stage as the walk resolved it.
#[derive(Debug, Clone)]
pub(crate) struct StageWalk {
    pub phases: Vec<PhaseSteps>,
    /// For each model the stage trains or freezes: the stage its weights come from (None:
    /// freshly initialised).
    pub weights_from: Vec<(ModelId, Option<StageId>)>,
    pub run: RunId,
    /// Token position in the schedule run's span where this stage starts.
    pub offset: f64,
    /// The stage's tokens: its budget, or what its steps train when the budget is in steps.
    pub tokens: f64,
}

/// The whole walk: stages indexed by `StageId`, runs by `RunId`.
#[derive(Debug, Clone)]
pub(crate) struct Walk {
    pub order: Vec<StageId>,
    pub stages: IndexVec<StageId, StageWalk>,
    pub runs: Vec<ScheduleRun>,
}

pub(crate) fn walk(p: &Pipeline, order: &[StageId], diags: &mut Diagnostics) -> Walk {
    let anc = Ancestors::new(p, order);
    let mut handed: IndexVec<StageId, Option<Handed>> = IndexVec::from_elem(None, p.stages.len());
    let mut stages: IndexVec<StageId, Option<StageWalk>> =
        IndexVec::from_elem(None, p.stages.len());
    let mut runs = Runs::new(p);
    for (k, &s) in order.iter().enumerate() {
        let st = &p.stages[s];
        let w = weights::incoming(p, s, &order[..k], &anc, &handed, diags);
        let mut seq = transitions::seq_len(p, st, &handed, diags);
        let mut rope = transitions::rope(p, st, &w, &handed, diags);
        let mut scaling = transitions::scaling(p, st, &w, &handed, diags);
        let phases = phases::phases(p, st, &mut seq, &mut rope, &mut scaling, diags);
        // A budget in steps trains what its steps hold.
        let tokens = match st.budget.value {
            Budget::Tokens(t) => t,
            Budget::Steps(_) => phases.iter().map(|ph| ph.tokens).sum(),
        };
        let (run, offset) = runs.join(p, s, tokens, &anc, &handed, diags);
        let (trained, used) = weights::outgoing(p, s, &w);
        let mut rope_out = IndexVec::from_elem(None, p.models.len());
        for (m, h) in &rope {
            rope_out[*m] = Some(*h);
        }
        let mut scaling_out = IndexVec::from_elem(None, p.models.len());
        for (m, h) in &scaling {
            scaling_out[*m] = Some(*h);
        }
        handed[s] = Some(Handed {
            trained,
            used,
            rope: rope_out,
            scaling: scaling_out,
            seq_len: seq,
            run,
        });
        stages[s] = Some(StageWalk {
            phases,
            weights_from: w.from,
            run,
            offset,
            tokens,
        });
    }
    let stages = stages.map(|s| s.expect("the execution order covers every stage"));
    runs.build_curves(p, &stages, diags);
    Walk {
        order: order.to_vec(),
        stages,
        runs: runs.list,
    }
}
