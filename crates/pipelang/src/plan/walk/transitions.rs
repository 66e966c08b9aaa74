//! Values that pass along `after` edges with the weights and may change in a stage or phase:
//! the sequence length and each decoder's RoPE base and scaling. A stated `from -> to` must start from the
//! value handed over; predecessors that hand over different values must be reconciled.

use crate::check::ir::*;
use crate::check::units;
use crate::diag::{Code, Diagnostic, Diagnostics, Fix};
use crate::syntax::Span;

use super::Handed;
use super::weights::WeightsIn;

/// A value flowing along edges, with the place that set it (for related labels).
#[derive(Debug, Clone, Copy)]
pub(super) struct Held<T> {
    pub value: T,
    pub from: Span,
}

impl<T: Copy> Held<T> {
    pub fn of(sp: Sp<T>) -> Held<T> {
        Held {
            value: sp.value,
            from: sp.span,
        }
    }
}

/// The sequence length a stage starts with, after its own `seq_len` if it sets one.
pub(super) fn seq_len(
    p: &Pipeline,
    st: &Stage,
    handed: &IndexVec<StageId, Option<Handed>>,
    diags: &mut Diagnostics,
) -> Held<u64> {
    let incoming: Vec<(StageId, Held<u64>)> = st
        .after
        .iter()
        .filter_map(|a| handed[a.value].as_ref().map(|h| (a.value, h.seq_len)))
        .collect();
    let agreed = agree(&incoming);
    let held = match (&incoming[..], agreed) {
        ([], _) => Held::of(p.seq_len),
        (_, Some(v)) => v,
        (_, None) => {
            let sets_plain = st.seq_len.is_some_and(|t| t.from.is_none());
            if !sets_plain {
                disagree(p, st, "seq_len", &incoming, units::length, diags);
            }
            incoming[0].1
        }
    };
    match st.seq_len {
        Some(t) => {
            // Without a pipeline seq_len (reported at the pipeline) there is nothing to check
            // the left side against: no hidden default is compared.
            let known = !incoming.is_empty() || p.seq_len_written;
            if known && (agreed.is_some() || incoming.is_empty()) {
                check_from(t.from, held, "seq_len", units::length, diags);
            }
            Held::of(t.to)
        }
        None => held,
    }
}

/// The RoPE base of each decoder the stage uses, after its own `rope_base` if it sets one.
pub(super) fn rope(
    p: &Pipeline,
    st: &Stage,
    weights: &WeightsIn,
    handed: &IndexVec<StageId, Option<Handed>>,
    diags: &mut Diagnostics,
) -> Vec<(ModelId, Held<f64>)> {
    let field = PerDecoder {
        what: "rope_base",
        handed: |h: &Handed, m: ModelId| h.rope.get(m).copied().flatten(),
        own: |d: &DecoderSpec| d.rope_base,
        show: units::trim,
    };
    per_decoder(p, st, weights, handed, field, st.rope_base, diags)
}

/// The RoPE scaling of each decoder the stage uses, after its own `rope_scaling` if it sets
/// one: handed over with the weights like the base.
pub(super) fn scaling(
    p: &Pipeline,
    st: &Stage,
    weights: &WeightsIn,
    handed: &IndexVec<StageId, Option<Handed>>,
    diags: &mut Diagnostics,
) -> Vec<(ModelId, Held<RopeScaling>)> {
    let field = PerDecoder {
        what: "rope_scaling",
        handed: |h: &Handed, m: ModelId| h.scaling.get(m).copied().flatten(),
        own: |d: &DecoderSpec| d.rope_scaling,
        show: |s: RopeScaling| s.show(),
    };
    per_decoder(p, st, weights, handed, field, st.rope_scaling, diags)
}

/// A value each decoder carries along the edges of the models' weights.
struct PerDecoder<H, O, S> {
    what: &'static str,
    /// What a stage hands over for the model.
    handed: H,
    /// The model's own declaration, for its first stage.
    own: O,
    show: S,
}

