//! Completion from the text before the cursor, read with a small lexer (not the parser: the
//! line being typed rarely parses). The enclosing blocks say which fields are valid; the
//! statement typed so far says whether a field name, a keyword or a declared name goes here.

use lsp_types::{CompletionItem, CompletionItemKind};

use super::document::Document;
use pipelang::check::LR_FUNCTIONS;
use pipelang::check::names::NameKind;
use pipelang::schema::{self, Block, Scale, data, decoder, phase, pipeline, profile, stage};
use pipelang::syntax::Item;

// Fields come from `pipelang::schema`, the tables lowering reads; tests/lsp_completion.rs checks
// that what is offered is what `check()` accepts, and the other way round.
pub const ITEM_KEYWORDS: &[&str] = &[
    "pipeline", "model", "data", "schedule", "stage", "profile", "mix",
];

/// Named arguments of the LR functions (`pipelang::schema::lr`, the table lowering binds with),
/// of the RoPE scalings (`pipelang::schema::rope`) and of `coca(...)`.
/// `key` is the field being written: `linear(` is a RoPE scaling under `rope_scaling`, an LR
/// function elsewhere.
fn arg_names(key: Option<&str>, function: &str) -> Vec<&'static str> {
    if key == Some(decoder::ROPE_SCALING.name)
        && let Some(k) = pipelang::schema::rope::kind(function)
    {
        return k.args.iter().map(|a| a.name).collect();
    }
    if let Some(f) = pipelang::schema::lr::function(function) {
        return f.params.to_vec();
    }
    match function {
        "coca" => vec!["caption_weight"],
        "resume" => vec!["from"],
        _ => vec![],
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Ctx {
    Top,
    Pipeline,
    Model(String),
    Data,
    Stage,
    Phase,
    Mix,
    Weights,
    Profile,
    /// `model NAME { ... }` in a profile: the fields of NAME's kind.
    ProfileModel(String),
    ProfileStage,
    Other,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
    /// Numbers, strings, `->`, `/`, `%`: nothing completion looks at.
    Other,
}

pub fn complete(doc: &Document, offset: usize) -> Vec<CompletionItem> {
    let src = &doc.text[..offset.min(doc.text.len())];
    let word_start = src
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
        .last()
        .map_or(src.len(), |(i, _)| i);
    let toks = lex(&src[..word_start]);
    let (ctx, stmt, open) = context(&toks);
    let mut out = Out::default();

    if let Some((bracket, callee)) = open.last() {
        let after_sep = matches!(stmt.last(), Some(Tok::Punct('(' | ',' | '[')));
        match (*bracket, callee.as_deref()) {
            ('(', Some("resume")) => {
                out.names(doc, NameKind::Schedule);
                out.names(doc, NameKind::Stage);
            }
            ('(', Some("projector")) => out.names(doc, NameKind::Model),
            // `image_text("laion/*.tar", |)`: a data source takes its block's fields as arguments.
            ('(', Some(f)) if after_sep && data::KINDS.contains(&f) => out.fields(&data::BLOCK),
            ('(', Some(f)) if after_sep => out.words(
                &arg_names(key(&stmt).as_deref(), f),
                CompletionItemKind::PROPERTY,
            ),
            ('[', _) if matches!(key(&stmt).as_deref(), Some("train" | "freeze")) => {
                out.names(doc, NameKind::Model)
            }
            _ => {}
        }
        return out.items;
    }

    let words: Vec<&str> = stmt
        .iter()
        .map(|t| match t {
            Tok::Ident(s) => s.as_str(),
            Tok::Punct('=') => "=",
            _ => "",
        })
        .collect();
    match (&ctx, words.as_slice()) {
        (_, []) => entry_words(doc, &ctx, &mut out),
        (Ctx::Top, ["model", _, "="]) => {
            let kinds: Vec<&str> = schema::MODELS.iter().map(|b| b.keyword).collect();
            out.words(&kinds, CompletionItemKind::CLASS)
        }
        (Ctx::Top, ["data", _, "="]) => out.words(data::KINDS, CompletionItemKind::CLASS),
        (Ctx::Top, ["schedule", _, "=", ..]) => {
            out.words(LR_FUNCTIONS, CompletionItemKind::FUNCTION)
        }
        (Ctx::Top, ["stage", _]) => out.words(&["after"], CompletionItemKind::KEYWORD),
        (Ctx::Top, ["stage", _, "after", ..]) => out.names(doc, NameKind::Stage),
        (Ctx::Profile, ["scale"]) => {
            let targets = Scale::TARGETS.map(Scale::target);
            out.words(&targets, CompletionItemKind::PROPERTY)
        }
        (Ctx::Profile, ["scale", _]) => out.words(&["by"], CompletionItemKind::KEYWORD),
        (Ctx::Profile, ["model"]) => out.names(doc, NameKind::Model),
        (Ctx::Profile, ["stage"]) => out.names(doc, NameKind::Stage),
        (Ctx::Profile, ["mix"]) => out.names(doc, NameKind::Mixture),
        (Ctx::Stage | Ctx::Other, ["lr", "=", .., "then"]) => {
            out.words(LR_FUNCTIONS, CompletionItemKind::FUNCTION)
        }
        (_, [k, "=", ..]) => values(doc, &ctx, k, &mut out),
        _ => {}
    }
    out.items
}

fn key(stmt: &[Tok]) -> Option<String> {
    match stmt {
        [Tok::Ident(k), Tok::Punct('='), ..] => Some(k.clone()),
        _ => None,
    }
}

fn entry_words(doc: &Document, ctx: &Ctx, out: &mut Out) {
    match ctx {
        Ctx::Top => out.words(ITEM_KEYWORDS, CompletionItemKind::KEYWORD),
        Ctx::Pipeline => out.block(&pipeline::BLOCK),
        Ctx::Model(kind) => out.model(kind),
        Ctx::Data => out.block(&data::BLOCK),
        Ctx::Stage => out.block(&stage::BLOCK),
        Ctx::Phase => out.block(&phase::BLOCK),
        // A source, or a mixture (named or a stage's) to copy in as a group.
        Ctx::Mix => {
            out.names(doc, NameKind::Data);
            out.names(doc, NameKind::Mixture);
            out.names(doc, NameKind::Stage);
        }
        Ctx::Weights => out.names(doc, NameKind::Model),
        Ctx::Profile => out.block(&profile::BLOCK),
        Ctx::ProfileModel(name) => {
            let kind = doc.checked.file.items.iter().find_map(|i| match i {
                Item::Model(m) if m.name.name == *name => Some(m.kind.name.as_str()),
                _ => None,
            });
            out.model(kind.unwrap_or(""));
        }
        // A profile's stage block changes fields; its blocks are offered inside a stage.
        Ctx::ProfileStage => out.fields(&stage::BLOCK),
        Ctx::Other => {}
    }
}

/// What goes after `key =`.
fn values(doc: &Document, ctx: &Ctx, key: &str, out: &mut Out) {
    match (ctx, key) {
        (Ctx::Mix, _) => out.words(&["rest", "ramp"], CompletionItemKind::KEYWORD),
        (Ctx::Weights, _) => out.names(doc, NameKind::Stage),
        (_, "train" | "freeze") => out.names(doc, NameKind::Model),
        (_, "data") => out.names(doc, NameKind::Data),
        (_, "mix") => {
            out.names(doc, NameKind::Mixture);
            out.names(doc, NameKind::Stage);
        }
        (_, "lr") => {
            out.names(doc, NameKind::Schedule);
            out.words(&["resume"], CompletionItemKind::KEYWORD);
            out.words(LR_FUNCTIONS, CompletionItemKind::FUNCTION);
        }
        (_, "loss") => out.words(schema::LOSSES, CompletionItemKind::ENUM_MEMBER),
        (_, "mlp") => out.words(decoder::MLPS, CompletionItemKind::ENUM_MEMBER),
        (_, k) if k == decoder::ROPE_SCALING.name => {
            let kinds: Vec<&str> = schema::rope::names().collect();
            out.words(&kinds, CompletionItemKind::FUNCTION)
        }
        _ => {}
    }
}

#[derive(Default)]
struct Out {
    items: Vec<CompletionItem>,
}

impl Out {
    fn fields(&mut self, block: &Block) {
        for f in block.fields {
            self.items.push(CompletionItem {
                label: f.name.to_string(),
                kind: Some(CompletionItemKind::FIELD),
                detail: Some(f.ty.name()),
                ..Default::default()
            });
        }
    }

    /// The block's fields, its blocks, and `scale` where it takes `scale X by F`.
    fn block(&mut self, block: &Block) {
        self.fields(block);
        self.words(block.blocks, CompletionItemKind::KEYWORD);
        if block.scales {
            self.words(&["scale"], CompletionItemKind::KEYWORD);
        }
    }

    fn model(&mut self, kind: &str) {
        if let Some(b) = schema::model(kind) {
            self.fields(b);
        }
    }

    fn words(&mut self, words: &[&str], kind: CompletionItemKind) {
        for w in words {
            self.items.push(CompletionItem {
                label: w.to_string(),
                kind: Some(kind),
                ..Default::default()
            });
        }
    }

    fn names(&mut self, doc: &Document, kind: NameKind) {
        let item_kind = match kind {
            NameKind::Model => CompletionItemKind::CLASS,
            NameKind::Data => CompletionItemKind::STRUCT,
            NameKind::Schedule => CompletionItemKind::FUNCTION,
            NameKind::Stage => CompletionItemKind::EVENT,
            NameKind::Mixture => CompletionItemKind::MODULE,
        };
        for name in doc.names.names_of(kind) {
            self.items.push(CompletionItem {
                label: name.to_string(),
                kind: Some(item_kind),
                detail: Some(kind.article().to_string()),
                ..Default::default()
            });
        }
    }
}

fn lex(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                i += 1;
            }
            i += 1;
            out.push(Tok::Other);
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(src[s..i].to_string()));
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.')) {
                i += 1;
            }
            out.push(Tok::Other);
        } else {
            if matches!(
                c,
                b'{' | b'}' | b'(' | b')' | b'[' | b']' | b'=' | b',' | b'\n'
            ) {
                out.push(Tok::Punct(c as char));
            } else if !c.is_ascii_whitespace() {
                out.push(Tok::Other);
            }
            // Multi-byte characters only occur in comments and strings, skipped above; any
            // other byte is skipped whole here.
            i += 1;
            while i < b.len() && !src.is_char_boundary(i) {
                i += 1;
            }
        }
    }
    out
}

