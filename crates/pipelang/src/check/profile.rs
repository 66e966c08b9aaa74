//! Profiles shrink a recipe (`scale tokens by 1e-6`, smaller models, a smaller batch, sample
//! data). A profile is applied to the syntax tree (overridden fields keep the profile's spans)
//! and then to token amounts and lengths of the typed pipeline; the result is checked again.

use crate::diag::{Code, Diagnostic, Diagnostics, Fix};
use crate::syntax::{Body, Entry, File, Item, ProfileItem, Span};

use super::fields::Fields;
use super::ir::*;
use super::names::did_you_mean;
use super::{units, values};
use crate::schema::{Scale, profile, stage};

#[derive(Debug, Default, Clone)]
pub struct Scaling {
    pub tokens: Option<Sp<f64>>,
    pub seq_len: Option<Sp<f64>>,
    pub rope_base: Option<Sp<f64>>,
    pub data_root: Option<Sp<String>>,
    pub sample_data: bool,
}

/// The file with the profile's overrides merged in, and the scalings to apply after lowering.
pub fn apply(file: &File, prof: &ProfileItem, diags: &mut Diagnostics) -> (File, Scaling) {
    let f = Fields::collect(&file.errors, &prof.body, &profile::BLOCK, diags);
    let mut out = file.clone();
    let mut scaling = Scaling::default();
    for s in &f.scales {
        let factor = values::number(diags, &s.factor, "scale").filter(|v| {
            let ok = v.value > 0.0;
            if !ok {
                diags.push(
                    Diagnostic::new(Code::PROFILE_VALUE, "a scale factor must be above 0")
                        .label(v.span, "not positive")
                        .help("write e.g. `scale tokens by 1e-6`"),
                );
            }
            ok
        });
        match Scale::TARGETS
            .into_iter()
            .find(|t| t.target() == s.what.name)
        {
            Some(Scale::Tokens) => scaling.tokens = factor,
            Some(Scale::SeqLen) => scaling.seq_len = factor,
            Some(Scale::RopeBase) => scaling.rope_base = factor,
            Some(Scale::No) | None => diags.push(
                Diagnostic::new(
                    Code::PROFILE_TARGET,
                    format!("a profile cannot scale `{}`", s.what.name),
                )
                .label(s.what.span, "unknown scale target")
                .help(format!("a profile scales {}", targets())),
            ),
        }
    }
    if let Some((x, sample)) = f.data_root(diags) {
        scaling.data_root = values::string(diags, &x.value, &x.key.name);
        scaling.sample_data = sample;
    }
    // A profile's batch is also every stage's batch.
    let globals: Vec<Entry> = profile::GLOBALS
        .iter()
        .filter_map(|k| f.get(k))
        .map(|x| Entry::Field(x.clone()))
        .collect();
    let batch_set = f.get(&profile::BATCH).is_some();
    for item in &mut out.items {
        match item {
            Item::Pipeline(p) => merge(&mut p.body, &globals),
            Item::Stage(s) if batch_set => drop_batch(&mut s.body),
            _ => {}
        }
    }
    for b in &f.blocks {
        let Some(name) = &b.name else {
            diags.push(
                Diagnostic::new(
                    Code::PROFILE_TARGET,
                    format!("`{}` in a profile names what it changes", b.keyword.name),
                )
                .label(b.keyword.span, "no name")
                .help(format!("write `{} NAME {{ ... }}`", b.keyword.name)),
            );
            continue;
        };
        let is_target = |i: &Item| match (i, b.keyword.name.as_str()) {
            (Item::Model(m), "model") => m.name.name == name.name,
            (Item::Stage(s), "stage") => s.name.name == name.name,
            (Item::Mix(m), "mix") => m.name.name == name.name,
            _ => false,
        };
        match out.items.iter_mut().find(|i| is_target(i)) {
            Some(Item::Model(m)) => merge(&mut m.body, &b.body.entries),
            Some(Item::Stage(s)) => merge(&mut s.body, &b.body.entries),
            // A mixture's shares only make sense together: the profile's replaces it whole.
            Some(Item::Mix(m)) => m.body.entries = b.body.entries.clone(),
            _ => {
                let names: Vec<&str> = file
                    .items
                    .iter()
                    .filter(|i| i.keyword() == b.keyword.name)
                    .map(|i| i.name().name.as_str())
                    .collect();
                let help = match did_you_mean(&name.name, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("declared {}s: {}", b.keyword.name, names.join(", ")),
                };
                diags.push(
                    Diagnostic::new(
                        Code::PROFILE_TARGET,
                        format!(
                            "profile `{}` changes {} `{}`, which is not declared",
                            prof.name.name, b.keyword.name, name.name
                        ),
                    )
                    .label(name.span, "not declared")
                    .help(help)
                    .fix(
                        did_you_mean(&name.name, names.iter().copied())
                            .map(|to| Fix::rename(name.span, to)),
                    ),
                );
            }
        }
    }
    (out, scaling)
}

