//! Mixtures: a stage's `mix { ... }`, `mix = NAME` or `data = SOURCE`, and named mixtures
//! (`mix NAME { ... }`). A reference to a mixture, or to a stage (meaning that stage's
//! mixture), is copied in as a group whose members are the referenced mixture's nodes: nested
//! shares multiply, so `mix { long = 40%, stage4 = rest }` is stage 4's mixture scaled down
//! to 60%. Each mixture is lowered once, so its problems are reported once, at its own text;
//! every reference reuses the result. After lowering a copied mixture is a group like any
//! other: the planner, the engines and the runtime see no difference.

use foldhash::HashMap;

use crate::diag::{Code, Diagnostic, Fix};
use crate::syntax::{Body, Entry, Expr, ExprKind, Item, Span};

use super::ir::*;
use super::lower::Lower;
use super::names::{NameKind, did_you_mean};
use super::values;
use crate::schema::stage;

/// What an entry of a mixture may name.
const IN_MIX: &[NameKind] = &[NameKind::Data, NameKind::Mixture, NameKind::Stage];
/// What `mix = NAME` may name.
const MIX_FIELD: &[NameKind] = &[NameKind::Mixture, NameKind::Stage];

/// A mixture being lowered (a reference to it closes a cycle) or lowered (`None`: it had
/// errors, reported at its text; a reference copies nothing and reports nothing more).
#[derive(Debug, Clone)]
pub enum MixState {
    Busy,
    Done(Option<Vec<MixNode>>),
}

#[derive(Debug, Default)]
pub struct Mixtures {
    pub state: HashMap<String, MixState>,
    /// The mixtures being lowered, outermost first, each with the span that entered it.
    stack: Vec<(String, Span)>,
}

pub enum Ref {
    Source(DataId),
    /// The nodes of the referenced mixture (empty when it cannot be copied).
    Copy(Vec<MixNode>),
}

