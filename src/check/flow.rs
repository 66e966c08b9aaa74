//! What flows along `after` edges, stage by stage in execution order: model weights, RoPE
//! bases, sequence length and LR schedule position. Every hand-over is checked against what
//! the stage declares, and the result (`Flow`) is what the planner turns into steps.

use serde::Serialize;

use crate::diag::{Code, Diagnostic, Diagnostics, Fix};
use crate::plan::lr::{self, Curve};
use crate::syntax::Span;

use super::graph::Ancestors;
use super::ir::*;
use super::units;

#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    pub order: Vec<StageId>,
    pub stages: Vec<StageFlow>,
    pub runs: Vec<ScheduleRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageFlow {
    pub phases: Vec<PhaseFlow>,
    /// For each model the stage trains or freezes: the stage its weights come from (None:
    /// freshly initialised).
    pub weights_from: Vec<(ModelId, Option<StageId>)>,
    pub run: usize,
    /// Token position in the schedule run's span where this stage starts.
    pub offset: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseFlow {
    pub name: Option<String>,
    /// Token position inside the stage where the phase starts (declared budgets).
    pub start: f64,
    pub tokens: f64,
    pub batch: u64,
    pub seq_len: u64,
    pub tokens_per_step: u64,
    pub steps: u64,
    /// RoPE base of each decoder in the stage.
    pub rope: Vec<(ModelId, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScheduleRun {
    pub name: String,
    pub schedule: Option<ScheduleId>,
    pub segments: Vec<Segment>,
    pub stages: Vec<StageId>,
    pub span: f64,
    pub handover: Option<f64>,
    pub curve: Curve,
}

/// A value flowing along edges, with the place that set it (for related labels).
#[derive(Debug, Clone, Copy)]
struct Held<T> {
    value: T,
    from: Span,
}

pub fn flow(p: &Pipeline, order: &[StageId], diags: &mut Diagnostics) -> Flow {
    let n = p.stages.len();
    let nm = p.models.len();
    let anc = Ancestors::new(p, order);
    // Last stage that trained (weights) / used (RoPE state) each model, as seen after a stage.
    // Candidate stages (several while unresolved) that last trained / used each model, as seen
    // after a stage: an ambiguity is reported where the model is used, however far down.
    let mut trained_out: Vec<Vec<Vec<StageId>>> = vec![vec![]; n];
    let mut used_out: Vec<Vec<Vec<StageId>>> = vec![vec![]; n];
    let mut rope_out: Vec<Vec<Option<Held<f64>>>> = vec![vec![]; n];
    let mut seq_out: Vec<Held<u64>> = vec![
        Held {
            value: 0,
            from: Span::default()
        };
        n
    ];
    let mut stages: Vec<Option<StageFlow>> = vec![None; n];
    let mut runs: Vec<ScheduleRun> = vec![];
    let mut run_of: Vec<usize> = vec![usize::MAX; n];
    let mut started: Vec<Option<usize>> = vec![None; p.schedules.len()];
    let mut position = vec![0.0f64; n];

    for (k, &s) in order.iter().enumerate() {
        let st = &p.stages[s];
        let preds: Vec<StageId> = st.after.iter().map(|a| a.value).collect();

        // ---- weights and RoPE state
        let mut weights_from = vec![];
        let mut t_in = vec![None; nm];
        let mut u_in = vec![None; nm];
        let mut t_pass: Vec<Vec<StageId>> = vec![vec![]; nm];
        let mut u_cands: Vec<Vec<StageId>> = vec![vec![]; nm];
        for m in 0..nm {
            let cands = distinct(
                preds
                    .iter()
                    .flat_map(|&q| trained_out[q][m].iter().copied()),
            );
            t_pass[m] = cands.clone();
            let chosen = st.weights.iter().find(|(wm, _)| wm.value == m);
            t_in[m] = match (cands.as_slice(), chosen) {
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
                    Some(many[0])
                }
            };
            u_cands[m] = distinct(preds.iter().flat_map(|&q| used_out[q][m].iter().copied()));
            u_in[m] = u_cands[m].first().copied();
            if st.uses(m) {
                weights_from.push((m, t_in[m]));
                if t_in[m].is_none() {
                    check_fresh(p, s, m, &order[..k], diags);
                }
            }
        }

        // ---- sequence length
        let incoming: Vec<(StageId, Held<u64>)> = preds.iter().map(|&q| (q, seq_out[q])).collect();
        let agreed = agree(&incoming);
        let mut seq = match (&incoming[..], agreed) {
            ([], _) => Held {
                value: p.seq_len.value,
                from: p.seq_len.span,
            },
            (_, Some(v)) => v,
            (_, None) => {
                let sets_plain = st.seq_len.is_some_and(|t| t.from.is_none());
                if !sets_plain {
                    disagree(p, st, "seq_len", &incoming, units::length, diags);
                }
                incoming[0].1
            }
        };
        if let Some(t) = st.seq_len {
            if agreed.is_some() || incoming.is_empty() {
                check_from(t.from, seq, "seq_len", units::length, diags);
            }
            seq = Held {
                value: t.to.value,
                from: t.to.span,
            };
        }

        // ---- RoPE bases of the stage's decoders
        let decoders: Vec<ModelId> = (0..nm)
            .filter(|&m| st.uses(m) && matches!(p.models[m].kind, ModelKind::Decoder(_)))
            .collect();
        let mut rope: Vec<(ModelId, Held<f64>)> = decoders
            .iter()
            .map(|&m| {
                let held = u_in[m]
                    .and_then(|u| rope_out[u].get(m).copied().flatten())
                    .unwrap_or_else(|| match &p.models[m].kind {
                        ModelKind::Decoder(d) => Held {
                            value: d.rope_base.value,
                            from: d.rope_base.span,
                        },
                        _ => unreachable!(),
                    });
                (m, held)
            })
            .collect();
        let sets_rope_plain = st.rope_base.is_some_and(|t| t.from.is_none());
        for (m, _) in &rope {
            let incoming: Vec<(StageId, Held<f64>)> = u_cands[*m]
                .iter()
                .filter_map(|&u| rope_out[u].get(*m).copied().flatten().map(|h| (u, h)))
                .collect();
            if incoming.len() > 1 && agree(&incoming).is_none() && !sets_rope_plain {
                disagree(p, st, "rope_base", &incoming, units::trim, diags);
            }
        }
        if let Some(t) = st.rope_base {
            apply_rope(&mut rope, t, diags);
        }

        // ---- phases
        let stage_batch = st.batch.map_or(p.batch.value, |b| b.value);
        let mut phases = vec![];
        let mut start = 0.0;
        let implicit = [None];
        let list: Vec<Option<&Phase>> = if st.phases.is_empty() {
            implicit.to_vec()
        } else {
            st.phases.iter().map(Some).collect()
        };
        for ph in list {
            let (tokens, batch, budget_span) = match ph {
                None => (st.budget.value, stage_batch, st.budget.span),
                Some(ph) => {
                    if let Some(t) = ph.seq_len {
                        check_from(t.from, seq, "seq_len", units::length, diags);
                        seq = Held {
                            value: t.to.value,
                            from: t.to.span,
                        };
                    }
                    if let Some(t) = ph.rope_base {
                        apply_rope(&mut rope, t, diags);
                    }
                    let tokens = match ph.budget.value {
                        PhaseBudget::Share(x) => x * st.budget.value,
                        PhaseBudget::Tokens(t) => t,
                    };
                    (
                        tokens,
                        ph.batch.map_or(stage_batch, |b| b.value),
                        ph.budget.span,
                    )
                }
            };
            let tps = batch * seq.value;
            let steps = if tokens.is_finite() && tokens > 0.0 {
                (tokens / tps as f64).ceil() as u64
            } else {
                0
            };
            let trained = steps as f64 * tps as f64;
            if tokens.is_finite() && tokens > 0.0 && (trained - tokens).abs() / tokens > 1e-3 {
                diags.push(
                    Diagnostic::new(
                        Code::ROUNDING,
                        format!(
                            "{} whole steps of {} tokens train {} tokens, not {}",
                            units::grouped(steps),
                            units::grouped(tps),
                            units::tokens(trained),
                            units::tokens(tokens)
                        ),
                    )
                    .label(budget_span, format!("{:+.2}% after rounding to whole steps", (trained - tokens) / tokens * 100.0))
                    .help(format!("a step is batch x seq_len = {batch} x {} tokens: make the budget a multiple of it, or much larger", seq.value)),
                );
            }
            phases.push(PhaseFlow {
                name: ph.map(|x| x.name.clone()),
                start,
                tokens,
                batch,
                seq_len: seq.value,
                tokens_per_step: tps,
                steps,
                rope: rope.iter().map(|(m, h)| (*m, h.value)).collect(),
            });
            start += tokens;
        }

        // ---- LR schedule
        let run = assign_run(p, s, &preds, &anc, &mut runs, &run_of, &mut started, diags);
        let offset = runs[run].span;
        runs[run].stages.push(s);
        if st.budget.value.is_finite() {
            runs[run].span += st.budget.value;
        }
        run_of[s] = run;
        position[s] = offset;

        // ---- what this stage hands over
        trained_out[s] = (0..nm)
            .map(|m| {
                if st.trains(m) {
                    vec![s]
                } else if st.uses(m) || st.weights.iter().any(|(w, _)| w.value == m) {
                    t_in[m].into_iter().collect()
                } else {
                    t_pass[m].clone()
                }
            })
            .collect();
        used_out[s] = (0..nm)
            .map(|m| {
                if st.uses(m) {
                    vec![s]
                } else {
                    u_cands[m].clone()
                }
            })
            .collect();
        let mut r = vec![None; nm];
        for (m, h) in &rope {
            r[*m] = Some(*h);
        }
        rope_out[s] = r;
        seq_out[s] = seq;
        stages[s] = Some(StageFlow {
            phases,
            weights_from,
            run,
            offset,
        });
    }

    let stages: Vec<StageFlow> = stages.into_iter().map(|s| s.unwrap()).collect();
    build_curves(p, &stages, &mut runs, diags);
    Flow {
        order: order.to_vec(),
        stages,
        runs,
    }
}

fn distinct(it: impl Iterator<Item = StageId>) -> Vec<StageId> {
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

fn agree<T: PartialEq + Copy>(incoming: &[(StageId, Held<T>)]) -> Option<Held<T>> {
    let first = incoming.first()?.1;
    incoming
        .iter()
        .all(|(_, h)| h.value == first.value)
        .then_some(first)
}

fn disagree<T: Copy>(
    p: &Pipeline,
    st: &Stage,
    what: &str,
    incoming: &[(StageId, Held<T>)],
    show: impl Fn(T) -> String,
    diags: &mut Diagnostics,
) {
    let mut d = Diagnostic::new(
        Code::DISAGREE,
        format!(
            "the predecessors of `{}` hand over different {what}s",
            st.name
        ),
    )
    .label(
        st.name_span,
        format!("which {what} does this stage start with?"),
    );
    for (q, h) in incoming {
        d = d.label(
            h.from,
            format!("`{}` ends with {what} {}", p.stages[*q].name, show(h.value)),
        );
    }
    diags.push(d.help(format!(
        "set `{what} = VALUE` in this stage, or make the predecessors agree"
    )));
}

fn check_from<T: PartialEq + Copy>(
    from: Option<Sp<T>>,
    held: Held<T>,
    what: &str,
    show: impl Fn(T) -> String,
    diags: &mut Diagnostics,
) {
    let Some(from) = from else { return };
    if from.value != held.value {
        diags.push(
            Diagnostic::new(
                Code::TRANSITION,
                format!(
                    "this transition starts from {what} {}, but the stage inherits {}",
                    show(from.value),
                    show(held.value)
                ),
            )
            .label(from.span, format!("states {}", show(from.value)))
            .label(held.from, format!("{} is set here", show(held.value)))
            .help(format!(
                "the left side of `->` is the value handed over: write `{} -> ...`",
                show(held.value)
            ))
            .fix(Fix::replace(
                format!("start from the inherited {}", show(held.value)),
                from.span,
                show(held.value),
            )),
        );
    }
}

fn apply_rope(rope: &mut [(ModelId, Held<f64>)], t: Transition<f64>, diags: &mut Diagnostics) {
    for (_, h) in rope.iter_mut() {
        check_from(t.from, *h, "rope_base", units::trim, diags);
        *h = Held {
            value: t.to.value,
            from: t.to.span,
        };
    }
}

/// A model trained from scratch although an earlier stage trains it: almost always a missing
/// `after` edge.
fn check_fresh(p: &Pipeline, s: StageId, m: ModelId, before: &[StageId], diags: &mut Diagnostics) {
    let st = &p.stages[s];
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
                "add the stage that trains `{}` to `after`, or train it here",
                p.models[m].name
            )),
        );
        return;
    }
    if let Some(&t) = before.iter().find(|&&t| p.stages[t].trains(m)) {
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
            .fix(super::fixes::add_after(st, &p.stages[t].name)),
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn assign_run(
    p: &Pipeline,
    s: StageId,
    preds: &[StageId],
    anc: &Ancestors,
    runs: &mut Vec<ScheduleRun>,
    run_of: &[usize],
    started: &mut [Option<usize>],
    diags: &mut Diagnostics,
) -> usize {
    let st = &p.stages[s];
    let r = assign(p, s, preds, anc, runs, run_of, started, diags);
    // A schedule is one line of stages: two stages that both continue it must run one after
    // the other, or the second would start where the first ended without having run after it.
    if let (Some(&last), StageLr::Resume { span, .. }) = (runs[r].stages.last(), &st.lr)
        && !anc.is_ancestor(s, last)
    {
        let span = *span;
        diags.push(
            Diagnostic::new(
                Code::RESUME_AMBIGUOUS,
                format!(
                    "`{}` and `{}` both continue schedule `{}`",
                    p.stages[last].name, st.name, runs[r].name
                ),
            )
            .label(
                span,
                format!("`{}` does not run after `{}`", st.name, p.stages[last].name),
            )
            .label(p.stages[last].lr_span, "continued here first")
            .help(format!(
                "add `after {}`, or start a schedule of its own here",
                p.stages[last].name
            ))
            // Not where `last` runs after this stage: the edge would close a cycle.
            .fix(
                (!anc.is_ancestor(last, s))
                    .then(|| super::fixes::add_after(st, &p.stages[last].name)),
            ),
        );
    }
    r
}

#[allow(clippy::too_many_arguments)]
fn assign(
    p: &Pipeline,
    s: StageId,
    preds: &[StageId],
    anc: &Ancestors,
    runs: &mut Vec<ScheduleRun>,
    run_of: &[usize],
    started: &mut [Option<usize>],
    diags: &mut Diagnostics,
) -> usize {
    let st = &p.stages[s];
    let fresh = |runs: &mut Vec<ScheduleRun>,
                 name: String,
                 schedule: Option<ScheduleId>,
                 segments: Vec<Segment>| {
        runs.push(ScheduleRun {
            name,
            schedule,
            segments,
            stages: vec![],
            span: 0.0,
            handover: None,
            curve: Curve::default(),
        });
        runs.len() - 1
    };
    match &st.lr {
        StageLr::Inline(segs) => fresh(runs, st.name.clone(), None, segs.clone()),
        StageLr::Start(id) => {
            let sched = &p.schedules[id.value];
            if let Some(r) = started[id.value] {
                let first = runs[r].stages[0];
                diags.push(
                    Diagnostic::new(
                        Code::SCHEDULE_RESTART,
                        format!(
                            "schedule `{}` is started again in `{}`",
                            sched.name, st.name
                        ),
                    )
                    .label(id.span, "starts it again from the beginning")
                    .label(
                        p.stages[first].lr_span,
                        format!("`{}` already starts it", p.stages[first].name),
                    )
                    .help(format!(
                        "continue it with `lr = resume({})`, or declare a second schedule",
                        sched.name
                    )),
                );
            }
            let r = fresh(
                runs,
                sched.name.clone(),
                Some(id.value),
                sched.segments.clone(),
            );
            started[id.value] = Some(r);
            r
        }
        StageLr::Resume { target: None, span } => {
            let cands = distinct(
                preds
                    .iter()
                    .map(|&q| run_of[q])
                    .filter(|&r| r != usize::MAX),
            );
            match cands.as_slice() {
                [one] => *one,
                [] => {
                    diags.push(
                        Diagnostic::new(Code::RESUME_NONE, format!("`{}` resumes a schedule but has no predecessor", st.name))
                            .label(*span, "nothing to resume")
                            .help("start a schedule here (`lr = cosine(...)` or a named schedule), or add `after STAGE`"),
                    );
                    fresh(runs, st.name.clone(), None, vec![])
                }
                many => {
                    let mut d = Diagnostic::new(
                        Code::RESUME_AMBIGUOUS,
                        format!(
                            "`resume` in `{}` could continue {} schedules",
                            st.name,
                            many.len()
                        ),
                    )
                    .label(*span, "which one?");
                    for a in &st.after {
                        d = d.label(a.span, format!("runs `{}`", runs[run_of[a.value]].name));
                    }
                    diags.push(d.help(format!("name it: `lr = resume({})`", runs[many[0]].name)));
                    many[0]
                }
            }
        }
        StageLr::Resume {
            target: Some(t),
            span,
        } => {
            let (run, owner) = match t.value {
                ResumeTarget::Schedule(id) => (started[id], p.schedules[id].name.as_str()),
                ResumeTarget::Stage(q) => (
                    Some(run_of[q]).filter(|&r| r != usize::MAX),
                    p.stages[q].name.as_str(),
                ),
            };
            let reachable = run.filter(|&r| runs[r].stages.iter().any(|&q| anc.is_ancestor(s, q)));
            match reachable {
                Some(r) => r,
                None => {
                    let why = if run.is_none() {
                        format!("no stage before `{}` runs `{owner}`", st.name)
                    } else {
                        format!("`{owner}` does not run before `{}`", st.name)
                    };
                    diags.push(
                        Diagnostic::new(
                            Code::RESUME_NONE,
                            format!("`{}` cannot resume `{owner}`: {why}", st.name),
                        )
                        .label(t.span, "nothing to continue")
                        .label(*span, "resumed here")
                        .help(format!(
                            "start `{owner}` in an earlier stage and list that stage in `after`"
                        )),
                    );
                    fresh(runs, st.name.clone(), None, vec![])
                }
            }
        }
    }
}

fn build_curves(
    p: &Pipeline,
    stages: &[StageFlow],
    runs: &mut [ScheduleRun],
    diags: &mut Diagnostics,
) {
    for r in 0..runs.len() {
        if runs[r].segments.is_empty() || runs[r].stages.is_empty() {
            continue;
        }
        let first = runs[r].stages[0];
        let st = &p.stages[first];
        // The hand-over LR comes from the predecessor that trains what this stage trains.
        let pred = st
            .after
            .iter()
            .map(|a| a.value)
            .find(|&q| st.train.iter().any(|m| p.stages[q].trains(m.value)))
            .or_else(|| st.after.first().map(|a| a.value));
        let handover = pred.and_then(|q| {
            let qr = stages[q].run;
            (qr < r && !runs[qr].curve.pieces.is_empty()).then(|| {
                runs[qr]
                    .curve
                    .at(stages[q].offset + p.stages[q].budget.value)
            })
        });
        let tps = stages[first].phases[0].tokens_per_step as f64;
        let (curve, problems) = lr::build(&runs[r].segments, runs[r].span, tps, handover);
        for pr in problems {
            diags.push(
                Diagnostic::new(
                    Code::TOO_LONG,
                    format!("`{}` of {} tokens does not fit in {} tokens", pr.what, units::tokens(pr.tokens), units::tokens(pr.room)),
                )
                .label(pr.span, format!("{} tokens", units::tokens(pr.tokens)))
                .label(st.lr_span, format!("schedule `{}` spans {} tokens", runs[r].name, units::tokens(runs[r].span)))
                .help(format!("the span is the sum of the budgets of the stages that run the schedule: make `{}` shorter", pr.what)),
            );
        }
        if let Some(SegmentKind::Rewarmup { to, .. }) = runs[r].segments.first().map(|s| &s.kind) {
            match (handover, pred) {
                (Some(h), Some(q)) if to.value <= h => diags.push(
                    Diagnostic::new(
                        Code::NOT_REWARMUP,
                        format!("`rewarmup` to {} is not above the LR at the hand-over ({})", units::lr(to.value), units::lr(h)),
                    )
                    .label(to.span, format!("{} is not above {}", units::lr(to.value), units::lr(h)))
                    .label(p.stages[q].name_span, format!("`{}` ends at LR {}", p.stages[q].name, units::lr(h)))
                    .help(format!("a re-warm-up climbs above the hand-over LR {}: raise `to`, or use `linear` to go down", units::lr(h))),
                ),
                (None, None) => diags.push(
                    Diagnostic::new(Code::NOT_REWARMUP, format!("`rewarmup` in `{}` has no LR to climb from", st.name))
                        .label(to.span, "no predecessor hands over an LR")
                        .help("a stage without predecessors starts from 0: write a warmup (`cosine(peak = ..., warmup = ...)`)"),
                ),
                _ => {}
            }
        }
        runs[r].handover = handover;
        runs[r].curve = curve;
    }
}
