//! Checks that need one item at a time: model shapes, schedule ranges, and each stage's
//! models, loss, data kinds, mixture and phases.

use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::syntax::Span;

use super::ir::*;

pub fn models(p: &Pipeline, diags: &mut Diagnostics) {
    for m in &p.models {
        match &m.kind {
            ModelKind::Decoder(d) => {
                heads(diags, &m.name, d.d_model, d.heads);
                decoder_shape(diags, &m.name, d);
                if let (Some(e), Some(a)) = (d.experts, d.active_experts)
                    && a.value > e.value
                {
                    diags.push(
                        Diagnostic::new(
                            Code::EXPERTS,
                            format!(
                                "`{}` routes each token to {} of {} experts",
                                m.name, a.value, e.value
                            ),
                        )
                        .label(a.span, format!("{} active experts", a.value))
                        .label(e.span, format!("but only {} experts", e.value))
                        .help("`active_experts` must be at most `experts`"),
                    );
                }
            }
            ModelKind::Vit(v) => {
                heads(diags, &m.name, v.d_model, v.heads);
                let hd = v.d_model.value.checked_div(v.heads.value).unwrap_or(0);
                if v.heads.value > 0
                    && v.d_model.value % v.heads.value == 0
                    && hd % 2 == 0
                    && hd % 4 != 0
                {
                    diags.push(
                        Diagnostic::new(Code::HEADS, format!("vit `{}` has a head dimension of {hd}, not a multiple of 4", m.name))
                            .label(v.heads.span, format!("d_model / heads = {hd}"))
                            .label(v.d_model.span, "d_model here")
                            .help("the ViT's 2-D RoPE rotates channel pairs for rows and for columns: d_model / heads must be a multiple of 4"),
                    );
                }
            }
            ModelKind::Projector(pr) => {
                let kinds = |id: Sp<ModelId>| {
                    p.models
                        .get(id.value)
                        .map(|m| (m.kind.name(), m.name.as_str()))
                };
                if let Some((k, n)) = kinds(pr.from)
                    && k != "vit"
                {
                    diags.push(
                        Diagnostic::new(
                            Code::WRONG_NAME_KIND,
                            format!("a projector starts at a vit, but `{n}` is a {k}"),
                        )
                        .label(pr.from.span, "expected a vit model here")
                        .help("write `projector(VIT -> DECODER)`"),
                    );
                }
                if let Some((k, n)) = kinds(pr.to)
                    && k != "decoder"
                {
                    diags.push(
                        Diagnostic::new(
                            Code::WRONG_NAME_KIND,
                            format!("a projector ends at a decoder, but `{n}` is a {k}"),
                        )
                        .label(pr.to.span, "expected a decoder model here")
                        .help("write `projector(VIT -> DECODER)`"),
                    );
                }
            }
        }
    }
}

/// Grouped-query attention and the layer split of a mixture of experts.
fn decoder_shape(diags: &mut Diagnostics, name: &str, d: &DecoderSpec) {
    if let Some(kv) = d.kv_heads
        && d.heads.value > 0
        && !d.heads.value.is_multiple_of(kv.value)
    {
        let divisors: Vec<String> = (1..=d.heads.value)
            .filter(|k| d.heads.value.is_multiple_of(*k))
            .map(|k| k.to_string())
            .collect();
        diags.push(
            Diagnostic::new(
                Code::KV_HEADS,
                format!(
                    "{} key/value heads do not divide the {} query heads of `{name}`",
                    kv.value, d.heads.value
                ),
            )
            .label(kv.span, format!("{} kv heads", kv.value))
            .label(d.heads.span, format!("{} query heads", d.heads.value))
            .help(format!(
                "each key/value head serves an equal group of query heads: `kv_heads` must \
                 divide `heads` (here one of {})",
                divisors.join(", ")
            )),
        );
    }
    if let Some(n) = d.dense_layers
        && d.experts.is_some()
        && n.value >= d.layers.value
    {
        diags.push(
            Diagnostic::new(
                Code::DENSE_LAYERS,
                format!(
                    "`{name}` makes {} of its {} layers dense: no layer is left for the experts",
                    n.value, d.layers.value
                ),
            )
            .label(n.span, format!("{} dense layers", n.value))
            .label(d.layers.span, format!("{} layers in all", d.layers.value))
            .help(format!(
                "`dense_layers` counts the dense layers before the MoE layers: make it at most {}, \
                 or drop `experts` for a dense model",
                d.layers.value.saturating_sub(1)
            )),
        );
    }
}