fn per_decoder<T, H, O, S>(
    p: &Pipeline,
    st: &Stage,
    weights: &WeightsIn,
    handed: &IndexVec<StageId, Option<Handed>>,
    field: PerDecoder<H, O, S>,
    stage: Option<Transition<T>>,
    diags: &mut Diagnostics,
) -> Vec<(ModelId, Held<T>)>
where
    T: Copy + PartialEq,
    H: Fn(&Handed, ModelId) -> Option<Held<T>>,
    O: Fn(&DecoderSpec) -> Sp<T>,
    S: Fn(T) -> String + Copy,
{
    let of = |u: StageId, m: ModelId| handed[u].as_ref().and_then(|h| (field.handed)(h, m));
    let mut held: Vec<(ModelId, Held<T>)> = p
        .models
        .indices()
        .filter(|&m| st.uses(m))
        .filter_map(|m| match &p.models[m].kind {
            ModelKind::Decoder(d) => {
                let h = weights.used_in[m]
                    .and_then(|u| of(u, m))
                    .unwrap_or(Held::of((field.own)(d)));
                Some((m, h))
            }
            _ => None,
        })
        .collect();
    let sets_plain = stage.is_some_and(|t| t.from.is_none());
    for (m, _) in &held {
        let incoming: Vec<(StageId, Held<T>)> = weights.used_by[*m]
            .iter()
            .filter_map(|&u| of(u, *m).map(|h| (u, h)))
            .collect();
        if incoming.len() > 1 && agree(&incoming).is_none() && !sets_plain {
            disagree(p, st, field.what, &incoming, field.show, diags);
        }
    }
    if let Some(t) = stage {
        apply_each(&mut held, t, field.what, field.show, diags);
    }
    held
}

pub(super) fn apply_seq_len(seq: &mut Held<u64>, t: Transition<u64>, diags: &mut Diagnostics) {
    check_from(t.from, *seq, "seq_len", units::length, diags);
    *seq = Held::of(t.to);
}

pub(super) fn apply_rope(
    rope: &mut [(ModelId, Held<f64>)],
    t: Transition<f64>,
    diags: &mut Diagnostics,
) {
    apply_each(rope, t, "rope_base", units::trim, diags);
}

pub(super) fn apply_scaling(
    scaling: &mut [(ModelId, Held<RopeScaling>)],
    t: Transition<RopeScaling>,
    diags: &mut Diagnostics,
) {
    apply_each(scaling, t, "rope_scaling", |s| s.show(), diags);
}

fn apply_each<T: PartialEq + Copy>(
    held: &mut [(ModelId, Held<T>)],
    t: Transition<T>,
    what: &str,
    show: impl Fn(T) -> String + Copy,
    diags: &mut Diagnostics,
) {
    for (_, h) in held.iter_mut() {
        check_from(t.from, *h, what, show, diags);
        *h = Held::of(t.to);
    }
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

/// A scaling's `original` context (the one the model was trained at before the extension) is
/// at most the seq_len it is used at: longer, it would extend the context to a shorter one.
/// `reported` holds the scalings already reported, so that each is reported once.
pub(super) fn original_fits(
    p: &Pipeline,
    scaling: &[(ModelId, Held<RopeScaling>)],
    seq: Held<u64>,
    reported: &mut Vec<Span>,
    diags: &mut Diagnostics,
) {
    for (m, h) in scaling {
        let Some(original) = h.value.original() else {
            continue;
        };
        if original <= seq.value || reported.contains(&h.from) {
            continue;
        }
        reported.push(h.from);
        let (o, s) = (units::length(original), units::length(seq.value));
        diags.push(
            Diagnostic::new(
                Code::ROPE_SCALING_ORIGINAL,
                format!(
                    "`{}` extends its RoPE from an original context of {o}, but trains at seq_len {s}",
                    p.models[*m].name
                ),
            )
            .label(h.from, format!("`original = {o}` here"))
            .label(seq.from, format!("seq_len {s} is set here"))
            .help(format!(
                "`original` is the context the model was trained at before the extension, so \
                 at most the seq_len it extends to: write `original = {s}` or less, or start \
                 the scaling where the seq_len reaches {o}"
            )),
        );
    }
}