impl Lower<'_> {
    /// A named mixture, lowered once (diagnostics at its own text).
    pub fn named_mix(&mut self, m: &crate::syntax::MixItem) -> NamedMix {
        NamedMix {
            name: m.name.name.clone(),
            name_span: m.name.span,
            span: m.span,
            nodes: self.mixture(&m.name.name, m.name.span).unwrap_or_default(),
        }
    }

    /// The mixture of this name (a `mix NAME` item or a stage's), lowering it the first time.
    /// The caller has made sure it is not being lowered (that would be a cycle).
    pub fn mixture(&mut self, name: &str, via: Span) -> Option<Vec<MixNode>> {
        if let Some(MixState::Done(r)) = self.mixes.state.get(name) {
            return r.clone();
        }
        self.mixes.state.insert(name.to_string(), MixState::Busy);
        self.mixes.stack.push((name.to_string(), via));
        let file = self.file;
        let item = self.items.get(name).map(|&i| &file.items[i]);
        let r = match item {
            Some(Item::Mix(m)) => Some(self.mix_level(&m.body)),
            Some(Item::Stage(s)) => self.stage_mix(&s.body),
            _ => None,
        };
        self.mixes.stack.pop();
        if let Some(state) = self.mixes.state.get_mut(name) {
            *state = MixState::Done(r.clone());
        }
        r
    }

    /// A stage's own mixture, read from the first of `mix { ... }`, `mix = NAME` and
    /// `data = SOURCE` it writes (the stage reports writing more than one).
    fn stage_mix(&mut self, body: &Body) -> Option<Vec<MixNode>> {
        let block = body.entries.iter().find_map(|e| match e {
            Entry::Block(b) if b.keyword.name == stage::MIX.name && b.name.is_none() => Some(b),
            _ => None,
        });
        if let Some(b) = block {
            return Some(self.mix_level(&b.body));
        }
        let field = |key: &str| {
            body.entries.iter().find_map(|e| match e {
                Entry::Field(f) if f.key.name == key => Some(f),
                _ => None,
            })
        };
        if let Some(f) = field(stage::MIX.name) {
            let name = match &f.value.kind {
                ExprKind::Ident(n) => n.clone(),
                _ => {
                    values::mismatch(&mut self.diags, &f.value, stage::MIX.ty, stage::MIX.name);
                    return None;
                }
            };
            let Some(Ref::Copy(nodes)) = self.mix_ref(&name, f.value.span, MIX_FIELD) else {
                return None;
            };
            return Some(vec![MixNode {
                name: name.clone(),
                span: f.value.span,
                weight: Sp::new(Weight::Fixed(1.0), f.value.span),
                target: MixTarget::Group(nodes),
                copy_of: Some(name),
            }]);
        }
        let d = field(stage::DATA.name)?;
        if let Some(n) = d.value.as_ident()
            && let Some(sym) = self.symbols.map.get(n).copied()
            && sym.kind == NameKind::Mixture
        {
            self.mark_used(n);
            self.diags.push(
                Diagnostic::new(
                    Code::WRONG_NAME_KIND,
                    format!("`{n}` is a mixture, not a data source"),
                )
                .label(d.value.span, "a data source is due here")
                .label(sym.span, format!("`{n}` is declared here as a mixture"))
                .help(format!("a stage uses a named mixture with `mix = {n}`"))
                .fix(Some(Fix::replace(
                    format!("write `mix = {n}`"),
                    d.key.span,
                    stage::MIX.name,
                ))),
            );
            return None;
        }
        let id = self.ident_ref(&d.value, stage::DATA.name, NameKind::Data)?;
        Some(vec![MixNode {
            name: d.value.as_ident().unwrap_or_default().to_string(),
            span: d.value.span,
            weight: Sp::new(Weight::Fixed(1.0), d.value.span),
            target: MixTarget::Source(id.value),
            copy_of: None,
        }])
    }

    /// A name in a mixture (or after `mix =`): a source, or a mixture to copy. A stage's
    /// mixture is copied only when it has no ramp (which part of its ramp would be meant?).
    pub fn mix_ref(&mut self, name: &str, span: Span, want: &[NameKind]) -> Option<Ref> {
        let Some(sym) = self.resolve_among(name, span, want) else {
            return None;
        };
        if sym.kind == NameKind::Data {
            return Some(Ref::Source(DataId::new(sym.id)));
        }
        if matches!(self.mixes.state.get(name), Some(MixState::Busy)) {
            self.cycle(name, span);
            return Some(Ref::Copy(vec![]));
        }
        let nodes = self.mixture(name, span).unwrap_or_default();
        if sym.kind == NameKind::Stage
            && let Some(ramp) = first_ramp(&nodes)
        {
            self.diags.push(
                Diagnostic::new(
                    Code::MIX_STAGE_RAMP,
                    format!("stage `{name}`'s mixture ramps, so it cannot be copied"),
                )
                .label(span, "copies the mixture of a stage")
                .label(ramp, "this share changes over that stage")
                .help(format!(
                    "write the shares meant as a `mix NAME {{ ... }}` and use it here and in `{name}`, or copy `{name}`'s shares at the point meant"
                )),
            );
            return Some(Ref::Copy(vec![]));
        }
        Some(Ref::Copy(nodes))
    }

    fn cycle(&mut self, name: &str, span: Span) {
        let from = self
            .mixes
            .stack
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or(0);
        let chain: Vec<(String, Span)> = self.mixes.stack[from..].to_vec();
        let mut path: Vec<&str> = chain.iter().map(|(n, _)| n.as_str()).collect();
        path.push(name);
        let what = match self.symbols.map.get(name).map(|s| s.kind) {
            Some(NameKind::Stage) => format!("the mixture of stage `{name}`"),
            _ => format!("mixture `{name}`"),
        };
        let mut d = Diagnostic::new(
            Code::MIX_CYCLE,
            format!("{what} refers to itself: {}", path.join(" -> ")),
        )
        .label(span, format!("`{name}` again"));
        // The first entry is where lowering began (the declaration); the others are the
        // references that lead back here.
        for (n, s) in chain.iter().skip(1) {
            d = d.label(*s, format!("`{n}` used here"));
        }
        self.diags.push(d.help(
            "a mixture cannot contain itself: write the shares out, or move the shared part into a mixture of its own",
        ));
    }

    /// Resolves a name that may be of any of `want` kinds (one kind: as `resolve`).
    pub fn resolve_among(
        &mut self,
        name: &str,
        span: Span,
        want: &[NameKind],
    ) -> Option<super::names::Symbol> {
        self.mark_used(name);
        let candidates = |l: &Lower| -> Vec<String> {
            want.iter()
                .flat_map(|k| l.symbols.names_of(*k))
                .map(str::to_string)
                .collect()
        };
        let words = |sep: &str, plural: &str| {
            let w: Vec<String> = want
                .iter()
                .map(|k| format!("{}{plural}", k.word()))
                .collect();
            match w.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("{}{sep}{last}", rest.join(", "))
                }
                _ => w.join(""),
            }
        };
        match self.symbols.map.get(name).copied() {
            Some(s) if want.contains(&s.kind) => Some(s),
            found => {
                let cands = candidates(self);
                let meant =
                    did_you_mean(name, cands.iter().map(String::as_str)).map(str::to_string);
                let fix = meant.clone().map(|to| Fix::rename(span, &to));
                let help = match &meant {
                    Some(m) => format!("did you mean `{m}`?"),
                    None => {
                        let mut all = cands.clone();
                        all.sort();
                        format!("declared {}: {}", words(" and ", "s"), all.join(", "))
                    }
                };
                let one = words(" or ", "");
                let d = match found {
                    Some(s) => Diagnostic::new(
                        Code::WRONG_NAME_KIND,
                        format!("`{name}` is {}, not a {one}", s.kind.article()),
                    )
                    .label(span, format!("a {one} is due here"))
                    .label(
                        s.span,
                        format!("`{name}` is declared here as {}", s.kind.article()),
                    ),
                    None => {
                        // The name meant is used: no "never used" warning on top of the cause.
                        if let Some(m) = &meant {
                            self.mark_used(m);
                        }
                        self.unresolved += 1;
                        Diagnostic::new(
                            Code::UNDECLARED,
                            format!("`{name}` is not declared as a {one}"),
                        )
                        .label(span, "not declared")
                    }
                };
                self.diags.push(d.help(help).fix(fix));
                None
            }
        }
    }

    /// One level of a mixture: `name = share` for a source or a copied mixture,
    /// `name = share { ... }` for a group.
    fn mix_level(&mut self, body: &Body) -> Vec<MixNode> {
        let mut out: Vec<MixNode> = vec![];
        for e in &body.entries {
            let Entry::Field(x) = e else {
                self.diags.push(
                    Diagnostic::new(Code::UNKNOWN_FIELD, "a mixture holds `name = share` entries")
                        .label(e.span(), "not a mixture entry")
                        .help("write `source = 40%`, `source = rest`, `source = ramp(0% -> 40%)`, `group = 25% { ... }` or `mixture = 60%`"),
                );
                continue;
            };
            if let Some(prev) = out.iter().find(|n| n.name == x.key.name) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DUPLICATE,
                        format!("`{}` appears twice in this mixture", x.key.name),
                    )
                    .label(x.key.span, "again here")
                    .label(prev.span, "first here")
                    .help("give each source and each mixture one share"),
                );
                continue;
            }
            let weight = self.weight(&x.value);
            let (target, copy_of) = match &x.body {
                Some(b) => (Some(MixTarget::Group(self.mix_level(b))), None),
                None => match self.mix_ref(&x.key.name, x.key.span, IN_MIX) {
                    Some(Ref::Source(d)) => (Some(MixTarget::Source(d)), None),
                    Some(Ref::Copy(nodes)) => {
                        (Some(MixTarget::Group(nodes)), Some(x.key.name.clone()))
                    }
                    // Reported at the name; its share still counts, so the level's sum
                    // is not reported as well.
                    None => (Some(MixTarget::Group(vec![])), Some(x.key.name.clone())),
                },
            };
            if let (Some(weight), Some(target)) = (weight, target) {
                out.push(MixNode {
                    name: x.key.name.clone(),
                    span: x.key.span,
                    weight,
                    target,
                    copy_of,
                });
            }
        }
        out
    }

    fn weight(&mut self, e: &Expr) -> Option<Sp<Weight>> {
        match &e.kind {
            ExprKind::Ident(n) if n == "rest" => Some(Sp::new(Weight::Rest, e.span)),
            ExprKind::Call { name, args } if name.name == "ramp" => {
                let a = self.bind(name, args, &["shares"], &["shares"]);
                let x = a[0]?;
                match &x.kind {
                    ExprKind::Transition(from, to) => {
                        let from = values::share(&mut self.diags, from, "ramp");
                        let to = values::share(&mut self.diags, to, "ramp");
                        Some(Sp::new(Weight::Ramp(from?.value, to?.value), e.span))
                    }
                    _ => {
                        self.diags.push(
                            Diagnostic::new(Code::TYPE, "`ramp` takes a transition of shares")
                                .label(x.span, format!("this is {}", values::found(x)))
                                .help("write `ramp(0% -> 40%)`"),
                        );
                        None
                    }
                }
            }
            ExprKind::Quantity(_) => values::share(&mut self.diags, e, "share")
                .map(|v| Sp::new(Weight::Fixed(v.value), e.span)),
            _ => {
                self.diags.push(
                    Diagnostic::new(
                        Code::TYPE,
                        format!(
                            "a mixture share expects a percentage, found {}",
                            values::found(e)
                        ),
                    )
                    .label(e.span, "not a share")
                    .help("write `40%`, `rest` or `ramp(0% -> 40%)`"),
                );
                None
            }
        }
    }
}

/// The span of the first ramp in a mixture, at any depth.
fn first_ramp(nodes: &[MixNode]) -> Option<Span> {
    nodes
        .iter()
        .find_map(|n| match (&n.weight.value, &n.target) {
            (Weight::Ramp(..), _) => Some(n.weight.span),
            (_, MixTarget::Group(g)) => first_ramp(g),
            _ => None,
        })
}
