//! LR schedule runs: which run each stage's `lr` starts or continues, the span of every run
//! (the budgets of its stages), and its curve with the LR handed over into it. A hand-over is
//! checked against the value it hands over (a re-warm-up must climb above it).

use crate::check::graph::Ancestors;
use crate::check::ir::*;
use crate::check::units;
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::plan::lr::{self, Curve};

use super::{Handed, StageWalk};

/// One run of a schedule: a named schedule started once, or a stage's inline `lr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RunId(pub usize);

#[derive(Debug, Clone)]
pub(crate) struct ScheduleRun {
    pub name: String,
    pub segments: Vec<Segment>,
    pub stages: Vec<StageId>,
    pub span: f64,
    pub curve: Curve,
}

#[derive(Default)]
pub(crate) struct Runs {
    pub list: Vec<ScheduleRun>,
    /// Per named schedule: the run that started it.
    started: IndexVec<ScheduleId, Option<RunId>>,
}

impl std::ops::Index<RunId> for Runs {
    type Output = ScheduleRun;
    fn index(&self, r: RunId) -> &ScheduleRun {
        &self.list[r.0]
    }
}

impl std::ops::IndexMut<RunId> for Runs {
    fn index_mut(&mut self, r: RunId) -> &mut ScheduleRun {
        &mut self.list[r.0]
    }
}

impl Runs {
    pub fn new(p: &Pipeline) -> Runs {
        Runs {
            list: vec![],
            started: IndexVec::from_elem(None, p.schedules.len()),
        }
    }

    fn fresh(&mut self, name: String, segments: Vec<Segment>) -> RunId {
        self.list.push(ScheduleRun {
            name,
            segments,
            stages: vec![],
            span: 0.0,
            curve: Curve::default(),
        });
        RunId(self.list.len() - 1)
    }

    /// Joins stage `s` to the run its `lr` names; returns the run and where the stage starts
    /// in its span.
    pub fn join(
        &mut self,
        p: &Pipeline,
        s: StageId,
        tokens: f64,
        anc: &Ancestors,
        handed: &IndexVec<StageId, Option<Handed>>,
        diags: &mut Diagnostics,
    ) -> (RunId, f64) {
        let st = &p.stages[s];
        let r = self.assign(p, s, anc, handed, diags);
        // A schedule is one line of stages: two stages that both continue it must run one
        // after the other, or the second would start where the first ended without having run
        // after it.
        let siblings = |a: &Stage, b: &Stage| matches!((&a.variant, &b.variant), (Some(x), Some(y)) if x.group == y.group);
        if let (Some(&last), StageLr::Resume { span, .. }) = (self[r].stages.last(), &st.lr)
            && !anc.is_ancestor(s, last)
            && siblings(&p.stages[last], st)
        {
            // Variants run side by side, so none of them can continue a schedule after
            // another; said once, for the group.
            if st.variant.as_ref().is_some_and(|v| v.index == 1) {
                let group = &st.variant.as_ref().expect("a variant").group;
                diags.push(
                    Diagnostic::new(
                        Code::RESUME_AMBIGUOUS,
                        format!(
                            "the variants of `{group}` run side by side: they cannot all continue \
                             schedule `{}`",
                            self[r].name
                        ),
                    )
                    .label(*span, "each variant would continue it")
                    .help(format!(
                        "a schedule runs along one chain of stages: give `{group}` a schedule \
                         of its own (e.g. `lr = linear(to = 0)`, which starts at the LR handed \
                         over)"
                    )),
                );
            }
        } else if let (Some(&last), StageLr::Resume { span, .. }) = (self[r].stages.last(), &st.lr)
            && !anc.is_ancestor(s, last)
        {
            diags.push(
                Diagnostic::new(
                    Code::RESUME_AMBIGUOUS,
                    format!(
                        "`{}` and `{}` both continue schedule `{}`",
                        p.stages[last].name, st.name, self[r].name
                    ),
                )
                .label(
                    *span,
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
                        .then(|| crate::check::fixes::add_after(st, &p.stages[last].name)),
                ),
            );
        }
        let offset = self[r].span;
        self[r].stages.push(s);
        if tokens.is_finite() {
            self[r].span += tokens;
        }
        (r, offset)
    }

