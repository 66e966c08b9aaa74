//! One namespace for models, data sources, schedules, stages and named mixtures (so `resume(x)` can name a
//! schedule or a stage without ambiguity), and "did you mean" suggestions.

use foldhash::{HashMap, HashMapExt};

use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::syntax::{File, Item, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Model,
    Data,
    Schedule,
    Stage,
    /// `mix NAME { ... }`
    Mixture,
}

impl NameKind {
    pub fn word(self) -> &'static str {
        match self {
            NameKind::Model => "model",
            NameKind::Data => "data source",
            NameKind::Schedule => "schedule",
            NameKind::Stage => "stage",
            NameKind::Mixture => "mixture",
        }
    }

    pub fn article(self) -> &'static str {
        match self {
            NameKind::Model => "a model",
            NameKind::Data => "a data source",
            NameKind::Schedule => "a schedule",
            NameKind::Stage => "a stage",
            NameKind::Mixture => "a mixture",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Symbol {
    pub kind: NameKind,
    /// Index among the items of its kind, in written order.
    pub id: usize,
    /// How many ids the name stands for: the variants of a group (`mid` of
    /// `vary seed = [...]`) are `id .. id + count`; 1 for every other name.
    pub count: usize,
    pub span: Span,
}

#[derive(Debug, Default)]
pub struct Symbols {
    pub map: HashMap<String, Symbol>,
}

impl Symbols {
    pub fn collect(file: &File, diags: &mut Diagnostics) -> Symbols {
        let mut map: HashMap<String, Symbol> = HashMap::new();
        let mut counts = [0usize; 5];
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
            if let Some(prev) = map.get(&name.name) {
                diags.push(
                    Diagnostic::new(Code::DUPLICATE, format!("`{}` is declared twice", name.name))
                        .label(name.span, format!("second declaration of `{}`", name.name))
                        .label(prev.span, "first declared here")
                        .help("models, data sources, schedules, stages and mixtures share one namespace: rename one of them"),
                );
                continue;
            }
            let id = counts[kind as usize];
            let keys = match item {
                Item::Stage(s) => super::variants::keys(s),
                _ => vec![],
            };
            let count = keys.len().max(1);
            counts[kind as usize] += count;
            map.insert(
                name.name.clone(),
                Symbol {
                    kind,
                    id,
                    count,
                    span: name.span,
                },
            );
            for (i, (key, span)) in keys.iter().enumerate() {
                map.insert(
                    super::variants::name(&name.name, key),
                    Symbol {
                        kind,
                        id: id + i,
                        count: 1,
                        span: *span,
                    },
                );
            }
        }
        Symbols { map }
    }

    pub fn names_of(&self, kind: NameKind) -> impl Iterator<Item = &str> {
        self.map
            .iter()
            .filter(move |(_, s)| s.kind == kind)
            .map(|(n, _)| n.as_str())
    }
}

/// The closest candidate, if close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        // One edit away counts as close however short the names (`lm` for `llm`).
        let one_edit = c.len().max(name.len()) >= 2 && strsim::levenshtein(name, c) <= 1;
        let score = strsim::jaro_winkler(name, c).max(if one_edit { 0.81 } else { 0.0 });
        if score > 0.8 && best.is_none_or(|(s, b)| score > s || (score == s && c < b)) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// "did you mean `x`?" help text, or a list of what exists.
pub fn suggestion<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
    what: &str,
) -> String {
    if let Some(s) = did_you_mean(name, candidates.clone()) {
        return format!("did you mean `{s}`?");
    }
    let mut all: Vec<&str> = candidates.into_iter().collect();
    all.sort();
    if all.is_empty() {
        format!("no {what} is declared")
    } else {
        format!("declared {what}s: {}", all.join(", "))
    }
}
