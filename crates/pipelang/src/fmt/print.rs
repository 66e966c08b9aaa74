//! The syntax tree -> lines of canonical layout, each tagged with the source span it prints
//! so that comments and blank lines can be put back by position afterwards (`layout`).
//!
//! The layout is the reference recipe's: two-space indentation; within a run of fields the
//! `=` signs line up (a blank line, or a field with a multi-line body, ends the run); runs of
//! one-line `data`/`schedule` items line up their `=`; runs of one-line named blocks
//! (`phase a { ... }`) line up their `{` and, where their fields agree, their columns. A body
//! written on one line stays on one line, and a `then` chain written over several lines keeps
//! one segment per line with `then` right-aligned to the value.

use super::comments::Comment;
use super::expr::{args, expr};
use crate::syntax::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    /// Ends with the `{` of a multi-line body.
    Open,
    /// A body's closing `}`.
    Close,
    /// A later segment of a multi-line `then` chain.
    Continuation,
}

#[derive(Debug, Clone)]
pub struct Line {
    /// In spaces.
    pub indent: usize,
    pub text: String,
    /// The source this line prints.
    pub src: Span,
    pub kind: Kind,
}

pub struct Printer<'a> {
    src: &'a str,
    comments: &'a [Comment],
    pub lines: Vec<Line>,
}

const INDENT: usize = 2;

impl<'a> Printer<'a> {
    pub fn new(src: &'a str, comments: &'a [Comment]) -> Self {
        Printer {
            src,
            comments,
            lines: vec![],
        }
    }

    pub fn file(&mut self, file: &File) {
        let items = &file.items;
        let mut i = 0;
        while i < items.len() {
            let Some(kw) = one_line_item(self.src, &items[i]) else {
                self.item(&items[i], 0);
                i += 1;
                continue;
            };
            let mut j = i + 1;
            while j < items.len()
                && one_line_item(self.src, &items[j]) == Some(kw)
                && !self.blank_between(items[j - 1].span().end, items[j].span().start)
            {
                j += 1;
            }
            let width = items[i..j].iter().map(|it| it.name().name.len()).max();
            for it in &items[i..j] {
                self.item(it, width.unwrap_or(0));
            }
            i = j;
        }
    }

    fn item(&mut self, item: &Item, name_width: usize) {
        let head = format!("{} {:<name_width$}", item.keyword(), item.name().name);
        let start = item.span().start;
        match item {
            Item::Pipeline(p) => self.with_body(0, head, start, start, Some(&p.body)),
            Item::Profile(p) => self.with_body(0, head, start, start, Some(&p.body)),
            Item::Mix(m) => self.with_body(0, head, start, start, Some(&m.body)),
            Item::Model(m) => {
                let mut head = format!("{head} = {}", m.kind.name);
                if let Some(a) = &m.args {
                    head += &args(self.src, a);
                }
                self.with_body(0, head, start, start, Some(&m.body));
            }
            Item::Data(d) => {
                let head = format!("{head} = {}{}", d.kind.name, args(self.src, &d.args));
                self.with_body(0, head, start, start, d.body.as_ref());
            }
            Item::Schedule(s) => self.valued(0, format!("{head} = "), start, &s.value, None),
            Item::Stage(s) => {
                let mut head = head;
                if !s.after.is_empty() {
                    let after: Vec<String> = s
                        .after
                        .iter()
                        .zip(&s.at)
                        .map(|(a, at)| match at {
                            None => a.name.clone(),
                            Some(b) => {
                                let end = if b.from_end { "end - " } else { "" };
                                format!("{} @ {end}{}", a.name, expr(self.src, &b.amount))
                            }
                        })
                        .collect();
                    head = format!("{head} after {}", after.join(", "));
                }
                if let Some(v) = &s.vary {
                    head = format!(
                        "{head} vary {} = {}",
                        v.field.name,
                        expr(self.src, &v.values)
                    );
                }
                if let Some(a) = &s.average {
                    let inputs: Vec<String> = a
                        .inputs
                        .iter()
                        .map(|i| match &i.weight {
                            Some(w) => format!("{} = {}", i.stage.name, expr(self.src, w)),
                            None => i.stage.name.clone(),
                        })
                        .collect();
                    head = format!("{head} = average({})", inputs.join(", "));
                }
                // A soup written without a body keeps none.
                let body = (s.average.is_none() || !s.body.span.is_empty()).then_some(&s.body);
                self.with_body(0, head, start, start, body);
            }
        }
    }

