//! Variants and soups. `stage mid after pretrain vary seed = [42, 42069, 666] { ... }` stands
//! for three stages, `mid[42]`, `mid[42069]` and `mid[666]`, one per value, that run side by
//! side from the same predecessors; `mid` names the group wherever a set of stages is meant
//! (`after mid`, `average(mid)`). `stage soup = average(mid)` is a stage that trains nothing:
//! its weights are the (weighted) mean of its inputs' final weights.
//!
//! The names are fixed before lowering (`names.rs` needs every stage's id), so the keys are
//! read from the syntax tree alone, here; what is wrong with a list is reported by
//! `Lower::variants`.

use crate::diag::{Code, Diagnostic};
use crate::syntax::{Expr, ExprKind, Span, StageItem, Suffix};

use super::ir::*;
use super::lower::Lower;
use super::names::{NameKind, suggestion};
use super::values;
use crate::schema::stage;

/// A value's key as the variant's name spells it: `42` in `mid[42]`, a name as written.
/// `None` for values that cannot be a key (shares, strings, lists).
pub fn key(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Quantity(q)
            if !q.steps && q.suffix != Suffix::Percent && q.number.is_finite() =>
        {
            Some(format!("{}{}", q.number, q.suffix.as_str()))
        }
        ExprKind::Ident(n) => Some(n.clone()),
        _ => None,
    }
}

/// The keys a stage expands into, each once, in written order; empty for a stage without
/// `vary` (or whose list holds no usable key: it stays one stage, and the list is reported).
pub fn keys(s: &StageItem) -> Vec<(String, Span)> {
    let Some(v) = &s.vary else { return vec![] };
    let ExprKind::List(items) = &v.values.kind else {
        return vec![];
    };
    let mut out: Vec<(String, Span)> = vec![];
    for e in items {
        if let Some(k) = key(e)
            && !out.iter().any(|(o, _)| *o == k)
        {
            out.push((k, e.span));
        }
    }
    out
}

/// `mid[42]`: the name of one variant, in diagnostics, plans and `after` lists.
pub fn name(group: &str, key: &str) -> String {
    format!("{group}[{key}]")
}

/// The spelling of a stage's name in file names (`mid-42`): no brackets, which shells glob.
/// Stage names are identifiers and keys hold no `-` of their own before the first, so the
/// spelling is unambiguous.
pub fn file_name(stage: &str) -> String {
    match stage.split_once('[') {
        Some((group, rest)) => format!("{group}-{}", rest.trim_end_matches(']')),
        None => stage.to_string(),
    }
}