fn heads(diags: &mut Diagnostics, name: &str, d_model: Sp<u64>, heads: Sp<u64>) {
    if heads.value == 0 {
        return;
    }
    if !d_model.value.is_multiple_of(heads.value) {
        diags.push(
            Diagnostic::new(
                Code::HEADS,
                format!(
                    "{} heads do not divide d_model {} of `{name}`",
                    heads.value, d_model.value
                ),
            )
            .label(heads.span, format!("{} heads", heads.value))
            .label(
                d_model.span,
                format!(
                    "d_model {} is not a multiple of {}",
                    d_model.value, heads.value
                ),
            )
            .help("choose heads that divide d_model, e.g. a power of two"),
        );
    } else if !(d_model.value / heads.value).is_multiple_of(2) {
        diags.push(
            Diagnostic::new(
                Code::HEADS,
                format!(
                    "`{name}` has an odd head dimension {}",
                    d_model.value / heads.value
                ),
            )
            .label(
                heads.span,
                format!("d_model / heads = {}", d_model.value / heads.value),
            )
            .label(d_model.span, "d_model here")
            .help("RoPE rotates pairs of channels: d_model / heads must be even"),
        );
    }
}

pub fn segments(segs: &[Segment], diags: &mut Diagnostics) {
    for s in segs {
        let (peak, min) = match &s.kind {
            SegmentKind::Cosine {
                peak: Some(p), min, ..
            } => (*p, *min),
            SegmentKind::Wsd { peak, min, .. } => (*peak, *min),
            SegmentKind::Exponential {
                from: Some(f), min, ..
            } => (*f, *min),
            _ => continue,
        };
        if min.value > peak.value {
            diags.push(
                Diagnostic::new(
                    Code::MIN_ABOVE_PEAK,
                    format!("LR minimum {} is above the peak {}", min.value, peak.value),
                )
                .label(min.span, "minimum here")
                .label(peak.span, "peak here")
                .help(
                    "the schedule decays from its peak to its minimum: make `min` at most `peak`",
                ),
            );
        }
    }
}

pub fn stage(p: &Pipeline, s: &Stage, diags: &mut Diagnostics) {
    for f in &s.freeze {
        if let Some(t) = s.train.iter().find(|t| t.value == f.value) {
            diags.push(
                Diagnostic::new(
                    Code::TRAINED_AND_FROZEN,
                    format!(
                        "`{}` is both trained and frozen in `{}`",
                        p.models[f.value].name, s.name
                    ),
                )
                .label(f.span, "frozen here")
                .label(t.span, "trained here")
                .help("a model either learns in a stage or is frozen: remove it from one list"),
            );
        }
    }
    if let StageLr::Inline(segs) = &s.lr {
        segments(segs, diags);
    }
    if !s.unknown_models {
        loss_and_data(p, s, diags);
    }
    mixture(&s.mix, s.mix_span, diags);
    super::phase_budgets::check(s, diags);
}

fn kind_ids(p: &Pipeline, s: &Stage, kind: &str) -> Vec<ModelId> {
    s.train
        .iter()
        .chain(&s.freeze)
        .map(|m| m.value)
        .filter(|&m| p.models[m].kind.name() == kind)
        .collect()
}

