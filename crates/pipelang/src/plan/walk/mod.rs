//! The walk: stages in execution order, each receiving what its predecessors hand over
//! (`Handed`) and checking it against what it declares. Split by what is carried: weights
//! (`weights`), sequence length and RoPE bases (`transitions`), steps per phase (`phases`),
//! and LR schedule runs (`schedules`). The result is what `resolve` turns into the `Plan`.

mod branch;
mod phases;
mod schedules;
mod transitions;
mod weights;

use crate::check::graph::Ancestors;
use crate::check::ir::*;
use crate::diag::{Code, Diagnostic, Diagnostics};

pub(crate) use branch::BranchPoint;
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
    pub average: Option<super::StageAverage>,
    /// Where it branches from its parent (`after PARENT @ POSITION`).
    pub branch: Option<BranchPoint>,
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
        if let Some(inputs) = &st.average {
            // A soup hands over what its first input does (the checker holds the inputs to
            // the same models), with its own weights.
            let first = inputs.first().map(|i| i.0.value);
            let Some(mut h) = first.and_then(|f| handed[f].clone()) else {
                // Its inputs did not resolve (reported): nothing flows from it, and it has no
                // run (an index past every run, which the curves never read).
                stages[s] = Some(StageWalk {
                    phases: vec![],
                    weights_from: vec![],
                    run: RunId(usize::MAX),
                    offset: 0.0,
                    tokens: 0.0,
                    average: None,
                    branch: None,
                });
                continue;
            };
            let first = first.expect("handed comes from the first input");
            for m in p.models.indices() {
                if st.trains(m) {
                    h.trained[m] = vec![s];
                }
                if st.uses(m) {
                    h.used[m] = vec![s];
                }
            }
            let from = stages[first]
                .as_ref()
                .expect("inputs run before their soup");
            stages[s] = Some(StageWalk {
                phases: vec![],
                weights_from: vec![],
                run: h.run,
                offset: from.offset + from.tokens,
                tokens: 0.0,
                average: None,
                branch: None,
            });
            handed[s] = Some(h);
            continue;
        }
        // A branch sees its parent as it is at the branch point, not at its end.
        let bp = st.branch.and_then(|b| {
            let parent = stages[b.parent.value].as_ref()?;
            handed[b.parent.value].as_ref()?;
            branch::resolve(p, st, &b, parent, diags).map(|bp| (b, bp))
        });
        let at_branch;
        let handed_here = match bp {
            Some((b, bp)) => {
                let mut view = handed.clone();
                let parent = stages[bp.parent].as_ref().expect("resolved above");
                let h = handed[bp.parent].as_ref().expect("resolved above");
                view[bp.parent] = Some(branch::handed_at(p, h, parent, bp, b.at.span));
                at_branch = view;
                &at_branch
            }
            None => &handed,
        };
        let w = weights::incoming(p, s, &order[..k], &anc, handed_here, diags);
        let mut seq = transitions::seq_len(p, st, handed_here, diags);
        let mut rope = transitions::rope(p, st, &w, handed_here, diags);
        let mut scaling = transitions::scaling(p, st, &w, handed_here, diags);
        let phases = phases::phases(p, st, &mut seq, &mut rope, &mut scaling, diags);
        // A budget in steps trains what its steps hold.
        let tokens = match st.budget.value {
            Budget::Tokens(t) => t,
            Budget::Steps(_) => phases.iter().map(|ph| ph.tokens).sum(),
        };
        let average = super::average::resolve(st, &phases, tokens, diags);
        let (run, offset) = runs.join(p, s, tokens, &anc, handed_here, diags);
        if let Some((b, bp)) = bp
            && let StageLr::Resume { span, .. } = &st.lr
            && handed[bp.parent].as_ref().is_some_and(|h| h.run == run)
        {
            diags.push(
                Diagnostic::new(
                    Code::BRANCH_RESUME,
                    format!(
                        "`{}` branches from `{}` and continues its schedule `{}`",
                        st.name, p.stages[bp.parent].name, runs.list[run.0].name
                    ),
                )
                .label(*span, "continues the schedule")
                .label(b.at.span, format!("`{}` goes on past this point on the same schedule", p.stages[bp.parent].name))
                .help("a schedule is one line of stages, and the parent already runs the rest of it: start a schedule here (`lr = linear(to = 0)` decays from the LR at the branch point, `rewarmup(to = ..., over = ...)` climbs from it)"),
            );
        }
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
            average,
            branch: bp.map(|(_, bp)| bp),
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
