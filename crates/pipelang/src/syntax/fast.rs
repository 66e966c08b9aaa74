//! The fast path: a hand-written PEG parser for files without syntax errors.
//!
//! It follows `grammar/pipe.pest` rule by rule, ordered choice, backtracking and pest's
//! implicit whitespace included (a skip between the elements of every non-atomic sequence,
//! kept even when the element after it matches nothing, so spans come out byte-identical),
//! but it has no error rules: the moment a file would need one, it returns `None` and the
//! pest parser, which owns recovery and the "expected ..." messages, parses the file
//! instead. pest stays the definition of the language; this only makes valid files cheap
//! (pest spends ~4 us per line on stack probes and call tracking). `tests/parser_agree.rs`
//! checks that both parsers give the same tree on every file it can find and on thousands
//! of mutations.

use super::ast::*;
use super::span::Span;

/// Parses `source` when it has no syntax error; `None` otherwise (or when it nests deeper
/// than [`MAX_DEPTH`]: pest has a stack guard for that, this parser does not recurse past it).
pub(crate) fn parse(source: &str) -> Option<File> {
    let mut p = P {
        src: source.as_bytes(),
        text: source,
        pos: 0,
        depth: 0,
    };
    let mut items = vec![];
    p.skip();
    while p.pos < p.src.len() {
        items.push(p.item()?);
        p.skip();
    }
    Some(File {
        items,
        errors: vec![],
    })
}

const MAX_DEPTH: usize = 64;

struct P<'s> {
    src: &'s [u8],
    text: &'s str,
    pos: usize,
    depth: usize,
}