/// Overrides replace the fields of the same name; new ones are added. A `mix { }` replaces
/// the stage's mixture as a whole (its shares only make sense together), and so do a `data`
/// and a `mix = NAME` field, the other ways to give a stage its data. A named block (`phase NAME { }`)
/// merges into the block of the same keyword and name, field by field.
fn merge(body: &mut Body, overrides: &[Entry]) {
    for o in overrides {
        match o {
            Entry::Field(f) => {
                let gives_data = is_data(&f.key.name);
                body.entries.retain(|e| match e {
                    Entry::Field(g) => {
                        g.key.name != f.key.name && !(gives_data && is_data(&g.key.name))
                    }
                    Entry::Block(b) => !(gives_data && b.keyword.name == stage::MIX.name),
                    Entry::Scale(_) => true,
                });
                body.entries.push(o.clone());
            }
            Entry::Block(b) => {
                let same = |e: &Entry| {
                    matches!(e, Entry::Block(x) if x.keyword.name == b.keyword.name
                        && x.name.as_ref().map(|n| &n.name) == b.name.as_ref().map(|n| &n.name))
                };
                match body.entries.iter_mut().find(|e| same(e)) {
                    Some(Entry::Block(x)) if b.name.is_some() => {
                        merge(&mut x.body, &b.body.entries)
                    }
                    Some(e) => *e = o.clone(),
                    None => {
                        if b.keyword.name == stage::MIX.name {
                            body.entries
                                .retain(|e| !matches!(e, Entry::Field(g) if is_data(&g.key.name)));
                        }
                        body.entries.push(o.clone());
                    }
                }
            }
            Entry::Scale(_) => body.entries.push(o.clone()),
        }
    }
}

/// `data = SOURCE` and `mix = NAME`: the fields that give a stage its data (as `mix { }` does).
fn is_data(key: &str) -> bool {
    key == stage::DATA.name || key == stage::MIX.name
}

/// "`tokens` (budgets and token durations), `seq_len` or `rope_base`"
fn targets() -> String {
    let words: Vec<String> = Scale::TARGETS
        .iter()
        .map(|t| match t {
            Scale::Tokens => format!("`{}` (budgets and token durations)", t.target()),
            _ => format!("`{}`", t.target()),
        })
        .collect();
    let (last, rest) = words.split_last().expect("scale targets");
    format!("{} or {last}", rest.join(", "))
}

fn drop_batch(body: &mut Body) {
    body.entries.retain(|e| {
        !matches!(e, Entry::Field(f) if f.key.name == profile::BATCH.name
            || f.key.name == crate::schema::stage::BATCH_TOKENS.name)
    });
    for e in &mut body.entries {
        if let Entry::Block(b) = e {
            drop_batch(&mut b.body);
        }
    }
}

