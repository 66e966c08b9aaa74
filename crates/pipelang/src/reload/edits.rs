//! What an edit touched: the running and the new pipeline compared item by item and field by
//! field, by name (ids and spans shift when text moves, names do not). Each edit carries the
//! span in the new source where a refusal should point.

use crate::check::ir::*;
use crate::schema::{data, decoder, phase, pipeline, projector, stage, vit};
use crate::syntax::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Pipeline,
    Model(String),
    Data(String),
    Schedule(String),
    Stage(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Changed,
    Added,
    Removed,
}

#[derive(Debug, Clone)]
pub struct Edit {
    pub owner: Owner,
    /// The field (`budget`, `lr`, `phase ctx_64`, ...); empty for a whole item added or removed.
    pub field: String,
    pub kind: Kind,
    /// In the new source: the edited field, the added item, or where a removed one was.
    pub span: Span,
}

/// One comparable field: a spanless rendering of its value and where it is written. Block
/// fields are named by their schema entry; `tests.rs` checks that every one is compared.
pub(super) struct Field {
    pub(super) name: String,
    value: String,
    span: Span,
}

fn field(name: impl Into<String>, value: impl Into<String>, span: Span) -> Field {
    Field {
        name: name.into(),
        value: value.into(),
        span,
    }
}

/// Every difference between the running pipeline `old` and the edited one `new`.
pub fn between(old: &Pipeline, new: &Pipeline) -> Vec<Edit> {
    let mut out = vec![];
    compare_fields(
        &mut out,
        Owner::Pipeline,
        &pipeline_fields(old),
        &pipeline_fields(new),
        new.name_span,
    );
    let items = |out: &mut Vec<Edit>,
                 old_names: Vec<&str>,
                 new_names: Vec<&str>,
                 owner: &dyn Fn(String) -> Owner,
                 fields: &dyn Fn(bool, usize) -> (Vec<Field>, Span, Span)| {
        for (i, name) in old_names.iter().enumerate() {
            match new_names.iter().position(|n| n == name) {
                Some(j) => {
                    let (a, _, _) = fields(false, i);
                    let (b, whole, _) = fields(true, j);
                    compare_fields(out, owner(name.to_string()), &a, &b, whole);
                }
                None => out.push(Edit {
                    owner: owner(name.to_string()),
                    field: String::new(),
                    kind: Kind::Removed,
                    span: gap(&old_names, i, &new_names, |j| fields(true, j).1),
                }),
            }
        }
        for (j, name) in new_names.iter().enumerate() {
            if !old_names.contains(name) {
                out.push(Edit {
                    owner: owner(name.to_string()),
                    field: String::new(),
                    kind: Kind::Added,
                    span: fields(true, j).2,
                });
            }
        }
    };
    let pick = |new_side: bool| if new_side { new } else { old };
    items(
        &mut out,
        old.models.iter().map(|m| m.name.as_str()).collect(),
        new.models.iter().map(|m| m.name.as_str()).collect(),
        &Owner::Model,
        &|n, i| {
            let p = pick(n);
            let m = &p.models[ModelId::new(i)];
            (model_fields(p, m), m.span, m.name_span)
        },
    );
    items(
        &mut out,
        old.data.iter().map(|d| d.name.as_str()).collect(),
        new.data.iter().map(|d| d.name.as_str()).collect(),
        &Owner::Data,
        &|n, i| {
            let d = &pick(n).data[DataId::new(i)];
            (data_fields(d), d.span, d.name_span)
        },
    );
    items(
        &mut out,
        old.schedules.iter().map(|s| s.name.as_str()).collect(),
        new.schedules.iter().map(|s| s.name.as_str()).collect(),
        &Owner::Schedule,
        &|n, i| {
            let s = &pick(n).schedules[ScheduleId::new(i)];
            (schedule_fields(s), s.span, s.name_span)
        },
    );
    items(
        &mut out,
        old.stages.iter().map(|s| s.name.as_str()).collect(),
        new.stages.iter().map(|s| s.name.as_str()).collect(),
        &Owner::Stage,
        &|n, i| {
            let p = pick(n);
            let s = &p.stages[StageId::new(i)];
            (stage_fields(p, s), s.header, s.name_span)
        },
    );
    out
}

/// Where a removed item was: just before the next item of its kind that is still there, else
/// just after the last one before it.
fn gap(old: &[&str], i: usize, new: &[&str], span_of: impl Fn(usize) -> Span) -> Span {
    if let Some(j) = old[i + 1..]
        .iter()
        .find_map(|n| new.iter().position(|m| m == n))
    {
        let s = span_of(j).start;
        return Span::new(s, s);
    }
    if let Some(j) = old[..i]
        .iter()
        .rev()
        .find_map(|n| new.iter().position(|m| m == n))
    {
        let e = span_of(j).end;
        return Span::new(e, e);
    }
    Span::new(0, 0)
}