    fn assign(
        &mut self,
        p: &Pipeline,
        s: StageId,
        anc: &Ancestors,
        handed: &IndexVec<StageId, Option<Handed>>,
        diags: &mut Diagnostics,
    ) -> RunId {
        let st = &p.stages[s];
        let run_of = |q: StageId| handed[q].as_ref().map(|h| h.run);
        match &st.lr {
            StageLr::Inline(segs) => self.fresh(st.name.clone(), segs.clone()),
            StageLr::Start(id) => {
                let sched = &p.schedules[id.value];
                if let Some(r) = self.started[id.value] {
                    let first = self[r].stages[0];
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
                let r = self.fresh(sched.name.clone(), sched.segments.clone());
                self.started[id.value] = Some(r);
                r
            }
            StageLr::Resume { target: None, span } => {
                let cands: Vec<RunId> = {
                    let mut v = vec![];
                    for r in st.after.iter().filter_map(|a| run_of(a.value)) {
                        if !v.contains(&r) {
                            v.push(r);
                        }
                    }
                    v
                };
                match cands.as_slice() {
                    [one] => *one,
                    [] => {
                        // An unknown stage in `after` is the cause; it is reported there.
                        if !st.unknown_after {
                            diags.push(
                                Diagnostic::new(Code::RESUME_NONE, format!("`{}` resumes a schedule but has no predecessor", st.name))
                                    .label(*span, "nothing to resume")
                                    .help("start a schedule here (`lr = cosine(...)` or a named schedule), or add `after STAGE`"),
                            );
                        }
                        self.fresh(st.name.clone(), vec![])
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
                            if let Some(r) = run_of(a.value) {
                                d = d.label(a.span, format!("runs `{}`", self[r].name));
                            }
                        }
                        diags.push(
                            d.help(format!("name it: `lr = resume({})`", self[many[0]].name)),
                        );
                        many[0]
                    }
                }
            }
            StageLr::Resume {
                target: Some(t),
                span,
            } => {
                let (run, owner) = match t.value {
                    ResumeTarget::Schedule(id) => (self.started[id], p.schedules[id].name.as_str()),
                    ResumeTarget::Stage(q) => (run_of(q), p.stages[q].name.as_str()),
                };
                let reachable =
                    run.filter(|&r| self[r].stages.iter().any(|&q| anc.is_ancestor(s, q)));
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
                        self.fresh(st.name.clone(), vec![])
                    }
                }
            }
        }
    }

    /// Every run's curve, in run order (a run's hand-over LR comes from an earlier run's curve).
    pub fn build_curves(
        &mut self,
        p: &Pipeline,
        stages: &IndexVec<StageId, StageWalk>,
        diags: &mut Diagnostics,
    ) {
        for r in (0..self.list.len()).map(RunId) {
            if self[r].segments.is_empty() || self[r].stages.is_empty() {
                continue;
            }
            let first = self[r].stages[0];
            let st = &p.stages[first];
            // The hand-over LR comes from the predecessor that trains what this stage trains.
            let pred = st
                .after
                .iter()
                .map(|a| a.value)
                .find(|&q| st.train.iter().any(|m| p.stages[q].trains(m.value)))
                .or_else(|| st.after.first().map(|a| a.value));
            // A branch takes the LR where its branch point stands in the parent.
            let handed_at = |q: StageId| match stages[first].branch {
                Some(b) if b.parent == q => b.tokens,
                _ => stages[q].tokens,
            };
            let handover = pred.and_then(|q| {
                let qr = stages[q].run;
                (qr < r && !self[qr].curve.pieces.is_empty())
                    .then(|| self[qr].curve.at(stages[q].offset + handed_at(q)))
            });
            let clock = clock(&self[r], stages);
            let (curve, problems) = lr::build(&self[r].segments, self[r].span, &clock, handover);
            for pr in problems {
                if let Some(d) = problem(pr, st, &self[r], pred.is_none()) {
                    diags.push(d);
                }
            }
            if let Some(SegmentKind::Rewarmup { to, .. }) =
                self[r].segments.first().map(|s| &s.kind)
            {
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
            moved_by_resume(p, &self[r], &curve, &clock, handover, stages, diags);
            self[r].curve = curve;
        }
    }
}