/// Applies `scale tokens`, `scale seq_len` and `scale rope_base` to a lowered pipeline. Values written inside the
/// profile (`own`) are already at the profile's scale and stay as written.
pub fn scale(p: &mut Pipeline, s: &Scaling, own: Span, diags: &mut Diagnostics) {
    let outside = |span: Span| !own.contains(span.start);
    if let Some(f) = s.tokens {
        let f = f.value;
        for st in &mut p.stages {
            // Steps stay as written, as steps in LR durations do.
            if let Budget::Tokens(t) = &mut st.budget.value
                && outside(st.budget.span)
            {
                *t *= f;
            }
            for ph in &mut st.phases {
                if let PhaseBudget::Tokens(t) = &mut ph.budget.value
                    && outside(ph.budget.span)
                {
                    *t *= f;
                }
            }
            if let StageLr::Inline(segs) = &mut st.lr {
                scale_segments(segs, f, own);
            }
            // An averaging window in tokens follows the budget it is the end of.
            if let Some(a) = &mut st.averaging
                && let Averaging::Last(Duration::Tokens(t)) = &mut a.value
                && outside(a.span)
            {
                *t *= f;
            }
        }
        for sc in &mut p.schedules {
            scale_segments(&mut sc.segments, f, own);
        }
    }
    if let Some(f) = s.seq_len {
        let at = f.span;
        let mut len = |v: &mut Sp<u64>| {
            if !outside(v.span) {
                return;
            }
            let x = v.value as f64 * f.value;
            let r = x.round();
            if (x - r).abs() > 1e-6 || r < 1.0 {
                diags.push(
                    Diagnostic::new(Code::PROFILE_VALUE, format!("scaling seq_len {} by {} gives {}, not a whole length", v.value, units::trim(f.value), units::trim(x)))
                        .label(v.span, format!("{} x {} = {}", v.value, units::trim(f.value), units::trim(x)))
                        .label(at, "scaled here")
                        .help("choose a factor that keeps every sequence length a whole number of at least 1"),
                );
            }
            v.value = r.max(1.0) as u64;
        };
        len(&mut p.seq_len);
        let mut tr = |t: &mut Option<Transition<u64>>| {
            if let Some(t) = t {
                if let Some(from) = &mut t.from {
                    len(from);
                }
                len(&mut t.to);
            }
        };
        for st in &mut p.stages {
            tr(&mut st.seq_len);
            for ph in &mut st.phases {
                tr(&mut ph.seq_len);
            }
        }
        // A scaling's `original` is a context length: it shrinks with the seq_len it extends.
        let fv = f.value;
        let scaling = |v: &mut Sp<RopeScaling>| {
            if outside(v.span) {
                v.value.scale_lengths(fv);
            }
        };
        for m in &mut p.models {
            if let ModelKind::Decoder(d) = &mut m.kind {
                scaling(&mut d.rope_scaling);
            }
        }
        let tr = |t: &mut Option<Transition<RopeScaling>>| {
            if let Some(t) = t {
                if let Some(from) = &mut t.from {
                    scaling(from);
                }
                scaling(&mut t.to);
            }
        };
        for st in &mut p.stages {
            tr(&mut st.rope_scaling);
            for ph in &mut st.phases {
                tr(&mut ph.rope_scaling);
            }
        }
    }
    // Shrinking contexts without shrinking RoPE bases leaves the slow rotary frequencies
    // untrained at laptop scale, and a context extension then meets angles it never saw.
    // Scaling the bases by the same factor keeps the longest wavelength's ratio to the context.
    if let Some(f) = s.rope_base {
        let f = f.value;
        let base = |v: &mut Sp<f64>| {
            if outside(v.span) {
                v.value *= f;
            }
        };
        for m in &mut p.models {
            if let ModelKind::Decoder(d) = &mut m.kind {
                base(&mut d.rope_base);
            }
        }
        let tr = |t: &mut Option<Transition<f64>>| {
            if let Some(t) = t {
                if let Some(from) = &mut t.from {
                    base(from);
                }
                base(&mut t.to);
            }
        };
        for st in &mut p.stages {
            tr(&mut st.rope_base);
            for ph in &mut st.phases {
                tr(&mut ph.rope_base);
            }
        }
    }
    if let Some(root) = &s.data_root {
        p.data_root = Some(root.clone());
        p.sample_data = s.sample_data;
    }
}

fn scale_segments(segs: &mut [Segment], f: f64, own: Span) {
    let d = |x: &mut Sp<Duration>| {
        if own.contains(x.span.start) {
            return;
        }
        if let Duration::Tokens(t) = &mut x.value {
            *t *= f;
        }
    };
    for s in segs {
        for x in [&mut s.over, &mut s.until].into_iter().flatten() {
            d(x);
        }
        match &mut s.kind {
            SegmentKind::Cosine {
                warmup, horizon, ..
            } => {
                for x in [warmup, horizon].into_iter().flatten() {
                    d(x);
                }
            }
            SegmentKind::Wsd {
                warmup,
                decay,
                shape,
                ..
            } => {
                d(warmup);
                d(decay);
                if let DecayShape::Exponential { half_life } = shape {
                    d(half_life);
                }
            }
            SegmentKind::Exponential { half_life, .. } => d(half_life),
            SegmentKind::Constant { .. }
            | SegmentKind::Linear { .. }
            | SegmentKind::Rewarmup { .. } => {}
        }
    }
}
