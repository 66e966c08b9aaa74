//! pest pairs -> AST. The grammar guarantees the shape of every pair it produced, so the
//! `next()` calls below follow the grammar rule by rule.

use pest::Parser;
use pest::iterators::{Pair, Pairs};

use super::ast::*;
use super::explain::explain;
use super::span::Span;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/pipe.pest"]
pub(crate) struct PipeParser;

pub(crate) fn parse_file(source: &str) -> File {
    let mut file = File::default();
    let mut pairs = match PipeParser::parse(Rule::file, source) {
        Ok(p) => p,
        // The grammar has catch-all rules at every level, so this is not expected; report it
        // as one error over the whole file rather than panicking.
        Err(e) => {
            let at = match e.location {
                pest::error::InputLocation::Pos(p) => p,
                pest::error::InputLocation::Span((s, _)) => s,
            };
            file.errors.push(SyntaxError {
                span: Span::new(at, at),
                found: "this text".into(),
                expected: vec![],
                skipped: Span::new(0, source.len()),
                key: None,
                note: None,
            });
            return file;
        }
    };
    let mut cx = Lower {
        source,
        errors: vec![],
        reparse: vec![],
        unclosed_reported: false,
    };
    let top = pairs.next().map(|f| f.into_inner()).into_iter().flatten();
    for pair in top {
        let item = match pair.as_rule() {
            Rule::pipeline_item => cx.pipeline(pair),
            Rule::model_item => cx.model(pair),
            Rule::data_item => cx.data(pair),
            Rule::schedule_item => cx.schedule(pair),
            Rule::stage_item => cx.stage(pair),
            Rule::profile_item => cx.profile(pair),
            Rule::mix_item => cx.mix(pair),
            Rule::error_item => {
                cx.error(pair, Rule::strict_item);
                continue;
            }
            _ => continue,
        };
        file.items.push(item);
    }
    // Items swallowed by a block that was never closed are parsed again on their own: the
    // text before them is blanked (same length, so every offset stays true).
    for (from, to) in std::mem::take(&mut cx.reparse) {
        let blanked: String = " ".repeat(from) + &source[from..to];
        let sub = parse_file(&blanked);
        file.items.extend(sub.items);
        cx.errors.extend(sub.errors);
    }
    file.items.sort_by_key(|i| i.span().start);
    file.errors = cx.errors;
    file.errors.sort_by_key(|e| e.span.start);
    // A re-parsed region that runs to the end of the file reports the same unclosed end again.
    file.errors
        .dedup_by(|a, b| a.span == b.span && a.found == b.found && a.expected == b.expected);
    file
}

/// An entry at column 0 that starts like an item: the block around it was not closed.
fn starts_item(source: &str, p: &Pair<Rule>) -> bool {
    let start = p.as_span().start();
    let at_col0 = start == 0 || source.as_bytes()[start - 1] == b'\n';
    at_col0 && super::starts_item(p.as_str().as_bytes())
}

struct Lower<'s> {
    source: &'s str,
    errors: Vec<SyntaxError>,
    /// Regions to parse again as items: (start, end) byte offsets.
    reparse: Vec<(usize, usize)>,
    /// Whether the file's end inside a block has been reported (once, not per open `{`).
    unclosed_reported: bool,
}

fn span(p: &Pair<Rule>) -> Span {
    p.as_span().into()
}

fn ident(p: Pair<Rule>) -> Ident {
    Ident {
        name: p.as_str().to_string(),
        span: span(&p),
    }
}

/// Skips keywords and punctuation, which carry no information once the rule matched.
fn meaningful(pairs: Pairs<Rule>) -> impl Iterator<Item = Pair<Rule>> {
    pairs.filter(|p| {
        !matches!(
            p.as_rule(),
            Rule::kw_pipeline
                | Rule::kw_model
                | Rule::kw_data
                | Rule::kw_schedule
                | Rule::kw_stage
                | Rule::kw_profile
                | Rule::kw_mix
                | Rule::kw_after
                | Rule::kw_then
                | Rule::kw_scale
                | Rule::kw_by
                | Rule::kw_vary
                | Rule::kw_average
                | Rule::kw_end
                | Rule::at_sign
                | Rule::minus
                | Rule::eq
                | Rule::arrow
                | Rule::comma
                | Rule::slash
                | Rule::lbrace
                | Rule::rbrace
                | Rule::lparen
                | Rule::rparen
                | Rule::lbracket
                | Rule::rbracket
        )
    })
}