/// A note at the first stage that resumes a run whose curve it bends: the run's durations are
/// shares of its whole span (a cosine to its end, a warmup of 1%), so a stage that continues
/// it changes the LR of the stages before it. The note names the earlier stage and its LR with
/// and without the resuming stage: at the end of the stage just before, or where the curve
/// moves most when that end stays (a warmup that stretches). A schedule with a `horizon` or
/// `until` positions keeps its shape and gets none. One note per run, naming the later stages
/// that resume it too: the fix (a fixed shape) is one for all of them, and a chain of a
/// thousand resuming stages would otherwise print a thousand notes. The truncated curve reuses
/// the run's clock: the steps of a prefix of the run are a prefix of its steps.
fn moved_by_resume(
    p: &Pipeline,
    run: &ScheduleRun,
    curve: &Curve,
    clock: &lr::StepClock,
    handover: Option<f64>,
    stages: &IndexVec<StageId, StageWalk>,
    diags: &mut Diagnostics,
) {
    const SAMPLES: usize = 32;
    let moved = |with: f64, without: f64| {
        with.is_finite()
            && without.is_finite()
            && (with - without).abs() > 1e-9 * with.abs().max(without.abs())
    };
    for (k, pair) in run.stages.windows(2).enumerate() {
        let (before, s) = (pair[0], pair[1]);
        let StageLr::Resume { span, .. } = &p.stages[s].lr else {
            continue;
        };
        let end = stages[before].offset + stages[before].tokens;
        if !end.is_finite() || end <= 0.0 || end >= run.span {
            continue;
        }
        let (alone, problems) = lr::build(&run.segments, end, clock, handover);
        // The schedule does not fit the earlier stages alone: no LR to compare with.
        if !problems.is_empty() || alone.pieces.is_empty() {
            continue;
        }
        // The end of the stage before first; else the sample where the LR moves most.
        let rel = |t: f64| (curve.at(t) - alone.at(t)).abs() / curve.at(t).abs().max(1e-30);
        let at = if moved(curve.at(end), alone.at(end)) {
            Some(end)
        } else {
            // Where either curve changes piece (a warmup's end), the middles between, and a
            // grid for the rest.
            let mut ts: Vec<f64> = curve
                .pieces
                .iter()
                .chain(&alone.pieces)
                .flat_map(|q| [q.start, q.end])
                .chain((0..SAMPLES).map(|i| end * i as f64 / SAMPLES as f64))
                .filter(|&t| (0.0..end).contains(&t))
                .collect();
            ts.sort_by(f64::total_cmp);
            let mids: Vec<f64> = ts.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
            ts.into_iter()
                .chain(mids)
                .filter(|&t| moved(curve.at(t), alone.at(t)))
                .max_by(|a, b| rel(*a).total_cmp(&rel(*b)))
        };
        let Some(at) = at else {
            continue;
        };
        // The earlier stage of the run that trains at that position. A run's stages follow one
        // another, so their ends rise: a binary search, not a scan (a chain of thousands of
        // resuming stages made this quadratic).
        let earlier = &run.stages[..=k];
        let q = earlier
            .get(earlier.partition_point(|&q| at >= stages[q].offset + stages[q].tokens))
            .copied()
            .unwrap_or(before);
        let (b, st) = (&p.stages[q], &p.stages[s]);
        let (with, without) = (curve.at(at), alone.at(at));
        let share = (at - stages[q].offset) / stages[q].tokens;
        let place = if share >= 1.0 - 1e-12 {
            "at its end".to_string()
        } else {
            format!("at {}% of its tokens", units::trim2(share * 100.0))
        };
        diags.push(
            Diagnostic::new(
                Code::RESUME_MOVES_LR,
                format!(
                    "`{}` continues schedule `{}` and moves the LR of `{}`",
                    st.name, run.name, b.name
                ),
            )
            .label(
                *span,
                format!(
                    "adds {} tokens to the span of `{}`",
                    units::tokens(stages[s].tokens),
                    run.name
                ),
            )
            .label(
                b.name_span,
                format!(
                    "`{}` now trains at LR {} {place} ({} without `{}`)",
                    b.name,
                    units::lr(with),
                    units::lr(without),
                    st.name
                ),
            )
            .help(format!(
                "the schedule's durations are shares of the span of all its stages; to keep `{}`'s LR as it is, fix the shape with `horizon` or `until` positions, or start a schedule of its own in `{}`{}",
                b.name,
                st.name,
                later_resumes(p, &run.stages[k + 2..], &run.name)
            )),
        );
        return;
    }
}

/// The stages after the noted one that resume the same run, as a sentence for the note's help
/// ("" when there are none): they are not noted again.
fn later_resumes(p: &Pipeline, later: &[StageId], run: &str) -> String {
    const NAMED: usize = 3;
    let names: Vec<&str> = later
        .iter()
        .filter(|&&q| matches!(p.stages[q].lr, StageLr::Resume { .. }))
        .map(|&q| p.stages[q].name.as_str())
        .collect();
    // "and 1 more" would say less than the name itself.
    let shown = if names.len() == NAMED + 1 {
        NAMED + 1
    } else {
        NAMED
    };
    let listed = names
        .iter()
        .take(shown)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match names.len() {
        0 => String::new(),
        1 => format!(". {listed} resumes `{run}` too: the same fix holds for it"),
        n if n <= shown => format!(". {listed} resume `{run}` too: the same fix holds for them"),
        n => format!(
            ". {listed} and {} more stages resume `{run}` too: the same fix holds for them",
            n - shown
        ),
    }
}

