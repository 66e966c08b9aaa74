//! Turns an error node into a located "expected ..." message by parsing its text again with
//! the strict rules (which have no catch-all) and reading pest's furthest failure.

use pest::Parser;
use pest::error::{ErrorVariant, InputLocation};

use super::ast::SyntaxError;
use super::lower::{PipeParser, Rule};
use super::span::Span;

pub(super) fn explain(text: &str, skipped: Span, strict: Rule) -> SyntaxError {
    let base = skipped.start;
    let (at, expected) = match PipeParser::parse(strict, text) {
        Ok(_) => (text.len(), vec![]),
        Err(e) => {
            let at = match e.location {
                InputLocation::Pos(p) => p,
                InputLocation::Span((s, _)) => s,
            };
            let expected = match &e.variant {
                ErrorVariant::ParsingError { positives, .. } => {
                    let mut v: Vec<String> = positives
                        .iter()
                        .filter_map(|r| describe(*r))
                        .map(String::from)
                        .collect();
                    v.sort();
                    v.dedup();
                    v
                }
                ErrorVariant::CustomError { .. } => vec![],
            };
            (at, expected)
        }
    };
    // The strict parse of an item sees the rest of the file; clamp to the region we skipped,
    // except when the item ran into the end of the file (a missing `}`).
    let at = if base + at > skipped.end && at < text.len() {
        skipped.end - base
    } else {
        at
    };
    let rest = &text[at.min(text.len())..];
    let found = match rest.chars().next() {
        None => "end of file".to_string(),
        Some('\n') => "end of line".to_string(),
        Some(_) => {
            let word: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace())
                .take(20)
                .collect();
            format!("`{word}`")
        }
    };
    let len = rest
        .chars()
        .next()
        .map_or(0, |c| if c == '\n' { 0 } else { c.len_utf8() });
    SyntaxError {
        span: Span::new(base + at, base + at + len),
        found,
        expected,
        skipped,
        key: field_key(text),
        note: None,
    }
}

/// `budget` of `budget = 1.5Q`.
fn field_key(text: &str) -> Option<String> {
    let t = text.trim_start();
    let end = t.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let (name, rest) = t.split_at(end);
    (!name.is_empty() && rest.trim_start().starts_with('=')).then(|| name.to_string())
}

fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::ident => "a name",
        Rule::eq => "`=`",
        Rule::arrow => "`->`",
        Rule::comma => "`,`",
        Rule::slash => "`/`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::value
        | Rule::transition
        | Rule::quantity
        | Rule::string
        | Rule::list
        | Rule::call
        | Rule::ratio => "a value",
        Rule::number => "a number",
        Rule::unit => "a unit (K, M, B, T or %)",
        Rule::steps => "`steps`",
        Rule::kw_after => "`after`",
        Rule::kw_then => "`then`",
        Rule::kw_by => "`by`",
        Rule::kw_scale => "`scale`",
        Rule::kw_pipeline
        | Rule::kw_model
        | Rule::kw_data
        | Rule::kw_schedule
        | Rule::kw_stage
        | Rule::kw_profile
        | Rule::kw_mix => {
            "an item (`pipeline`, `model`, `data`, `schedule`, `stage`, `profile` or `mix`)"
        }
        Rule::field | Rule::block_entry | Rule::scale_entry => "an entry (`name = value`)",
        Rule::EOI => "end of line",
        Rule::call_args => "`(`",
        Rule::body => "`{`",
        Rule::after_clause => "`after`",
        _ => return None,
    })
}
