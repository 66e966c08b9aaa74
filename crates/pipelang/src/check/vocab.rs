//! A decoder's `vocab` against the ids of the tokenizers that feed it
//! ([P0406](../../../../docs/errors/P0406.md)): an embedding smaller than the token ids fails
//! at the first step, so it is reported at the `vocab` line instead.
//!
//! The checker knows the byte tokenizer (a source without `tokenizer`) without reading any
//! data; a `tokenizer.json` is counted by the file-aware pass (`check::files`), which calls
//! `check` here with the counts it read.

use crate::diag::{Code, Diagnostic, Diagnostics, Fix};
use crate::schema::tokenizer::{self, BYTE_BASE, SPECIALS};
use crate::syntax::Span;

use super::ir::*;

/// One decoder fed text by one source in one stage.
#[derive(Debug, Clone, Copy)]
pub struct Feed {
    pub decoder: ModelId,
    pub data: DataId,
    pub stage: StageId,
    /// Where the stage names the source (its `data = ...` or mixture entry).
    pub at: Span,
}

/// Every (decoder, source, stage) whose text reaches the decoder: every decoder a stage trains
/// or freezes reads the tokens of every source in its mixture (captions and interleaved text
/// included).
pub fn feeds(p: &Pipeline) -> Vec<Feed> {
    let mut out = vec![];
    for (si, s) in p.stages.iter_enumerated() {
        let srcs = mix_sources(&s.mix);
        for m in s.train.iter().chain(&s.freeze) {
            if !matches!(
                p.models.get(m.value).map(|m| &m.kind),
                Some(ModelKind::Decoder(_))
            ) {
                continue;
            }
            for &(d, at) in &srcs {
                out.push(Feed {
                    decoder: m.value,
                    data: d,
                    stage: si,
                    at,
                });
            }
        }
    }
    out
}

/// The ids a source's tokenizer produces, specials included.
#[derive(Debug, Clone)]
pub struct Ids {
    /// The base vocabulary (bytes, or the tokenizer file's entries).
    pub base: u64,
    /// What the base is, for the label: "256 bytes", "`tok.json`: 1,000 entries".
    pub what: String,
    /// Where the label goes: the source's name, or its `tokenizer` value.
    pub span: Span,
}

impl Ids {
    pub fn total(&self) -> u64 {
        tokenizer::ids(self.base)
    }

    /// The byte tokenizer of a source without `tokenizer`.
    pub fn bytes(d: &Data) -> Ids {
        Ids {
            base: BYTE_BASE,
            what: format!("`{}` has no tokenizer: {BYTE_BASE} bytes", d.name),
            span: d.name_span,
        }
    }
}

/// The checker's own pass: sources without `tokenizer` against the decoders they feed.
pub fn bytes(p: &Pipeline, all: &[Feed], diags: &mut Diagnostics) {
    check(
        p,
        all,
        |d| {
            let data = &p.data[d];
            data.tokenizer.is_none().then(|| Ids::bytes(data))
        },
        diags,
    );
}

/// Reports each decoder whose `vocab` is below the ids of a source that feeds it, once per
/// decoder (for the source that needs the most). `ids` says what a source's tokenizer gives;
/// `None` leaves the source to another pass.
pub fn check(
    p: &Pipeline,
    all: &[Feed],
    ids: impl Fn(DataId) -> Option<Ids>,
    diags: &mut Diagnostics,
) {
    let mut cache: IndexVec<DataId, Option<Option<Ids>>> = IndexVec::from_elem(None, p.data.len());
    let mut done: Vec<ModelId> = vec![];
    for f in all {
        if done.contains(&f.decoder) {
            continue;
        }
        let ModelKind::Decoder(spec) = &p.models[f.decoder].kind else {
            continue;
        };
        let vocab = spec.vocab;
        // A vocab nobody wrote (missing, or the model's kind unknown) is reported as such.
        if vocab.span == p.models[f.decoder].name_span {
            done.push(f.decoder);
            continue;
        }
        // The feed of this decoder that needs the most ids.
        let feeds = || all.iter().filter(|g| g.decoder == f.decoder);
        for g in feeds() {
            cache[g.data].get_or_insert_with(|| ids(g.data));
        }
        let mut worst: Option<(u64, &Feed, &Ids)> = None;
        for g in feeds() {
            if let Some(Some(i)) = &cache[g.data]
                && i.total() > vocab.value
                && worst.as_ref().is_none_or(|w| i.total() > w.0)
            {
                worst = Some((i.total(), g, i));
            }
        }
        done.push(f.decoder);
        let Some((need, g, i)) = worst else {
            continue;
        };
        let model = &p.models[f.decoder];
        let data = &p.data[g.data];
        let stage = &p.stages[g.stage];
        let to = round_up(need);
        diags.push(
            Diagnostic::new(
                Code::VOCAB_TOO_SMALL,
                format!(
                    "decoder `{}` has vocab {}, but `{}` feeds it {} token ids",
                    model.name,
                    vocab.value,
                    data.name,
                    thousands(need)
                ),
            )
            .label(
                vocab.span,
                format!("ids 0..{} only", vocab.value.saturating_sub(1)),
            )
            .label(
                i.span,
                format!("{} + {SPECIALS} special ids = {}", i.what, thousands(need)),
            )
            .label(
                g.at,
                format!("feeds `{}` in stage `{}`", model.name, stage.name),
            )
            .help(format!(
                "raise `vocab` to at least {need}: the tokenizer's ids come first, then the \
                 {SPECIALS} special tokens ({}); the first id past the embedding stops training \
                 at step 0",
                tokenizer::SPECIAL_NAMES.join(", ")
            ))
            .fix(Fix::replace(
                format!("raise `vocab` to {}", thousands_underscore(to)),
                vocab.span,
                thousands_underscore(to),
            )),
        );
    }
}