    /// `head` followed by a value (a multi-line chain keeps one segment per line), then an
    /// optional body.
    fn valued(&mut self, indent: usize, head: String, start: usize, v: &Expr, body: Option<&Body>) {
        match &v.kind {
            ExprKind::Chain(parts) if chain_broken(self.src, v) => {
                let col = indent + head.chars().count();
                let then_indent = col.saturating_sub("then ".len());
                self.push(
                    indent,
                    head + &expr(self.src, &parts[0]),
                    start,
                    parts[0].span.end,
                    Kind::Plain,
                );
                let (last, middle) = parts[1..].split_last().expect("a chain has 2+ parts");
                for p in middle {
                    let text = format!("then {}", expr(self.src, p));
                    self.push(
                        then_indent,
                        text,
                        p.span.start,
                        p.span.end,
                        Kind::Continuation,
                    );
                }
                let text = format!("then {}", expr(self.src, last));
                self.with_body(then_indent, text, last.span.start, last.span.end, body);
            }
            _ => {
                let text = head + &expr(self.src, v);
                self.with_body(indent, text, start, v.span.end, body);
            }
        }
    }

    /// `head`, then the body: `{}`, `{ a = 1, b = 2 }` or one entry per line.
    fn with_body(
        &mut self,
        indent: usize,
        head: String,
        start: usize,
        head_end: usize,
        body: Option<&Body>,
    ) {
        let Some(body) = body else {
            self.push(indent, head, start, head_end, Kind::Plain);
            return;
        };
        if self.inline(body) {
            let text = format!("{head} {}", self.inline_body(body));
            self.push(indent, text, start, body.span.end, Kind::Plain);
            return;
        }
        self.push(indent, head + " {", start, body.span.start + 1, Kind::Open);
        self.entries(body, indent + INDENT);
        let close = body.span.end.saturating_sub(1);
        self.push(indent, "}".into(), close, body.span.end, Kind::Close);
    }

    fn entries(&mut self, body: &Body, indent: usize) {
        let es = &body.entries;
        let mut i = 0;
        while i < es.len() {
            let j = self.group_end(es, i);
            match &es[i] {
                Entry::Field(_) => {
                    let w = es[i..j].iter().map(key_len).max().unwrap_or(0);
                    for e in &es[i..j] {
                        if let Entry::Field(f) = e {
                            let head = format!("{:<w$} = ", f.key.name);
                            self.valued(indent, head, f.span.start, &f.value, f.body.as_ref());
                        }
                    }
                }
                Entry::Scale(_) => {
                    let w = es[i..j].iter().map(key_len).max().unwrap_or(0);
                    for e in &es[i..j] {
                        if let Entry::Scale(s) = e {
                            let factor = expr(self.src, &s.factor);
                            let text = format!("scale {:<w$} by {factor}", s.what.name);
                            self.push(indent, text, s.span.start, s.span.end, Kind::Plain);
                        }
                    }
                }
                Entry::Block(_) if j - i > 1 => self.block_rows(&es[i..j], indent),
                Entry::Block(b) => {
                    let head = block_head(b);
                    self.with_body(indent, head, b.span.start, b.span.start, Some(&b.body));
                }
            }
            i = j;
        }
    }

    /// The end (exclusive) of the run of entries that align with `es[i]`.
    fn group_end(&self, es: &[Entry], i: usize) -> usize {
        let mut j = i + 1;
        while j < es.len() && !self.blank_between(es[j - 1].span().end, es[j].span().start) {
            let joins = match (&es[j - 1], &es[j]) {
                (Entry::Field(a), Entry::Field(_)) => !self.field_multi_line(a),
                (Entry::Scale(_), Entry::Scale(_)) => true,
                (Entry::Block(a), Entry::Block(b)) => {
                    a.keyword.name == b.keyword.name
                        && a.name.is_some()
                        && b.name.is_some()
                        && self.inline(&a.body)
                        && self.inline(&b.body)
                }
                _ => false,
            };
            if !joins {
                break;
            }
            j += 1;
        }
        j
    }