fn ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'s> P<'s> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    /// pest's implicit `(WHITESPACE | COMMENT)*`.
    fn skip(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.pos += 1,
                Some(b'/') if self.src.get(self.pos + 1) == Some(&b'/') => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn punct(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.pos += 1)
    }

    /// `"word" ~ !ident_char`
    fn keyword(&mut self, word: &str) -> Option<()> {
        self.at_keyword(word).then(|| self.pos += word.len())
    }

    fn at_keyword(&self, word: &str) -> bool {
        let end = self.pos + word.len();
        self.src.get(self.pos..end) == Some(word.as_bytes())
            && !self.src.get(end).is_some_and(|&b| ident_char(b))
    }

    fn ident(&mut self) -> Option<Ident> {
        let start = self.pos;
        self.skip_ident()?;
        Some(self.ident_at(start, self.pos))
    }

    /// The identifier (or variant reference) the source holds at `start..end`.
    fn ident_at(&self, start: usize, end: usize) -> Ident {
        Ident {
            name: self.text[start..end].to_string(),
            span: Span::new(start, end),
        }
    }

    /// Moves past an identifier without making one (lookahead that may give it back).
    fn skip_ident(&mut self) -> Option<()> {
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => self.pos += 1,
            _ => return None,
        }
        while self.peek().is_some_and(ident_char) {
            self.pos += 1;
        }
        Some(())
    }

    /// Runs `f`; on failure puts the position back, as a PEG alternative does.
    fn attempt<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let save = self.pos;
        let r = f(self);
        if r.is_none() {
            self.pos = save;
        }
        r
    }

    fn nest<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    // ------------------------------------------------------------------ items

    /// Every item starts `keyword ~ ident`; what follows depends on the keyword.
    fn item(&mut self) -> Option<Item> {
        let start = self.pos;
        let kw = super::ITEM_KEYWORDS
            .iter()
            .copied()
            .find(|k| self.at_keyword(k))?;
        self.pos += kw.len();
        self.skip();
        let name = self.ident()?;
        self.skip();
        Some(match kw {
            "pipeline" => {
                let body = self.body()?;
                Item::Pipeline(PipelineItem {
                    name,
                    body,
                    span: self.from(start),
                })
            }
            "model" => {
                let kind = self.assigned_ident()?;
                let args = self.attempt(|p| p.call_args());
                self.skip();
                let body = self.body()?;
                Item::Model(ModelItem {
                    name,
                    kind,
                    args,
                    body,
                    span: self.from(start),
                })
            }
            "data" => {
                let kind = self.assigned_ident()?;
                let args = self.call_args()?;
                self.skip();
                let body = self.attempt(|p| p.body());
                Item::Data(DataItem {
                    name,
                    kind,
                    args,
                    body,
                    span: self.from(start),
                })
            }
            "schedule" => {
                self.eq()?;
                let value = self.value()?;
                Item::Schedule(ScheduleItem {
                    name,
                    value,
                    span: self.from(start),
                })
            }
            "stage" => {
                // `(average_clause ~ body? | after_clause? ~ vary_clause? ~ body)`
                if let Some(average) = self.attempt(|p| p.average_clause()) {
                    self.skip();
                    let body = self.attempt(|p| p.body());
                    let span = self.from(start);
                    return Some(Item::Stage(StageItem {
                        name,
                        after: vec![],
                        at: vec![],
                        vary: None,
                        average: Some(average),
                        body: body.unwrap_or(Body {
                            entries: vec![],
                            span: Span::new(span.end, span.end),
                        }),
                        span,
                    }));
                }
                let (after, at) = self
                    .attempt(|p| p.after_clause())
                    .unwrap_or_default()
                    .into_iter()
                    .unzip();
                self.skip();
                let vary = self.attempt(|p| p.vary_clause());
                self.skip();
                let body = self.body()?;
                Item::Stage(StageItem {
                    name,
                    after,
                    at,
                    vary,
                    average: None,
                    body,
                    span: self.from(start),
                })
            }
            "mix" => {
                let body = self.body()?;
                Item::Mix(MixItem {
                    name,
                    body,
                    span: self.from(start),
                })
            }
            _ => {
                let body = self.body()?;
                Item::Profile(ProfileItem {
                    name,
                    body,
                    span: self.from(start),
                })
            }
        })
    }

    /// The span from `start` to here.
    fn from(&self, start: usize) -> Span {
        Span::new(start, self.pos)
    }

    /// `eq`, and the skip after it.
    fn eq(&mut self) -> Option<()> {
        self.punct(b'=')?;
        self.skip();
        Some(())
    }

    /// `eq ~ ident` of `model NAME = decoder` and `data NAME = text`, and the skip after it.
    fn assigned_ident(&mut self) -> Option<Ident> {
        self.eq()?;
        let kind = self.ident()?;
        self.skip();
        Some(kind)
    }

    /// `kw_after ~ after_ref ~ (comma ~ after_ref)*`
    fn after_clause(&mut self) -> Option<Vec<(Ident, Option<BranchAt>)>> {
        self.keyword("after")?;
        self.skip();
        let mut names = vec![self.after_ref()?];
        self.skip();
        self.repeat(&mut names, |p| {
            p.punct(b',')?;
            p.skip();
            p.after_ref()
        });
        Some(names)
    }

    /// `@{ ident ~ ("[" ~ (ident_char | "." | "-")+ ~ "]")? }`: `mid`, `mid[42]`.
    fn stage_ref(&mut self) -> Option<Ident> {
        let start = self.pos;
        self.skip_ident()?;
        self.attempt(|p| {
            p.punct(b'[')?;
            let key = p.pos;
            while p
                .peek()
                .is_some_and(|b| ident_char(b) || b == b'.' || b == b'-')
            {
                p.pos += 1;
            }
            (p.pos > key).then_some(())?;
            p.punct(b']')
        });
        Some(self.ident_at(start, self.pos))
    }

    /// `kw_vary ~ ident ~ eq ~ list`
    fn vary_clause(&mut self) -> Option<Vary> {
        let start = self.pos;
        self.keyword("vary")?;
        self.skip();
        let field = self.ident()?;
        self.skip();
        self.eq()?;
        let values = self.list()?;
        Some(Vary {
            field,
            values,
            span: self.from(start),
        })
    }

    /// `eq ~ kw_average ~ lparen ~ average_input ~ (comma ~ average_input)* ~ comma? ~ rparen`
    fn average_clause(&mut self) -> Option<Average> {
        let start = self.pos;
        self.eq()?;
        self.keyword("average")?;
        self.skip();
        self.nest(|p| {
            p.punct(b'(')?;
            p.skip();
            let inputs = p.separated(|p| p.average_input())?;
            p.skip();
            p.punct(b')')?;
            Some(Average {
                inputs,
                span: p.from(start),
            })
        })
    }

    /// `stage_ref ~ (eq ~ value)?`
    fn average_input(&mut self) -> Option<AverageInput> {
        let start = self.pos;
        let stage = self.stage_ref()?;
        self.skip();
        let weight = self.attempt(|p| {
            p.eq()?;
            p.value()
        });
        Some(AverageInput {
            stage,
            weight,
            span: self.from(start),
        })
    }

    /// `stage_ref ~ branch_at?`: the skip before an absent `branch_at` is given back by the
    /// caller's sequence anyway, so only a present one keeps it.
    fn after_ref(&mut self) -> Option<(Ident, Option<BranchAt>)> {
        let name = self.stage_ref()?;
        let at = self.attempt(|p| {
            p.skip();
            p.branch_at()
        });
        Some((name, at))
    }

    /// `at_sign ~ (kw_end ~ minus ~ quantity | quantity)`
    fn branch_at(&mut self) -> Option<BranchAt> {
        let start = self.pos;
        self.punct(b'@')?;
        self.skip();
        let from_end = self
            .attempt(|p| {
                p.keyword("end")?;
                p.skip();
                p.punct(b'-')?;
                p.skip();
                Some(())
            })
            .is_some();
        let amount = self.quantity()?;
        Some(BranchAt {
            from_end,
            amount,
            span: self.from(start),
        })
    }

    /// `round*` after its first element: rounds after the first start with a skip, and a
    /// round that fails gives back what it consumed, skip included.
    fn repeat<T>(&mut self, out: &mut Vec<T>, mut round: impl FnMut(&mut Self) -> Option<T>) {
        match self.attempt(&mut round) {
            Some(v) => out.push(v),
            None => return,
        }
        while let Some(v) = self.attempt(|p| {
            p.skip();
            round(p)
        }) {
            out.push(v);
        }
    }

    /// `lbrace ~ entry* ~ rbrace`, where `entry = _{ (scale | field | block) ~ comma? }`.
    fn body(&mut self) -> Option<Body> {
        self.nest(|p| {
            let start = p.pos;
            p.punct(b'{')?;
            p.skip();
            let mut entries = vec![];
            // entry ~ (skip ~ entry)*: a round that fails gives its skip back, but the
            // sequence then skips before `}` anyway.
            while p.peek() != Some(b'}') {
                if p.starts_item() {
                    return None;
                }
                entries.push(p.entry()?);
                p.skip();
                p.punct(b',');
                p.skip();
            }
            p.punct(b'}')?;
            Some(Body {
                entries,
                span: p.from(start),
            })
        })
    }

    /// An entry at column 0 that starts with an item keyword is an unclosed block to pest's
    /// side of the house (`lower::starts_item`): leave it to the recovering parser.
    fn starts_item(&self) -> bool {
        let col0 = self.pos == 0 || self.src[self.pos - 1] == b'\n';
        col0 && super::starts_item(&self.src[self.pos..])
    }

    fn entry(&mut self) -> Option<Entry> {
        if let Some(s) = self.attempt(|p| p.scale_entry()) {
            return Some(Entry::Scale(s));
        }
        if let Some(f) = self.attempt(|p| p.field()) {
            return Some(Entry::Field(f));
        }
        self.attempt(|p| p.block_entry()).map(Entry::Block)
    }

    /// `kw_scale ~ ident ~ kw_by ~ value`
    fn scale_entry(&mut self) -> Option<ScaleEntry> {
        let start = self.pos;
        self.keyword("scale")?;
        self.skip();
        let what = self.ident()?;
        self.skip();
        self.keyword("by")?;
        self.skip();
        let factor = self.value()?;
        Some(ScaleEntry {
            what,
            factor,
            span: self.from(start),
        })
    }

    /// `ident ~ eq ~ value ~ body?`
    fn field(&mut self) -> Option<Field> {
        let start = self.pos;
        let key = self.ident()?;
        self.skip();
        self.eq()?;
        let value = self.value()?;
        self.skip();
        let body = self.attempt(|p| p.body());
        Some(Field {
            key,
            value,
            body,
            span: self.from(start),
        })
    }

    /// `ident ~ ident? ~ body`
    fn block_entry(&mut self) -> Option<BlockEntry> {
        let start = self.pos;
        let keyword = self.ident()?;
        self.skip();
        let name = self.attempt(|p| p.ident());
        self.skip();
        let body = self.body()?;
        Some(BlockEntry {
            keyword,
            name,
            body,
            span: self.from(start),
        })
    }

    // ------------------------------------------------------------------ values

    /// `lparen ~ (arg ~ (comma ~ arg)* ~ comma?)? ~ rparen`
    fn call_args(&mut self) -> Option<Args> {
        self.nest(|p| {
            let start = p.pos;
            p.punct(b'(')?;
            p.skip();
            let args = p.attempt(|p| p.separated(|p| p.arg())).unwrap_or_default();
            p.skip();
            p.punct(b')')?;
            Some(Args {
                args,
                span: p.from(start),
            })
        })
    }

    /// `x ~ (comma ~ x)* ~ comma?`, the optional group of argument lists and lists; `None`
    /// when not even one `x` (the caller's `attempt` then gives the position back).
    fn separated<T>(&mut self, mut x: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut out = vec![x(self)?];
        self.skip();
        self.repeat(&mut out, |p| {
            p.punct(b',')?;
            p.skip();
            x(p)
        });
        self.skip();
        self.punct(b',');
        Some(out)
    }

    /// `arg = { named_arg | value }`, `named_arg = { ident ~ eq ~ value }`
    fn arg(&mut self) -> Option<Arg> {
        let start = self.pos;
        if let Some((name, value)) = self.attempt(|p| {
            let name = p.ident()?;
            p.skip();
            p.eq()?;
            Some((name, p.value()?))
        }) {
            return Some(Arg {
                name: Some(name),
                value,
                span: self.from(start),
            });
        }
        let value = self.value()?;
        Some(Arg {
            name: None,
            value,
            span: self.from(start),
        })
    }

    /// `transition ~ (kw_then ~ transition)*`; one transition is not wrapped in a chain.
    fn value(&mut self) -> Option<Expr> {
        let start = self.pos;
        let first = self.transition()?;
        self.skip();
        // Most values are one transition: no vector for them.
        let then = |p: &mut Self| {
            p.keyword("then")?;
            p.skip();
            p.transition()
        };
        let Some(second) = self.attempt(then) else {
            return Some(first);
        };
        let mut parts = vec![first, second];
        while let Some(v) = self.attempt(|p| {
            p.skip();
            then(p)
        }) {
            parts.push(v);
        }
        Some(Expr {
            kind: ExprKind::Chain(parts),
            span: self.from(start),
        })
    }

    /// `term ~ (arrow ~ term)?`
    fn transition(&mut self) -> Option<Expr> {
        let start = self.pos;
        let from = self.term()?;
        self.skip();
        let to = self.attempt(|p| {
            p.punct(b'-')?;
            p.punct(b'>')?;
            p.skip();
            p.term()
        });
        Some(match to {
            Some(to) => Expr {
                kind: ExprKind::Transition(Box::new(from), Box::new(to)),
                span: self.from(start),
            },
            None => from,
        })
    }

    /// `ratio | quantity | string | list | call | ident`
    fn term(&mut self) -> Option<Expr> {
        let start = self.pos;
        // `ratio | quantity`: both start with a quantity, read once.
        if let Some(a) = self.attempt(|p| p.quantity()) {
            let b = self.attempt(|p| {
                p.skip();
                p.punct(b'/')?;
                p.skip();
                p.quantity()
            });
            return Some(match b {
                Some(b) => self.expr(ExprKind::Ratio(Box::new(a), Box::new(b)), start),
                None => a,
            });
        }
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                while self.peek().is_some_and(|b| b != b'"' && b != b'\n') {
                    self.pos += 1;
                }
                let inner = self.text[start + 1..self.pos].to_string();
                self.punct(b'"')?;
                Some(self.expr(ExprKind::Str(inner), start))
            }
            b'[' => self.list(),
            _ => {
                self.skip_ident()?;
                let after_name = self.pos;
                self.skip();
                // `call` needs its `(`: only then is the name worth a string of its own.
                let args = match self.peek() {
                    Some(b'(') => self.attempt(|p| p.call_args()),
                    _ => None,
                };
                match args {
                    Some(args) => {
                        let name = self.ident_at(start, after_name);
                        Some(self.expr(ExprKind::Call { name, args }, start))
                    }
                    None => {
                        // `variant | ident`: the variant is the ident and its `[key]`.
                        self.pos = start;
                        let full = self.stage_ref()?;
                        if full.span.end == after_name {
                            self.pos = after_name;
                        }
                        Some(self.expr(ExprKind::Ident(full.name), start))
                    }
                }
            }
        }
    }

    /// `lbracket ~ (value ~ (comma ~ value)* ~ comma?)? ~ rbracket`
    fn list(&mut self) -> Option<Expr> {
        let start = self.pos;
        self.nest(|p| {
            p.punct(b'[')?;
            p.skip();
            let items = p
                .attempt(|p| p.separated(|p| p.value()))
                .unwrap_or_default();
            p.skip();
            p.punct(b']')?;
            Some(p.expr(ExprKind::List(items), start))
        })
    }

    fn expr(&self, kind: ExprKind, start: usize) -> Expr {
        Expr {
            kind,
            span: self.from(start),
        }
    }

    /// `${ number ~ unit? ~ !ident_char ~ steps? }`, no skipping inside.
    fn quantity(&mut self) -> Option<Expr> {
        let start = self.pos;
        let number_end = self.number()?;
        let suffix = self
            .peek()
            .and_then(|b| Suffix::from_char(b as char))
            .unwrap_or(Suffix::None);
        if suffix != Suffix::None {
            self.pos += 1;
        }
        if self.peek().is_some_and(ident_char) {
            return None;
        }
        let steps = self
            .attempt(|p| {
                let ws = p.pos;
                while matches!(p.peek(), Some(b' ' | b'\t')) {
                    p.pos += 1;
                }
                (p.pos > ws).then_some(())?;
                p.keyword(crate::check::units::STEPS)
            })
            .is_some();
        let digits = &self.text[start..number_end];
        let number = if digits.contains('_') {
            digits.replace('_', "").parse()
        } else {
            digits.parse()
        }
        .unwrap_or(f64::NAN);
        Some(self.expr(
            ExprKind::Quantity(Quantity {
                number,
                suffix,
                steps,
            }),
            start,
        ))
    }

    /// `"-"? ~ digits ~ ("." ~ digits)? ~ (^"e" ~ ("+" | "-")? ~ ASCII_DIGIT+)?`; returns
    /// where the number ends.
    fn number(&mut self) -> Option<usize> {
        self.attempt(|p| {
            p.punct(b'-');
            p.digits()?;
            p.attempt(|p| {
                p.punct(b'.')?;
                p.digits()
            });
            p.attempt(|p| {
                p.peek().filter(|b| matches!(b, b'e' | b'E'))?;
                p.pos += 1;
                if matches!(p.peek(), Some(b'+' | b'-')) {
                    p.pos += 1;
                }
                let d = p.pos;
                while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                    p.pos += 1;
                }
                (p.pos > d).then_some(())
            });
            Some(p.pos)
        })
    }

    /// `ASCII_DIGIT ~ ("_"? ~ ASCII_DIGIT)*`
    fn digits(&mut self) -> Option<()> {
        self.peek().filter(u8::is_ascii_digit)?;
        self.pos += 1;
        loop {
            match (self.peek(), self.src.get(self.pos + 1)) {
                (Some(b'0'..=b'9'), _) => self.pos += 1,
                (Some(b'_'), Some(b'0'..=b'9')) => self.pos += 2,
                _ => return Some(()),
            }
        }
    }
}