/// A bracket still open, with the function it calls (`resume(`).
type Open = (char, Option<String>);

/// The enclosing block, the statement typed so far in it, and the brackets still open.
fn context(toks: &[Tok]) -> (Ctx, Vec<Tok>, Vec<Open>) {
    let mut stack: Vec<Ctx> = vec![];
    let mut stmt: Vec<Tok> = vec![];
    let mut open: Vec<Open> = vec![];
    let mut line_start = true;
    for t in toks {
        let ctx = stack.last().cloned().unwrap_or(Ctx::Top);
        match t {
            Tok::Punct('{') => {
                stack.push(classify(&ctx, &stmt));
                stmt.clear();
                open.clear();
            }
            Tok::Punct('}') => {
                stack.pop();
                stmt.clear();
                open.clear();
            }
            Tok::Punct(c @ ('(' | '[')) => {
                let callee = match stmt.last() {
                    Some(Tok::Ident(f)) if *c == '(' => Some(f.clone()),
                    _ => None,
                };
                open.push((*c, callee));
                stmt.push(t.clone());
            }
            Tok::Punct(')' | ']') => {
                open.pop();
                stmt.push(t.clone());
            }
            // Inside a block a new line or a comma ends an entry; at the top an item runs on
            // until the next item keyword that starts a line (`then` chains span lines).
            Tok::Punct('\n' | ',') if open.is_empty() && ctx != Ctx::Top => stmt.clear(),
            Tok::Punct('\n') => {}
            Tok::Ident(w)
                if ctx == Ctx::Top && line_start && ITEM_KEYWORDS.contains(&w.as_str()) =>
            {
                stmt.clear();
                open.clear();
                stmt.push(t.clone());
            }
            _ => stmt.push(t.clone()),
        }
        line_start = *t == Tok::Punct('\n');
    }
    (stack.last().cloned().unwrap_or(Ctx::Top), stmt, open)
}

fn classify(parent: &Ctx, stmt: &[Tok]) -> Ctx {
    let word = |i: usize| match stmt.get(i) {
        Some(Tok::Ident(s)) => Some(s.as_str()),
        _ => None,
    };
    match (parent, word(0)) {
        (Ctx::Top, Some("pipeline")) => Ctx::Pipeline,
        (Ctx::Top, Some("model")) => Ctx::Model(word(3).unwrap_or("").to_string()),
        (Ctx::Top, Some("data")) => Ctx::Data,
        (Ctx::Top, Some("stage")) => Ctx::Stage,
        (Ctx::Top, Some("profile")) => Ctx::Profile,
        (Ctx::Top | Ctx::Profile, Some("mix")) => Ctx::Mix,
        (Ctx::Stage, Some("mix")) => Ctx::Mix,
        (Ctx::Stage, Some("phase")) => Ctx::Phase,
        (Ctx::Stage, Some("weights")) => Ctx::Weights,
        (Ctx::Mix, Some(_)) => Ctx::Mix,
        (Ctx::Profile, Some("model")) => Ctx::ProfileModel(word(1).unwrap_or("").to_string()),
        (Ctx::Profile, Some("stage")) => Ctx::ProfileStage,
        _ => Ctx::Other,
    }
}