    /// One-line named blocks, one per line: heads padded so the `{` line up, and each column
    /// padded while every row has the same fields up to it (`phase a { budget = 10%, batch = 1024, ...`).
    fn block_rows(&mut self, rows: &[Entry], indent: usize) {
        let blocks: Vec<&BlockEntry> = rows
            .iter()
            .filter_map(|e| match e {
                Entry::Block(b) => Some(b),
                _ => None,
            })
            .collect();
        let heads: Vec<String> = blocks.iter().map(|b| block_head(b)).collect();
        let head_w = heads.iter().map(|h| h.len()).max().unwrap_or(0);
        let cells: Vec<Vec<(String, String)>> = blocks
            .iter()
            .map(|b| {
                b.body
                    .entries
                    .iter()
                    .map(|e| (entry_key(e), self.inline_entry(e)))
                    .collect()
            })
            .collect();
        let max_cols = cells.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![None; max_cols];
        for (col, width) in widths.iter_mut().enumerate() {
            let agree = cells
                .iter()
                .all(|r| r.len() > col && (0..=col).all(|c| r[c].0 == cells[0][c].0));
            if !agree {
                break;
            }
            *width = cells
                .iter()
                .filter(|r| r.len() > col + 1)
                .map(|r| r[col].1.chars().count())
                .max();
        }
        for ((b, head), row) in blocks.iter().zip(&heads).zip(&cells) {
            let text = if row.is_empty() {
                format!("{head:<head_w$} {{}}")
            } else {
                let mut parts = String::new();
                for (col, (_, cell)) in row.iter().enumerate() {
                    if col + 1 == row.len() {
                        parts += cell;
                    } else {
                        let w = widths.get(col).copied().flatten().unwrap_or(0);
                        let cell = format!("{cell},");
                        parts += &format!("{cell:<w$} ", w = w + 1);
                    }
                }
                format!("{head:<head_w$} {{ {parts} }}")
            };
            self.push(indent, text, b.span.start, b.span.end, Kind::Plain);
        }
    }

    fn inline_body(&self, body: &Body) -> String {
        if body.entries.is_empty() {
            return "{}".into();
        }
        let parts: Vec<String> = body.entries.iter().map(|e| self.inline_entry(e)).collect();
        format!("{{ {} }}", parts.join(", "))
    }

    fn inline_entry(&self, e: &Entry) -> String {
        match e {
            Entry::Field(f) => {
                let mut s = format!("{} = {}", f.key.name, expr(self.src, &f.value));
                if let Some(b) = &f.body {
                    s = format!("{s} {}", self.inline_body(b));
                }
                s
            }
            Entry::Block(b) => format!("{} {}", block_head(b), self.inline_body(&b.body)),
            Entry::Scale(s) => format!("scale {} by {}", s.what.name, expr(self.src, &s.factor)),
        }
    }

    fn push(&mut self, indent: usize, text: String, start: usize, end: usize, kind: Kind) {
        self.lines.push(Line {
            indent,
            text,
            src: Span::new(start, end.max(start)),
            kind,
        });
    }

    /// A body stays on one line when written on one line with no comment inside.
    fn inline(&self, body: &Body) -> bool {
        (body.entries.is_empty() || !self.multi_line(body.span))
            && !self
                .comments
                .iter()
                .any(|c| body.span.contains(c.span.start))
    }

    fn field_multi_line(&self, f: &Field) -> bool {
        f.body.as_ref().is_some_and(|b| !self.inline(b)) || chain_broken(self.src, &f.value)
    }

    fn multi_line(&self, span: Span) -> bool {
        self.src[span.start..span.end].contains('\n')
    }

    /// A line with nothing but whitespace lies between the two offsets.
    pub fn blank_between(&self, a: usize, b: usize) -> bool {
        let text = &self.src[a.min(b)..b];
        let segments: Vec<&str> = text.split('\n').collect();
        segments.len() > 2
            && segments[1..segments.len() - 1]
                .iter()
                .any(|s| s.trim().is_empty())
    }
}

/// `data`/`schedule` items written on one line line up with their neighbours.
fn one_line_item(src: &str, item: &Item) -> Option<&'static str> {
    match item {
        Item::Data(d) if d.body.is_none() => Some("data"),
        Item::Schedule(s) if !chain_broken(src, &s.value) => Some("schedule"),
        _ => None,
    }
}

/// A `then` chain written over several lines (a value's span may run past its last token, so
/// the parts' starts decide).
fn chain_broken(src: &str, v: &Expr) -> bool {
    match &v.kind {
        ExprKind::Chain(parts) if parts.len() > 1 => {
            src[parts[0].span.start..parts[parts.len() - 1].span.start].contains('\n')
        }
        _ => false,
    }
}

fn block_head(b: &BlockEntry) -> String {
    match &b.name {
        Some(n) => format!("{} {}", b.keyword.name, n.name),
        None => b.keyword.name.clone(),
    }
}

fn key_len(e: &Entry) -> usize {
    match e {
        Entry::Field(f) => f.key.name.len(),
        Entry::Scale(s) => s.what.name.len(),
        Entry::Block(b) => block_head(b).len(),
    }
}

fn entry_key(e: &Entry) -> String {
    match e {
        Entry::Field(f) => f.key.name.clone(),
        Entry::Scale(s) => format!("scale {}", s.what.name),
        Entry::Block(b) => block_head(b),
    }
}