impl<'s> Lower<'s> {
    fn error(&mut self, pair: Pair<Rule>, strict: Rule) {
        let skipped = span(&pair);
        // Explain against the rest of the file, so a missing `}` is found where it is due.
        let text = if strict == Rule::strict_item {
            &self.source[skipped.start..]
        } else {
            pair.as_str()
        };
        self.errors.push(explain(text, skipped, strict));
    }

    fn pipeline(&mut self, pair: Pair<Rule>) -> Item {
        let sp = span(&pair);
        let mut it = meaningful(pair.into_inner());
        let name = ident(it.next().unwrap());
        let body = self.body(it.next().unwrap());
        Item::Pipeline(PipelineItem {
            name,
            body,
            span: sp,
        })
    }

    fn model(&mut self, pair: Pair<Rule>) -> Item {
        let sp = span(&pair);
        let mut it = meaningful(pair.into_inner()).peekable();
        let name = ident(it.next().unwrap());
        let kind = ident(it.next().unwrap());
        let args = match it.peek().map(|p| p.as_rule()) {
            Some(Rule::call_args) => Some(self.args(it.next().unwrap())),
            _ => None,
        };
        let body = self.body(it.next().unwrap());
        Item::Model(ModelItem {
            name,
            kind,
            args,
            body,
            span: sp,
        })
    }

    fn data(&mut self, pair: Pair<Rule>) -> Item {
        let sp = span(&pair);
        let mut it = meaningful(pair.into_inner());
        let name = ident(it.next().unwrap());
        let kind = ident(it.next().unwrap());
        let args = self.args(it.next().unwrap());
        let body = it.next().map(|b| self.body(b));
        Item::Data(DataItem {
            name,
            kind,
            args,
            body,
            span: sp,
        })
    }

    fn schedule(&mut self, pair: Pair<Rule>) -> Item {
        let sp = span(&pair);
        let mut it = meaningful(pair.into_inner());
        let name = ident(it.next().unwrap());
        let value = self.value(it.next().unwrap());
        Item::Schedule(ScheduleItem {
            name,
            value,
            span: sp,
        })
    }

    fn stage(&mut self, pair: Pair<Rule>) -> Item {
        let sp = span(&pair);
        let mut name = None;
        let mut after = vec![];
        let mut vary = None;
        let mut average = None;
        let mut at = vec![];
        let mut body = None;
        for p in meaningful(pair.into_inner()) {
            match p.as_rule() {
                Rule::ident => name = Some(ident(p)),
                Rule::after_clause => {
                    for r in meaningful(p.into_inner()) {
                        let mut it = r.into_inner();
                        after.push(ident(it.next().unwrap()));
                        at.push(it.next().map(branch_at));
                    }
                }
                Rule::vary_clause => {
                    let vsp = span(&p);
                    let mut it = meaningful(p.into_inner());
                    let field = ident(it.next().unwrap());
                    let values = self.term(it.next().unwrap());
                    vary = Some(Vary {
                        field,
                        values,
                        span: vsp,
                    });
                }
                Rule::average_clause => {
                    let asp = span(&p);
                    let mut inputs = vec![];
                    for q in meaningful(p.into_inner()) {
                        match q.as_rule() {
                            Rule::average_input => {
                                let isp = span(&q);
                                let mut it = meaningful(q.into_inner());
                                let stage = ident(it.next().unwrap());
                                let weight = it.next().map(|v| self.value(v));
                                inputs.push(AverageInput {
                                    stage,
                                    weight,
                                    span: isp,
                                });
                            }
                            _ => {}
                        }
                    }
                    average = Some(Average { inputs, span: asp });
                }
                Rule::body => body = Some(self.body(p)),
                _ => {}
            }
        }
        let body = body.unwrap_or(Body {
            entries: vec![],
            span: Span::new(sp.end, sp.end),
        });
        Item::Stage(StageItem {
            name: name.unwrap(),
            after,
            vary,
            average,
            at,
            body,
            span: sp,
        })
    }