fn compare_fields(out: &mut Vec<Edit>, owner: Owner, old: &[Field], new: &[Field], whole: Span) {
    for f in new {
        let changed = match old.iter().find(|o| o.name == f.name) {
            Some(o) => o.value != f.value,
            None => true,
        };
        if changed {
            out.push(Edit {
                owner: owner.clone(),
                field: f.name.clone(),
                kind: Kind::Changed,
                span: f.span,
            });
        }
    }
    for o in old {
        if !new.iter().any(|f| f.name == o.name) {
            out.push(Edit {
                owner: owner.clone(),
                field: o.name.clone(),
                kind: Kind::Changed,
                span: whole,
            });
        }
    }
}

pub(super) fn pipeline_fields(p: &Pipeline) -> Vec<Field> {
    vec![
        field(pipeline::SEED.name, p.seed.value.to_string(), p.seed.span),
        field(
            pipeline::BATCH.name,
            p.batch.value.to_string(),
            p.batch.span,
        ),
        field(
            pipeline::SEQ_LEN.name,
            p.seq_len.value.to_string(),
            p.seq_len.span,
        ),
        field(
            pipeline::DATA_ROOT.name,
            format!("{:?}", p.data_root.as_ref().map(|r| &r.value)),
            p.data_root.as_ref().map_or(p.name_span, |r| r.span),
        ),
        field(
            pipeline::SAMPLE_DATA.name,
            p.sample_data.to_string(),
            p.name_span,
        ),
        field(
            pipeline::OPTIMIZER.name,
            format!("{:?}", p.optimizer.value),
            p.optimizer.span,
        ),
    ]
}

pub(super) fn model_fields(p: &Pipeline, m: &Model) -> Vec<Field> {
    let mut out = vec![field("kind", m.kind.name(), m.name_span)];
    // An unset optional field is compared as `unset`, so setting it later is a change too.
    let mut num = |name: &str, v: Option<Sp<u64>>| {
        out.push(match v {
            Some(v) => field(name, v.value.to_string(), v.span),
            None => field(name, "unset", m.name_span),
        });
    };
    match &m.kind {
        ModelKind::Decoder(d) => {
            num(decoder::VOCAB.name, Some(d.vocab));
            num(decoder::D_MODEL.name, Some(d.d_model));
            num(decoder::LAYERS.name, Some(d.layers));
            num(decoder::HEADS.name, Some(d.heads));
            num(decoder::EXPERTS.name, d.experts);
            num(decoder::ACTIVE_EXPERTS.name, d.active_experts);
            num(decoder::KV_HEADS.name, d.kv_heads);
            num(decoder::FFN.name, d.ffn);
            num(decoder::SHARED_EXPERTS.name, d.shared_experts);
            num(decoder::DENSE_LAYERS.name, d.dense_layers);
            out.push(field(
                decoder::ROPE_BASE.name,
                d.rope_base.value.to_string(),
                d.rope_base.span,
            ));
            out.push(field(
                decoder::ROPE_SCALING.name,
                d.rope_scaling.value.show(),
                d.rope_scaling.span,
            ));
            out.push(field(
                decoder::MLP.name,
                format!("{:?}", d.mlp.value),
                d.mlp.span,
            ));
            for (f, v) in [
                (&decoder::TIE_EMBEDDINGS, d.tie_embeddings),
                (&decoder::QK_NORM, d.qk_norm),
            ] {
                out.push(field(f.name, v.value.to_string(), v.span));
            }
        }
        ModelKind::Vit(v) => {
            num(vit::PATCH.name, Some(v.patch));
            num(vit::D_MODEL.name, Some(v.d_model));
            num(vit::LAYERS.name, Some(v.layers));
            num(vit::HEADS.name, Some(v.heads));
            num(vit::MAX_IMAGE_SIDE.name, Some(v.max_image_side));
        }
        ModelKind::Projector(pr) => {
            num(projector::PIXEL_SHUFFLE.name, Some(pr.pixel_shuffle));
            out.push(field(
                "from",
                p.models[pr.from.value].name.clone(),
                pr.from.span,
            ));
            out.push(field("to", p.models[pr.to.value].name.clone(), pr.to.span));
        }
    }
    // Where the weights start: a stage that read them has run with them.
    out.push(field(
        crate::schema::model::INIT.name,
        format!("{:?}", m.init.as_ref().map(|i| &i.value)),
        m.init.as_ref().map_or(m.name_span, |i| i.span),
    ));
    out
}