fn loss_and_data(p: &Pipeline, s: &Stage, diags: &mut Diagnostics) {
    let decoders = kind_ids(p, s, "decoder");
    let vits = kind_ids(p, s, "vit");
    let projectors = kind_ids(p, s, "projector");
    let bridged = projectors.iter().any(|&pr| match &p.models[pr].kind {
        ModelKind::Projector(x) => vits.contains(&x.from.value) && decoders.contains(&x.to.value),
        _ => false,
    });
    let srcs = mix_sources(&s.mix);
    match s.loss.value {
        Loss::Coca { .. } => {
            if vits.is_empty() || decoders.is_empty() {
                diags.push(
                    Diagnostic::new(
                        Code::LOSS_MODELS,
                        format!("`coca` needs a vit and a small decoder in `{}`", s.name),
                    )
                    .label(s.loss.span, "CoCa loss")
                    .help("train (or freeze) a vit and a caption decoder in this stage"),
                );
            }
            for (d, span) in srcs {
                let data = &p.data[d];
                if data.kind != DataKind::ImageText {
                    diags.push(
                        Diagnostic::new(
                            Code::DATA_KIND,
                            format!(
                                "`coca` trains on image-caption pairs, but `{}` is {} data",
                                data.name,
                                data.kind.name()
                            ),
                        )
                        .label(span, format!("{} data", data.kind.name()))
                        .label(data.kind_span(), "declared here")
                        .help("feed an `image_text` source to a CoCa stage"),
                    );
                }
            }
        }
        Loss::NextToken => {
            if decoders.is_empty() {
                diags.push(
                    Diagnostic::new(Code::LOSS_MODELS, format!("`next_token` needs a decoder in `{}`", s.name))
                        .label(s.loss.span, "next-token loss")
                        .label(s.name_span, "this stage has no decoder")
                        .help("train or freeze a decoder in this stage, or use `loss = coca(...)` for a vision stage"),
                );
                return;
            }
            for (d, span) in srcs {
                let data = &p.data[d];
                if data.kind.has_images() && !bridged {
                    let why = if vits.is_empty() {
                        "no vit in this stage"
                    } else {
                        "no projector from its vit to its decoder"
                    };
                    diags.push(
                        Diagnostic::new(Code::DATA_KIND, format!("`{}` holds images, but stage `{}` has {why}", data.name, s.name))
                            .label(span, format!("{} data", data.kind.name()))
                            .label(data.kind_span(), "declared here")
                            .help("images reach a decoder through a vit and a `projector(vit -> decoder)`: train or freeze both in this stage"),
                    );
                }
            }
        }
    }
}

impl Data {
    fn kind_span(&self) -> Span {
        self.span
    }
}

const EPS: f64 = 1e-9;

fn weight_at(w: Weight, f: f64) -> f64 {
    match w {
        Weight::Fixed(v) => v,
        Weight::Ramp(a, b) => a + (b - a) * f,
        Weight::Rest => 0.0,
    }
}

fn pct(v: f64) -> String {
    let x = (v * 100.0 * 1e6).round() / 1e6;
    format!("{x}%")
}

/// One level must make 100% at every point of the stage; ramps are linear, so both ends suffice.
pub fn mixture(nodes: &[MixNode], at: Span, diags: &mut Diagnostics) {
    level(nodes, at, None, diags);
}

/// One level of a mixture: the stage's top level (`group` None) or a named group's members.
fn level(nodes: &[MixNode], at: Span, group: Option<&str>, diags: &mut Diagnostics) {
    let of = group.map_or(String::from("mixture shares"), |g| {
        format!("the shares in group `{g}`")
    });
    if nodes.is_empty() {
        return;
    }
    let rests: Vec<&MixNode> = nodes
        .iter()
        .filter(|n| n.weight.value == Weight::Rest)
        .collect();
    for extra in rests.iter().skip(1) {
        diags.push(
            Diagnostic::new(Code::MIX_REST, "a mixture level has more than one `rest`")
                .label(extra.weight.span, "second `rest`")
                .label(rests[0].weight.span, "first `rest`")
                .help("only one entry per level can take what the others leave"),
        );
    }
    for (point, f) in [("start", 0.0), ("end", 1.0)] {
        let total: f64 = nodes.iter().map(|n| weight_at(n.weight.value, f)).sum();
        let mut d = if rests.is_empty() {
            if (total - 1.0).abs() <= EPS {
                continue;
            }
            Diagnostic::new(
                Code::MIX_TOTAL,
                format!("{of} add up to {} at the {point} of the stage", pct(total)),
            )
            .label(at, format!("{} in all, not 100%", pct(total)))
            .help(if total < 1.0 {
                "raise a share, or give one entry `rest`"
            } else {
                "lower the shares so they add up to 100%"
            })
        } else {
            if total <= 1.0 + EPS {
                continue;
            }
            Diagnostic::new(
                Code::MIX_REST,
                format!(
                    "`rest` would be {} at the {point} of the stage{}",
                    pct(1.0 - total),
                    group.map_or(String::new(), |g| format!(" in group `{g}`"))
                ),
            )
            .label(rests[0].weight.span, format!("{} here", pct(1.0 - total)))
            .help("the other shares leave nothing for `rest`: lower them below 100%")
        };
        for n in nodes.iter().filter(|n| n.weight.value != Weight::Rest) {
            d = d.label(
                n.weight.span,
                format!("{} at the {point}", pct(weight_at(n.weight.value, f))),
            );
        }
        diags.push(d);
        break;
    }
    for n in nodes {
        // A copied mixture was checked where it is written.
        if let MixTarget::Group(g) = &n.target
            && n.copy_of.is_none()
        {
            level(g, n.span, Some(&n.name), diags);
        }
    }
}
