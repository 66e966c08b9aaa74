//! Where each model's weights come from: the last stage before this one that trained it,
//! along `after` edges. Several candidates are an ambiguity unless the stage chooses with
//! `weights { model = stage }`; a model that starts fresh although an earlier stage trains it
//! is almost always a missing `after` edge.

use crate::check::ir::*;
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::syntax::Span;

use super::Handed;
use crate::check::graph::Ancestors;

/// What a stage receives, per model (indexed by `ModelId`).
pub(super) struct WeightsIn {
    /// For each model the stage trains or freezes: the stage its weights come from (None:
    /// freshly initialised).
    pub from: Vec<(ModelId, Option<StageId>)>,
    /// The stage whose weights the stage starts from (resolved, even if it does not use it).
    pub trained_in: IndexVec<ModelId, Option<StageId>>,
    /// Every candidate that trained the model, for stages that pass it on unused.
    pub trained_by: IndexVec<ModelId, Vec<StageId>>,
    /// Every candidate that last used the model (RoPE state comes with the weights).
    pub used_by: IndexVec<ModelId, Vec<StageId>>,
    pub used_in: IndexVec<ModelId, Option<StageId>>,
}

pub(super) fn incoming(
    p: &Pipeline,
    s: StageId,
    before: &[StageId],
    anc: &Ancestors,
    handed: &IndexVec<StageId, Option<Handed>>,
    diags: &mut Diagnostics,
) -> WeightsIn {
    let st = &p.stages[s];
    let nm = p.models.len();
    let preds: Vec<&Handed> = st
        .after
        .iter()
        .filter_map(|a| handed[a.value].as_ref())
        .collect();
    let mut w = WeightsIn {
        from: vec![],
        trained_in: IndexVec::from_elem(None, nm),
        trained_by: IndexVec::from_elem(vec![], nm),
        used_by: IndexVec::from_elem(vec![], nm),
        used_in: IndexVec::from_elem(None, nm),
    };
    for m in p.models.indices() {
        let cands = distinct(preds.iter().flat_map(|h| h.trained[m].iter().copied()));
        w.trained_by[m] = cands.clone();
        let chosen = st.weights.iter().find(|(wm, _)| wm.value == m);
        w.trained_in[m] = match (cands.as_slice(), chosen) {
            (_, Some((wm, from))) => {
                if !p.stages[from.value].trains(m) || !anc.is_ancestor(s, from.value) {
                    diags.push(
                        Diagnostic::new(
                            Code::AMBIGUOUS_WEIGHTS,
                            format!(
                                "`{}` cannot take `{}` from `{}`",
                                st.name, p.models[m].name, p.stages[from.value].name
                            ),
                        )
                        .label(from.span, "this stage does not train it before")
                        .label(wm.span, "weights chosen here")
                        .help("name a stage that runs before this one and trains the model"),
                    );
                }
                Some(from.value)
            }
            ([], None) => None,
            ([one], None) => Some(*one),
            (many, None) => {
                if st.uses(m) {
                    ambiguous(p, st, m, many, diags);
                }
                Some(many[0])
            }
        };
        w.used_by[m] = distinct(preds.iter().flat_map(|h| h.used[m].iter().copied()));
        w.used_in[m] = w.used_by[m].first().copied();
        if st.uses(m) {
            w.from.push((m, w.trained_in[m]));
            if w.trained_in[m].is_none() {
                check_fresh(p, s, m, before, diags);
            }
        }
    }
    w
}

/// What the stage hands on: per model, the stages whose weights (`trained`) and state
/// (`used`) a successor receives.
pub(super) fn outgoing(
    p: &Pipeline,
    s: StageId,
    w: &WeightsIn,
) -> (
    IndexVec<ModelId, Vec<StageId>>,
    IndexVec<ModelId, Vec<StageId>>,
) {
    let st = &p.stages[s];
    let trained = p
        .models
        .indices()
        .map(|m| {
            if st.trains(m) {
                vec![s]
            } else if st.uses(m) || st.weights.iter().any(|(x, _)| x.value == m) {
                w.trained_in[m].into_iter().collect()
            } else {
                w.trained_by[m].clone()
            }
        })
        .collect();
    let used = p
        .models
        .indices()
        .map(|m| {
            if st.uses(m) {
                vec![s]
            } else {
                w.used_by[m].clone()
            }
        })
        .collect();
    (trained, used)
}

fn ambiguous(p: &Pipeline, st: &Stage, m: ModelId, many: &[StageId], diags: &mut Diagnostics) {
    let mut d = Diagnostic::new(
        Code::AMBIGUOUS_WEIGHTS,
        format!(
            "`{}` gets `{}` from {} predecessors",
            st.name,
            p.models[m].name,
            many.len()
        ),
    )
    .label(use_span(st, m), "which weights?");
    for &c in many {
        d = d.label(
            p.stages[c].name_span,
            format!("`{}` trains `{}`", p.stages[c].name, p.models[m].name),
        );
    }
    diags.push(d.help(format!(
        "choose one: `weights {{ {} = {} }}`",
        p.models[m].name, p.stages[many[0]].name
    )));
}

pub(super) fn distinct(it: impl Iterator<Item = StageId>) -> Vec<StageId> {
    let mut v: Vec<StageId> = vec![];
    for x in it {
        if !v.contains(&x) {
            v.push(x);
        }
    }
    v
}

fn use_span(st: &Stage, m: ModelId) -> Span {
    st.train
        .iter()
        .chain(&st.freeze)
        .find(|x| x.value == m)
        .map_or(st.name_span, |x| x.span)
}

/// A model trained from scratch although an earlier stage trains it: almost always a missing
/// `after` edge.
fn check_fresh(p: &Pipeline, s: StageId, m: ModelId, before: &[StageId], diags: &mut Diagnostics) {
    let st = &p.stages[s];
    // A model with `init` starts from its file: neither random nor a missing edge.
    if p.models[m].init.is_some() {
        return;
    }
    if let Some(f) = st.freeze.iter().find(|f| f.value == m && !st.trains(m)) {
        diags.push(
            Diagnostic::new(
                Code::UNTRAINED_FROZEN,
                format!(
                    "`{}` is frozen in `{}` but no stage before it trains `{}`",
                    p.models[m].name, st.name, p.models[m].name
                ),
            )
            .label(f.span, "frozen at its random initialisation")
            .label(
                st.header,
                if st.after.is_empty() {
                    "no stage runs before this one"
                } else {
                    "none of the stages it runs after trains it"
                },
            )
            .help(format!(
                "add the stage that trains `{}` to `after`, train it here, or start it from a \
                 checkpoint with `init = \"PATH\"` in the model",
                p.models[m].name
            )),
        );
        return;
    }
    if let Some(&t) = before.iter().find(|&&t| p.stages[t].trains(m))
        && !st.unknown_after
    {
        diags.push(
            Diagnostic::new(
                Code::FROM_SCRATCH,
                format!(
                    "`{}` starts from scratch in `{}` although `{}` trains it",
                    p.models[m].name, st.name, p.stages[t].name
                ),
            )
            .label(use_span(st, m), "random initialisation here")
            .label(
                p.stages[t].name_span,
                format!("`{}` trains `{}`", p.stages[t].name, p.models[m].name),
            )
            .help(format!(
                "add `{}` (or a stage after it) to `after` to continue its weights",
                p.stages[t].name
            ))
            .fix(crate::check::fixes::add_after(st, &p.stages[t].name)),
        );
    }
}