    fn profile(&mut self, pair: Pair<Rule>) -> Item {
        let sp = span(&pair);
        let mut it = meaningful(pair.into_inner());
        let name = ident(it.next().unwrap());
        let body = self.body(it.next().unwrap());
        Item::Profile(ProfileItem {
            name,
            body,
            span: sp,
        })
    }

    fn mix(&mut self, pair: Pair<Rule>) -> Item {
        let sp = span(&pair);
        let mut it = meaningful(pair.into_inner());
        let name = ident(it.next().unwrap());
        let body = self.body(it.next().unwrap());
        Item::Mix(MixItem {
            name,
            body,
            span: sp,
        })
    }

    fn body(&mut self, pair: Pair<Rule>) -> Body {
        let mut sp = span(&pair);
        let mut entries = vec![];
        for p in meaningful(pair.into_inner()) {
            if starts_item(self.source, &p) {
                let at = p.as_span().start();
                let word: String = p
                    .as_str()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                self.errors.push(SyntaxError {
                    span: Span::new(at, at + word.len()),
                    found: format!("`{word}`"),
                    expected: vec!["`}`".into()],
                    skipped: Span::new(at, at),
                    key: None,
                    note: Some((
                        Span::new(sp.start, sp.start + 1),
                        "this `{` is never closed".into(),
                    )),
                });
                self.reparse.push((at, sp.end));
                sp = Span::new(sp.start, at);
                break;
            }
            match p.as_rule() {
                Rule::field => entries.push(Entry::Field(self.field(p))),
                Rule::block_entry => {
                    let bsp = span(&p);
                    let mut it = meaningful(p.into_inner()).peekable();
                    let keyword = ident(it.next().unwrap());
                    let name = match it.peek().map(|p| p.as_rule()) {
                        Some(Rule::ident) => Some(ident(it.next().unwrap())),
                        _ => None,
                    };
                    let body = self.body(it.next().unwrap());
                    entries.push(Entry::Block(BlockEntry {
                        keyword,
                        name,
                        body,
                        span: bsp,
                    }));
                }
                Rule::scale_entry => {
                    let ssp = span(&p);
                    let mut it = meaningful(p.into_inner());
                    let what = ident(it.next().unwrap());
                    let factor = self.value(it.next().unwrap());
                    entries.push(Entry::Scale(ScaleEntry {
                        what,
                        factor,
                        span: ssp,
                    }));
                }
                Rule::error_entry => self.error(p, Rule::strict_entry),
                // One error for the file's end, at the innermost `{`: closing it comes first.
                Rule::unclosed if !self.unclosed_reported => {
                    self.unclosed_reported = true;
                    let end = self.source.len();
                    self.errors.push(SyntaxError {
                        span: Span::new(end, end),
                        found: "end of file".into(),
                        expected: vec!["`}`".into()],
                        skipped: Span::new(end, end),
                        key: None,
                        note: Some((
                            Span::new(sp.start, sp.start + 1),
                            "this `{` is never closed".into(),
                        )),
                    });
                }
                _ => {}
            }
        }
        Body { entries, span: sp }
    }

    fn field(&mut self, pair: Pair<Rule>) -> Field {
        let sp = span(&pair);
        let mut it = meaningful(pair.into_inner());
        let key = ident(it.next().unwrap());
        let value = self.value(it.next().unwrap());
        let body = it.next().map(|b| self.body(b));
        Field {
            key,
            value,
            body,
            span: sp,
        }
    }