pub(super) fn data_fields(d: &Data) -> Vec<Field> {
    let globs: Vec<&str> = d.globs.iter().map(|g| g.value.as_str()).collect();
    vec![
        field("kind", d.kind.name(), d.name_span),
        field(
            "files",
            globs.join(", "),
            joined(d.globs.iter().map(|g| g.span), d.span),
        ),
        field(
            data::TOKENIZER.name,
            format!("{:?}", d.tokenizer.as_ref().map(|t| &t.value)),
            d.tokenizer.as_ref().map_or(d.span, |t| t.span),
        ),
        field(
            data::COLUMN.name,
            format!("{:?}", d.column.as_ref().map(|t| &t.value)),
            d.column.as_ref().map_or(d.span, |t| t.span),
        ),
        field(
            data::CAPTION.name,
            format!("{:?}", d.caption.as_ref().map(|t| &t.value)),
            d.caption.as_ref().map_or(d.span, |t| t.span),
        ),
    ]
}

fn schedule_fields(s: &Schedule) -> Vec<Field> {
    s.segments
        .iter()
        .enumerate()
        .map(|(i, seg)| field(format!("segment {}", i + 1), segment(seg), seg.span))
        .collect()
}

pub(super) fn stage_fields(p: &Pipeline, s: &Stage) -> Vec<Field> {
    let model = |m: &Sp<ModelId>| p.models[m.value].name.clone();
    let names = |list: &[Sp<ModelId>]| list.iter().map(model).collect::<Vec<_>>().join(", ");
    let mut out = vec![
        field(
            "after",
            s.after
                .iter()
                .map(|a| p.stages[a.value].name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            joined(s.after.iter().map(|a| a.span), s.header),
        ),
        // The branch point decides the weights the stage starts from.
        field(
            "after ... @",
            s.branch.map_or(String::new(), |b| {
                format!(
                    "{:?}{}",
                    b.at.value,
                    if b.from_end { " before the end" } else { "" }
                )
            }),
            s.branch.map_or(s.header, |b| b.at.span),
        ),
        field(
            stage::TRAIN.name,
            names(&s.train),
            joined(s.train.iter().map(|m| m.span), s.header),
        ),
        field(
            stage::FREEZE.name,
            names(&s.freeze),
            joined(s.freeze.iter().map(|m| m.span), s.header),
        ),
        field(
            stage::BUDGET.name,
            format!("{:?}", s.budget.value),
            s.budget.span,
        ),
        field(
            stage::BATCH.name,
            format!("{:?}", s.batch.map(|b| b.value)),
            s.batch.map_or(s.header, |b| b.span),
        ),
        field(
            stage::SEQ_LEN.name,
            transition(&s.seq_len),
            transition_span(&s.seq_len, s.header),
        ),
        field(
            stage::ROPE_BASE.name,
            transition(&s.rope_base),
            transition_span(&s.rope_base, s.header),
        ),
        field(
            stage::ROPE_SCALING.name,
            transition(&s.rope_scaling),
            transition_span(&s.rope_scaling, s.header),
        ),
        field(stage::LOSS.name, format!("{:?}", s.loss.value), s.loss.span),
        field(stage::LR.name, stage_lr(p, &s.lr), s.lr_span),
        field("mix", mix(p, &s.mix), s.mix_span),
        field(
            "weights",
            s.weights
                .iter()
                .map(|(m, from)| format!("{}={}", model(m), p.stages[from.value].name))
                .collect::<Vec<_>>()
                .join(", "),
            joined(s.weights.iter().map(|(m, f)| m.span.join(f.span)), s.header),
        ),
        field(
            stage::CHECKPOINT_EVERY.name,
            format!("{:?}", s.checkpoint_every.map(|c| c.value)),
            s.checkpoint_every.map_or(s.header, |c| c.span),
        ),
        // The settings the stage trains with, the pipeline's included.
        field(
            stage::OPTIMIZER.name,
            format!("{:?}", p.optimizer_of(s)),
            s.optimizer.as_ref().map_or(s.header, |o| o.span),
        ),
        field(
            stage::SEED.name,
            format!("{:?}", s.seed.map(|c| c.value)),
            s.seed.map_or(s.header, |c| c.span),
        ),
        field(
            stage::AVERAGE.name,
            format!("{:?}", s.averaging.map(|a| a.value)),
            s.averaging.map_or(s.header, |a| a.span),
        ),
        field(
            stage::LR_SCALE,
            s.lr_scale
                .iter()
                .map(|(m, f)| format!("{}={}", model(m), f.value))
                .collect::<Vec<_>>()
                .join(", "),
            joined(
                s.lr_scale.iter().map(|(m, f)| m.span.join(f.span)),
                s.header,
            ),
        ),
    ];
    // A soup's inputs and weights: what its averaged weights are made of.
    if let Some(inputs) = &s.average {
        out.push(field(
            format!("{}(...)", stage::SOUP),
            inputs
                .iter()
                .map(|(i, w)| format!("{}={w}", p.stages[i.value].name))
                .collect::<Vec<_>>()
                .join(", "),
            joined(inputs.iter().map(|(i, _)| i.span), s.header),
        ));
    }
    for ph in &s.phases {
        let value = phase_fields(ph)
            .iter()
            .map(|(name, v)| format!("{name} {v}"))
            .collect::<Vec<_>>()
            .join(" ");
        out.push(field(format!("phase {}", ph.name), value, ph.span));
    }
    // Phases are ordered: the same phases in another order are a different stage.
    let order: Vec<&str> = s.phases.iter().map(|ph| ph.name.as_str()).collect();
    let order_span = joined(s.phases.iter().map(|ph| ph.span), s.header);
    out.push(field("phase order", order.join(", "), order_span));
    out
}

/// A phase is compared as a whole: its fields, by name.
pub(super) fn phase_fields(ph: &Phase) -> Vec<(&'static str, String)> {
    vec![
        (phase::BUDGET.name, format!("{:?}", ph.budget.value)),
        (phase::SEQ_LEN.name, transition(&ph.seq_len)),
        (phase::ROPE_BASE.name, transition(&ph.rope_base)),
        (phase::ROPE_SCALING.name, transition(&ph.rope_scaling)),
        (
            phase::BATCH.name,
            format!("{:?}", ph.batch.map(|b| b.value)),
        ),
    ]
}

fn joined(spans: impl Iterator<Item = Span>, default: Span) -> Span {
    spans.reduce(Span::join).unwrap_or(default)
}

fn transition<T: std::fmt::Display + Copy>(t: &Option<Transition<T>>) -> String {
    match t {
        None => "-".into(),
        Some(t) => match t.from {
            Some(f) => format!("{} -> {}", f.value, t.to.value),
            None => t.to.value.to_string(),
        },
    }
}

fn transition_span<T: Copy>(t: &Option<Transition<T>>, default: Span) -> Span {
    match t {
        None => default,
        Some(t) => t.from.map_or(t.to.span, |f| f.span.join(t.to.span)),
    }
}

fn stage_lr(p: &Pipeline, lr: &StageLr) -> String {
    match lr {
        StageLr::Inline(segs) => segs.iter().map(segment).collect::<Vec<_>>().join(" then "),
        StageLr::Start(s) => format!("schedule {}", p.schedules[s.value].name),
        StageLr::Resume { target, .. } => match target.map(|t| t.value) {
            None => "resume".into(),
            Some(ResumeTarget::Schedule(s)) => format!("resume schedule {}", p.schedules[s].name),
            Some(ResumeTarget::Stage(s)) => format!("resume stage {}", p.stages[s].name),
        },
    }
}

fn segment(seg: &Segment) -> String {
    let d = |d: &Sp<Duration>| format!("{:?}", d.value);
    let kind = match &seg.kind {
        SegmentKind::Constant { lr } => format!("constant({})", lr.value),
        SegmentKind::Linear { from, to } => {
            format!("linear({:?}, {})", from.map(|f| f.value), to.value)
        }
        SegmentKind::Cosine {
            peak,
            warmup,
            min,
            horizon,
        } => format!(
            "cosine({:?}, {:?}, {}, {:?})",
            peak.map(|p| p.value),
            warmup.as_ref().map(d),
            min.value,
            horizon.as_ref().map(d)
        ),
        SegmentKind::Wsd {
            peak,
            warmup,
            decay,
            min,
            shape,
        } => {
            let shape = match shape {
                DecayShape::Exponential { half_life } => format!("Exponential({})", d(half_life)),
                s => format!("{s:?}"),
            };
            format!(
                "wsd({}, {}, {}, {}, {shape})",
                peak.value,
                d(warmup),
                d(decay),
                min.value
            )
        }
        SegmentKind::Rewarmup { to } => format!("rewarmup({})", to.value),
        SegmentKind::Exponential {
            from,
            half_life,
            min,
        } => format!(
            "exponential({:?}, {}, {})",
            from.map(|f| f.value),
            d(half_life),
            min.value
        ),
    };
    match &seg.until {
        None => format!("{kind} over {:?}", seg.over.as_ref().map(d)),
        Some(u) => format!("{kind} until {}", d(u)),
    }
}

fn mix(p: &Pipeline, nodes: &[MixNode]) -> String {
    nodes
        .iter()
        .map(|n| {
            let target = match &n.target {
                MixTarget::Source(d) => p.data[*d].name.clone(),
                MixTarget::Group(g) => format!("{{{}}}", mix(p, g)),
            };
            format!("{}={:?}:{target}", n.name, n.weight.value)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