/// A source's tokenizer as the recipe names it: `None` for bytes, else the path without `./`
/// steps (`./tok.json` and `tok.json` are one file).
fn tokenizer_key(d: &Data) -> Option<std::path::PathBuf> {
    let t = d.tokenizer.as_ref()?;
    Some(
        std::path::Path::new(&t.value)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect(),
    )
}

fn tokenizer_name(d: &Data) -> String {
    match &d.tokenizer {
        Some(t) => format!("`{}`", t.value),
        None => "the byte tokenizer".into(),
    }
}

/// A decoder fed through two tokenizers ([P0407](../../../../docs/errors/P0407.md)): each
/// tokenizer numbers its own vocabulary and appends the specials after it, so one id means two
/// tokens and end of document has two ids. Within a stage, reported at each source whose
/// tokenizer is not the one of the stage's first source, once per (stage, decoder, tokenizer);
/// across stages, at the first source of each stage whose tokenizer is not the one of the
/// decoder's first stage (its weights learnt the other numbering), once per (stage, decoder).
pub fn mixed(p: &Pipeline, all: &[Feed], diags: &mut Diagnostics) {
    // Per (stage, decoder): the first source's feed and tokenizer. Held to it, one odd source
    // is one diagnostic however many agree with the first.
    let mut firsts: Vec<(&Feed, Option<std::path::PathBuf>)> = vec![];
    let mut first_of = foldhash::HashMap::default();
    let mut reported = foldhash::HashSet::default();
    for f in all {
        let key = tokenizer_key(&p.data[f.data]);
        let Some(&i) = first_of.get(&(f.stage, f.decoder)) else {
            first_of.insert((f.stage, f.decoder), firsts.len());
            firsts.push((f, key));
            continue;
        };
        let (first, first_key) = &firsts[i];
        if *first_key == key || !reported.insert((f.stage, f.decoder, key)) {
            continue;
        }
        let stage = &p.stages[f.stage].name;
        diags.push(two_tokenizers(
            p,
            f.decoder,
            format!("stage `{stage}` feeds"),
            (first, None),
            (f, None),
        ));
    }
    // The decoder's first stage sets its numbering for every later one.
    let mut numbering = foldhash::HashMap::default();
    for (f, key) in &firsts {
        let (first, first_key) = *numbering.entry(f.decoder).or_insert((*f, key));
        if first_key != key {
            let (a, b) = (&p.stages[first.stage].name, &p.stages[f.stage].name);
            diags.push(two_tokenizers(
                p,
                f.decoder,
                format!("stages `{a}` and `{b}` feed"),
                (first, Some(a)),
                (f, Some(b)),
            ));
        }
    }
}

/// P0407 for one decoder: `b`'s source brings a tokenizer other than `a`'s (each with the
/// stage named when they differ).
fn two_tokenizers(
    p: &Pipeline,
    decoder: ModelId,
    who: String,
    (a, a_stage): (&Feed, Option<&String>),
    (b, b_stage): (&Feed, Option<&String>),
) -> Diagnostic {
    let model = &p.models[decoder];
    let (da, db) = (&p.data[a.data], &p.data[b.data]);
    let place = |s: Option<&String>| s.map(|s| format!(" in `{s}`")).unwrap_or_default();
    Diagnostic::new(
        Code::MIXED_TOKENIZERS,
        format!(
            "{who} decoder `{}` through two tokenizers: `{}` through {}, `{}` through {}",
            model.name,
            da.name,
            tokenizer_name(da),
            db.name,
            tokenizer_name(db)
        ),
    )
    .label(
        b.at,
        format!(
            "`{}` is tokenized by {}{}",
            db.name,
            tokenizer_name(db),
            place(b_stage)
        ),
    )
    .label(
        a.at,
        format!(
            "`{}` is tokenized by {}{}",
            da.name,
            tokenizer_name(da),
            place(a_stage)
        ),
    )
    .help(format!(
        "give every source that feeds `{}` the same `tokenizer`: each tokenizer numbers its own \
         vocabulary and puts the {SPECIALS} special tokens after it, so one id would mean \
         different tokens and end of document would have two ids{}",
        model.name,
        if a_stage.is_some() {
            " (the weights trained in the first stage learnt its numbering)"
        } else {
            ""
        }
    ))
}

/// The smallest multiple of 64 at or above `n` (embedding rows in whole tiles).
fn round_up(n: u64) -> u64 {
    n.div_ceil(64) * 64
}

fn group(n: u64, sep: char) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// `1,005` for messages.
pub fn thousands(n: u64) -> String {
    group(n, ',')
}

/// `1_024` as a recipe writes it (plain below 10,000, as the fixtures do).
fn thousands_underscore(n: u64) -> String {
    if n < 10_000 {
        n.to_string()
    } else {
        group(n, '_')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(round_up(tokenizer::BYTE_IDS), 320);
        assert_eq!(round_up(320), 320);
        assert_eq!(thousands(1_005), "1,005");
        assert_eq!(thousands_underscore(128_320), "128_320");
        assert_eq!(thousands_underscore(1_024), "1024");
    }
}