/// Where the steps of a run fall in its span: every phase's runs of one batch, stage after
/// stage (a phase starts at its declared token, its last step may pass it).
fn clock(run: &ScheduleRun, stages: &IndexVec<StageId, StageWalk>) -> lr::StepClock {
    let mut runs = vec![];
    for &q in &run.stages {
        let sw = &stages[q];
        for ph in &sw.phases {
            for (i, br) in ph.runs.iter().enumerate() {
                let end = ph.runs.get(i + 1).map_or(ph.steps, |n| n.first_step);
                runs.push((
                    sw.offset + ph.start + br.start,
                    (br.batch * ph.seq_len) as f64,
                    end - br.first_step,
                ));
            }
        }
    }
    lr::StepClock::from_runs(runs)
}

/// The diagnostic of a problem found while building a run's curve; `None` for a missing start
/// LR when a predecessor exists (its own problem is reported where it is).
fn problem(pr: lr::Problem, st: &Stage, run: &ScheduleRun, no_pred: bool) -> Option<Diagnostic> {
    let spans = format!(
        "schedule `{}` spans {} tokens",
        run.name,
        units::tokens(run.span)
    );
    Some(match pr {
        lr::Problem::TooLong { span, what, tokens, room } => Diagnostic::new(
            Code::TOO_LONG,
            format!("`{what}` of {} tokens does not fit in {} tokens", units::tokens(tokens), units::tokens(room)),
        )
        .label(span, format!("{} tokens", units::tokens(tokens)))
        .label(st.lr_span, spans)
        .help(format!("the span is the sum of the budgets of the stages that run the schedule: make `{what}` shorter")),
        lr::Problem::UntilNotAfter { span, at, start } => Diagnostic::new(
            Code::TOO_LONG,
            format!("`until` at token {} is not after the start of its segment at token {}", units::tokens(at), units::tokens(start)),
        )
        .label(span, format!("token {} of the schedule", units::tokens(at)))
        .label(st.lr_span, spans)
        .help("`until` is a position counted from the start of the schedule, not a length: move it past where the segments before it end, or write `over` for a length"),
        lr::Problem::UntilBeyond { span, at, end } => Diagnostic::new(
            Code::TOO_LONG,
            format!("`until` at token {} is not inside the span of {} tokens", units::tokens(at), units::tokens(end)),
        )
        .label(span, format!("token {} of the schedule", units::tokens(at)))
        .label(st.lr_span, spans)
        .help("the span is the sum of the budgets of the stages that run the schedule: end the segment before it ends, so the next one has room"),
        lr::Problem::HorizonWithinWarmup { span, horizon, warmup } => Diagnostic::new(
            Code::TOO_LONG,
            format!("`horizon` of {} tokens is not longer than the warmup of {} tokens", units::tokens(horizon), units::tokens(warmup)),
        )
        .label(span, format!("{} tokens from the start of the segment", units::tokens(horizon)))
        .help("the horizon counts from the start of the segment, warmup included: make it longer than the warmup"),
        lr::Problem::UnderAStep { span, what, tokens, step } => Diagnostic::new(
            Code::UNDER_A_STEP,
            format!("`{what}` of {} tokens is shorter than one step of {} tokens", units::tokens(tokens), units::tokens(step)),
        )
        .label(span, format!("{} tokens: a number without a unit counts tokens", units::tokens(tokens)))
        .label(st.lr_span, format!("`{}` trains {} tokens per step", st.name, units::tokens(step)))
        .help(format!(
            "for steps write `{} steps`; for a share of the span, a percentage such as `1%`",
            tokens.round() as u64
        ))
        // Meant as steps, almost always: the number stays, the unit is added.
        .fix(crate::diag::Fix::replace(
            format!("count {} steps", tokens.round() as u64),
            crate::syntax::Span::new(span.end, span.end),
            " steps",
        )),
        lr::Problem::NoStartLr { span, function, arg } => {
            if !no_pred {
                return None;
            }
            Diagnostic::new(
                Code::ARGUMENTS,
                format!("`{function}` starts schedule `{}` without `{arg}`, and nothing hands over an LR", run.name),
            )
            .label(span, format!("no `{arg}`, no segment before it and no predecessor"))
            .help(format!("add `{arg} = ...`, or put a segment before it (`constant(1e-3, over = 1B) then {function}(...)`)"))
        }
    })
}
