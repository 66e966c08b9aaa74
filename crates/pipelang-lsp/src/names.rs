//! Where each declared name (model, data source, schedule, stage, mixture) is declared and used, read
//! off the syntax tree. Works on half-typed files: whatever parsed is indexed.

use std::collections::HashMap;

use pipelang::check::names::NameKind;
use pipelang::syntax::{Body, Entry, Expr, ExprKind, File, Item, Span};

#[derive(Debug, Clone)]
pub struct Decl {
    pub kind: NameKind,
    /// The name in its declaration.
    pub name_span: Span,
    /// The whole item.
    pub item_span: Span,
}

#[derive(Debug, Clone)]
pub struct Occurrence {
    pub name: String,
    pub span: Span,
    pub is_decl: bool,
}

#[derive(Debug, Default, Clone)]
pub struct Names {
    /// The first declaration of each name (a second one is the checker's P0102).
    pub decls: HashMap<String, Decl>,
    /// Declarations and uses, in source order.
    pub occurrences: Vec<Occurrence>,
}

impl Names {
    pub fn new(file: &File) -> Names {
        let mut n = Names::default();
        for item in &file.items {
            let kind = match item {
                Item::Model(_) => NameKind::Model,
                Item::Data(_) => NameKind::Data,
                Item::Schedule(_) => NameKind::Schedule,
                Item::Stage(_) => NameKind::Stage,
                Item::Mix(_) => NameKind::Mixture,
                _ => continue,
            };
            let name = item.name();
            n.decls.entry(name.name.clone()).or_insert(Decl {
                kind,
                name_span: name.span,
                item_span: item.span(),
            });
            n.occurrences.push(Occurrence {
                name: name.name.clone(),
                span: name.span,
                is_decl: true,
            });
        }
        for item in &file.items {
            match item {
                Item::Model(m) => {
                    for a in m.args.iter().flat_map(|a| &a.args) {
                        n.expr(&a.value);
                    }
                    n.body(&m.body, false, false);
                }
                Item::Data(d) => {
                    if let Some(b) = &d.body {
                        n.body(b, false, false);
                    }
                }
                Item::Schedule(s) => n.expr(&s.value),
                Item::Stage(s) => {
                    for a in &s.after {
                        n.reference(&a.name, a.span);
                    }
                    n.body(&s.body, false, false);
                }
                Item::Pipeline(p) => n.body(&p.body, false, false),
                Item::Profile(p) => n.body(&p.body, false, true),
                Item::Mix(m) => n.body(&m.body, true, false),
            }
        }
        n.occurrences.sort_by_key(|o| o.span.start);
        n
    }

    /// Keys in a mixture are data sources, mixtures or stages (or group names); `weights { llm =
    /// stage }` keys are models; `model NAME { ... }`, `stage NAME { ... }` and `mix NAME { ... }`
    /// in a profile name items.
    fn body(&mut self, body: &Body, keys_are_names: bool, in_profile: bool) {
        for e in &body.entries {
            match e {
                Entry::Field(f) => {
                    if keys_are_names {
                        self.reference(&f.key.name, f.key.span);
                    }
                    self.expr(&f.value);
                    if let Some(b) = &f.body {
                        self.body(b, keys_are_names, false);
                    }
                }
                Entry::Block(b) => {
                    if let (true, Some(name)) = (in_profile, &b.name) {
                        self.reference(&name.name, name.span);
                    }
                    let names = matches!(b.keyword.name.as_str(), "mix" | "weights");
                    self.body(&b.body, names, false);
                }
                Entry::Scale(s) => self.expr(&s.factor),
            }
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Ident(name) => self.reference(name, e.span),
            ExprKind::Call { args, .. } => {
                for a in &args.args {
                    self.expr(&a.value);
                }
            }
            ExprKind::List(xs) | ExprKind::Chain(xs) => xs.iter().for_each(|x| self.expr(x)),
            ExprKind::Transition(a, b) | ExprKind::Ratio(a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Quantity(_) | ExprKind::Str(_) => {}
        }
    }

    /// Only declared names are indexed: `rest`, `resume` and function names are not names.
    fn reference(&mut self, name: &str, span: Span) {
        if self.decls.contains_key(name) {
            self.occurrences.push(Occurrence {
                name: name.to_string(),
                span,
                is_decl: false,
            });
        }
    }

    /// The occurrence under a byte offset (a cursor just after a name counts).
    pub fn at(&self, offset: usize) -> Option<&Occurrence> {
        self.occurrences.iter().find(|o| o.span.contains(offset))
    }

    pub fn of(&self, name: &str) -> impl Iterator<Item = &Occurrence> {
        self.occurrences.iter().filter(move |o| o.name == name)
    }

    pub fn names_of(&self, kind: NameKind) -> Vec<&str> {
        let mut v: Vec<(&str, usize)> = self
            .decls
            .iter()
            .filter(|(_, d)| d.kind == kind)
            .map(|(n, d)| (n.as_str(), d.name_span.start))
            .collect();
        v.sort_by_key(|&(_, at)| at);
        v.into_iter().map(|(n, _)| n).collect()
    }
}