impl Lower<'_> {
    /// The stages `base` expands into: the lowered stage once per key, each with its seed.
    /// Problems with the `vary` clause are reported here, once.
    pub fn variants(&mut self, s: &StageItem, base: Stage) -> Vec<Stage> {
        let Some(v) = &s.vary else {
            return vec![base];
        };
        let field = stage::VARYABLE
            .iter()
            .find(|f| f.name == v.field.name)
            .copied();
        match field {
            None => {
                let known = stage::BLOCK.fields.iter().any(|f| f.name == v.field.name);
                let names: Vec<&str> = stage::VARYABLE.iter().map(|f| f.name).collect();
                let msg = if known {
                    format!("`{}` cannot vary between variants", v.field.name)
                } else {
                    format!("a stage has no field `{}` to vary", v.field.name)
                };
                let mut help = suggestion(&v.field.name, names.clone(), "varyable field");
                if known {
                    help = format!(
                        "variants differ only in {}; declare a stage of its own for another `{}`",
                        names.join(", "),
                        v.field.name
                    );
                }
                self.diags.push(
                    Diagnostic::new(Code::VARY_FIELD, msg)
                        .label(v.field.span, "varied here")
                        .help(help),
                );
            }
            Some(f) => {
                if let Some(e) = s.body.entries.iter().find_map(|e| match e {
                    crate::syntax::Entry::Field(x) if x.key.name == f.name => Some(x),
                    _ => None,
                }) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::VARY_FIELD,
                            format!("`{}` is both varied and set in the stage", f.name),
                        )
                        .label(e.key.span, "set here")
                        .label(v.field.span, "varied here")
                        .help(format!("remove `{}` from the stage's body", f.name)),
                    );
                }
            }
        }
        let items: &[Expr] = match &v.values.kind {
            ExprKind::List(items) => items,
            _ => &[],
        };
        if items.is_empty() {
            self.diags.push(
                Diagnostic::new(
                    Code::VARY_EMPTY,
                    format!("`vary {}` lists no value", v.field.name),
                )
                .label(v.values.span, "no variant")
                .help("list one value per variant, e.g. `vary seed = [42, 43]`, or remove `vary`"),
            );
        }
        let mut seen: Vec<(String, Span)> = vec![];
        for e in items {
            let Some(k) = key(e) else {
                self.diags.push(
                    Diagnostic::new(
                        Code::VARY_EMPTY,
                        format!("{} cannot name a variant", values::found(e)),
                    )
                    .label(e.span, "not a variant value")
                    .help(format!(
                        "write whole numbers for `{}`: each names a variant, `{}[VALUE]`",
                        v.field.name, s.name.name
                    )),
                );
                continue;
            };
            if let Some((_, prev)) = seen.iter().find(|(o, _)| *o == k) {
                self.diags.push(
                    Diagnostic::new(
                        Code::VARY_DUPLICATE,
                        format!("`{}` is listed twice in `vary {}`", k, v.field.name),
                    )
                    .label(e.span, "listed again")
                    .label(*prev, "first listed here")
                    .help("variants with the same value would train the same thing: remove the repeat"),
                );
                continue;
            }
            seen.push((k, e.span));
        }
        let keys = keys(s);
        if keys.is_empty() {
            return vec![base];
        }
        let mut out = vec![];
        for (index, (k, span)) in keys.into_iter().enumerate() {
            let e = items
                .iter()
                .find(|e| e.span == span)
                .expect("a key comes from the list");
            let mut st = base.clone();
            st.name = name(&s.name.name, &k);
            if field.is_some() {
                st.seed = values::count(&mut self.diags, e, &v.field.name, 0);
            }
            st.variant = Some(Variant {
                group: s.name.name.clone(),
                key: k,
                index,
            });
            out.push(st);
        }
        out
    }

    /// `after a, mid`: the stages named, a group standing for all of its variants.
    pub fn stage_set(&mut self, name: &str, span: Span) -> Vec<Sp<StageId>> {
        let Some(first) = self.resolve_any::<StageId>(name, span, NameKind::Stage) else {
            return vec![];
        };
        let count = self.symbols.map.get(name).map_or(1, |s| s.count);
        (0..count)
            .map(|i| Sp::new(StageId::new(first.index() + i), span))
            .collect()
    }
}