    fn args(&mut self, pair: Pair<Rule>) -> Args {
        let sp = span(&pair);
        let args = meaningful(pair.into_inner())
            .map(|arg| {
                let asp = span(&arg);
                let inner = arg.into_inner().next().unwrap();
                match inner.as_rule() {
                    Rule::named_arg => {
                        let mut it = meaningful(inner.into_inner());
                        let name = Some(ident(it.next().unwrap()));
                        let value = self.value(it.next().unwrap());
                        Arg {
                            name,
                            value,
                            span: asp,
                        }
                    }
                    _ => Arg {
                        name: None,
                        value: self.value(inner),
                        span: asp,
                    },
                }
            })
            .collect();
        Args { args, span: sp }
    }

    /// `value = transition (then transition)*`: a single transition is not wrapped in a chain.
    fn value(&mut self, pair: Pair<Rule>) -> Expr {
        let sp = span(&pair);
        let mut parts: Vec<Expr> = meaningful(pair.into_inner())
            .map(|t| self.transition(t))
            .collect();
        if parts.len() == 1 {
            parts.pop().unwrap()
        } else {
            Expr {
                kind: ExprKind::Chain(parts),
                span: sp,
            }
        }
    }

    fn transition(&mut self, pair: Pair<Rule>) -> Expr {
        let sp = span(&pair);
        let mut it = meaningful(pair.into_inner());
        let from = self.term(it.next().unwrap());
        match it.next() {
            Some(to) => {
                let to = self.term(to);
                Expr {
                    kind: ExprKind::Transition(Box::new(from), Box::new(to)),
                    span: sp,
                }
            }
            None => from,
        }
    }

    fn term(&mut self, pair: Pair<Rule>) -> Expr {
        let sp = span(&pair);
        let kind = match pair.as_rule() {
            Rule::quantity => ExprKind::Quantity(quantity(pair)),
            Rule::ratio => {
                let mut it = meaningful(pair.into_inner());
                let a = self.term(it.next().unwrap());
                let b = self.term(it.next().unwrap());
                ExprKind::Ratio(Box::new(a), Box::new(b))
            }
            Rule::string => ExprKind::Str(
                pair.into_inner()
                    .next()
                    .map_or(String::new(), |s| s.as_str().to_string()),
            ),
            Rule::list => ExprKind::List(
                meaningful(pair.into_inner())
                    .map(|v| self.value(v))
                    .collect(),
            ),
            Rule::call => {
                let mut it = meaningful(pair.into_inner());
                let name = ident(it.next().unwrap());
                let args = self.args(it.next().unwrap());
                ExprKind::Call { name, args }
            }
            Rule::ident | Rule::variant => ExprKind::Ident(pair.as_str().to_string()),
            r => unreachable!("term rule {r:?}"),
        };
        Expr { kind, span: sp }
    }
}

/// `at_sign ~ (kw_end ~ minus ~ quantity | quantity)`
fn branch_at(pair: Pair<Rule>) -> BranchAt {
    let sp = span(&pair);
    let inner: Vec<Pair<Rule>> = pair.into_inner().collect();
    let from_end = inner.iter().any(|p| p.as_rule() == Rule::kw_end);
    let q = inner
        .into_iter()
        .find(|p| p.as_rule() == Rule::quantity)
        .unwrap();
    BranchAt {
        from_end,
        amount: Expr {
            span: span(&q),
            kind: ExprKind::Quantity(quantity(q)),
        },
        span: sp,
    }
}

fn quantity(pair: Pair<Rule>) -> Quantity {
    let mut q = Quantity {
        number: 0.0,
        suffix: Suffix::None,
        steps: false,
    };
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::number => q.number = p.as_str().replace('_', "").parse().unwrap_or(f64::NAN),
            Rule::unit => {
                q.suffix = p
                    .as_str()
                    .chars()
                    .next()
                    .and_then(Suffix::from_char)
                    .expect("the grammar's units are K, M, B, T and %")
            }
            Rule::steps => q.steps = true,
            _ => {}
        }
    }
    q
}