impl Lower<'_> {
    /// `stage soup = average(a, b)` or `average(a = 60%, b = 40%)`: a stage without steps.
    pub fn soup(&mut self, s: &StageItem, a: &crate::syntax::Average) -> Stage {
        let at = s.name.span;
        for e in &s.body.entries {
            let (key, span) = match e {
                crate::syntax::Entry::Field(f) => (f.key.name.clone(), f.key.span),
                crate::syntax::Entry::Block(b) => (b.keyword.name.clone(), b.keyword.span),
                crate::syntax::Entry::Scale(x) => ("scale".to_string(), x.span),
            };
            let msg = if key == stage::BUDGET.name {
                format!("soup `{}` has a budget", s.name.name)
            } else {
                format!("soup `{}` sets `{key}`", s.name.name)
            };
            self.diags.push(
                Diagnostic::new(Code::SOUP_FIELDS, msg)
                    .label(span, "a soup trains nothing")
                    .label(a.span, "its weights are this average")
                    .help(
                        "a soup takes its models, shapes and hand-over from its inputs: remove \
                         the field, or train after the soup in a stage of its own \
                         (`stage NEXT after SOUP { ... }`)",
                    ),
            );
        }
        let unresolved = self.unresolved;
        let mut inputs: Vec<(Sp<StageId>, Option<Sp<f64>>)> = vec![];
        let weighted = a.inputs.iter().filter(|i| i.weight.is_some()).count();
        if weighted > 0 && weighted < a.inputs.len() {
            let bare = a
                .inputs
                .iter()
                .find(|i| i.weight.is_none())
                .expect("one is bare");
            self.diags.push(
                Diagnostic::new(
                    Code::AVERAGE_WEIGHTS,
                    format!("`{}` has no weight in the average", bare.stage.name),
                )
                .label(bare.stage.span, "no weight")
                .help("give every input a weight (`NAME = 50%`, adding up to 100%), or none for an even mean"),
            );
        }
        for i in &a.inputs {
            let weight = i
                .weight
                .as_ref()
                .and_then(|w| values::share(&mut self.diags, w, "average"));
            let set = self.stage_set(&i.stage.name, i.stage.span);
            // A weight on a group is shared evenly among its variants.
            let n = set.len() as f64;
            for id in set {
                if let Some((prev, _)) = inputs.iter().find(|(p, _)| p.value == id.value) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::AVERAGE_WEIGHTS,
                            format!("`{}` is averaged twice", i.stage.name),
                        )
                        .label(i.stage.span, "averaged again")
                        .label(prev.span, "first here")
                        .help("list each stage once; weights say how much each one counts"),
                    );
                    continue;
                }
                inputs.push((id, weight.map(|w| Sp::new(w.value / n, w.span))));
            }
        }
        let unknown_after = self.unresolved > unresolved;
        let total: f64 = inputs.iter().filter_map(|(_, w)| w.map(|w| w.value)).sum();
        if weighted == a.inputs.len() && !inputs.is_empty() && (total - 1.0).abs() > 1e-9 {
            self.diags.push(
                Diagnostic::new(
                    Code::AVERAGE_WEIGHTS,
                    format!(
                        "the weights of `{}` add up to {}%, not 100%",
                        s.name.name,
                        units_pct(total)
                    ),
                )
                .label(a.span, "weights here")
                .help("make the weights add up to 100%"),
            );
        }
        let n = inputs.len().max(1) as f64;
        let average = inputs
            .iter()
            .map(|(id, w)| (*id, w.map_or(1.0 / n, |w| w.value)))
            .collect::<Vec<_>>();
        Stage {
            name: s.name.name.clone(),
            name_span: at,
            span: s.span,
            header: Span::new(s.span.start, a.span.end),
            after: inputs.iter().map(|(id, _)| *id).collect(),
            train: vec![],
            freeze: vec![],
            budget: Sp::new(Budget::Tokens(0.0), at),
            batch: None,
            seq_len: None,
            rope_base: None,
            rope_scaling: None,
            loss: Sp::new(Loss::NextToken, at),
            lr: StageLr::Inline(vec![]),
            lr_span: at,
            mix: vec![],
            mix_span: at,
            phases: vec![],
            weights: vec![],
            checkpoint_every: None,
            optimizer: None,
            lr_scale: vec![],
            seed: None,
            unknown_models: unknown_after,
            unknown_after,
            variant: None,
            average: Some(average),
            averaging: None,
            branch: None,
        }
    }

    /// A soup's models are its inputs': every input must train the same models and freeze
    /// the same ones (same models, so the same shapes: the mean is taken tensor by tensor).
    pub fn soup_models(&mut self, p: &mut Pipeline) {
        for s in p.stages.indices() {
            let Some(inputs) = p.stages[s].average.clone() else {
                continue;
            };
            let Some(((first, _), rest)) = inputs.split_first() else {
                continue;
            };
            let set = |st: &Stage, frozen: bool| {
                let mut v: Vec<ModelId> = if frozen { &st.freeze } else { &st.train }
                    .iter()
                    .map(|m| m.value)
                    .collect();
                v.sort();
                v
            };
            let a = &p.stages[first.value];
            let (train_a, freeze_a) = (set(a, false), set(a, true));
            let names = |v: &[ModelId]| {
                let n: Vec<&str> = v.iter().map(|m| p.models[*m].name.as_str()).collect();
                if n.is_empty() {
                    "nothing".to_string()
                } else {
                    n.join(", ")
                }
            };
            for (other, _) in rest {
                let b = &p.stages[other.value];
                if b.unknown_models || a.unknown_models {
                    continue;
                }
                for (what, va, vb) in [
                    ("trains", &train_a, set(b, false)),
                    ("freezes", &freeze_a, set(b, true)),
                ] {
                    if *va != vb {
                        self.diags.push(
                            Diagnostic::new(
                                Code::AVERAGE_MISMATCH,
                                format!(
                                    "`{}` averages `{}` and `{}`, which do not train the same models",
                                    p.stages[s].name, a.name, b.name
                                ),
                            )
                            .label(other.span, format!("`{}` {what} {}", b.name, names(&vb)))
                            .label(first.span, format!("`{}` {what} {}", a.name, names(va)))
                            .help("average stages that train the same models (variants of one stage are)"),
                        );
                    }
                }
            }
            let span = p.stages[s].name_span;
            let (train, freeze) = (a.train.clone(), a.freeze.clone());
            let st = &mut p.stages[s];
            st.train = train.into_iter().map(|m| Sp::new(m.value, span)).collect();
            st.freeze = freeze.into_iter().map(|m| Sp::new(m.value, span)).collect();
        }
    }
}

fn units_pct(f: f64) -> String {
    super::units::trim(f * 100.0)
}
