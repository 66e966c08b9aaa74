//! The fields of every block, declared once: name, type, default, docs, how a profile scales
//! it and how hot reload compares it. Lowering and profiles (`check`), reload, the language
//! server's completion and hover, and the field tables of `docs/language.md` all read these
//! tables; `tests/schema.rs` holds the docs and `reload` to them.

pub mod data;
pub mod decoder;
pub mod lr;
pub mod model;
pub mod optimizer;
pub mod phase;
pub mod pipeline;
pub mod profile;
pub mod projector;
pub mod rope;
pub mod stage;
mod table;
pub mod tokenizer;
mod ty;
pub mod vit;

pub use ty::{LOSSES, Ty};

/// One field of a block.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub missing: Missing,
    /// Markdown, for the docs table and hover.
    pub doc: &'static str,
    pub scale: Scale,
    pub reload: Reload,
}

/// What a field left out means.
#[derive(Debug, Clone, Copy)]
pub enum Missing {
    /// Leaving it out is an error; the help suggests this entry.
    Required(&'static str),
    Count(u64),
    Number(f64),
    Word(&'static str),
    /// No value, and what its absence means (`inherited`, `the pipeline's`).
    Means(&'static str),
}

/// Which `scale X by F` of a profile multiplies the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    No,
    /// Token amounts: budgets and token durations in LR schedules.
    Tokens,
    SeqLen,
    RopeBase,
}

impl Scale {
    pub const TARGETS: [Scale; 3] = [Scale::Tokens, Scale::SeqLen, Scale::RopeBase];

    /// The word after `scale`.
    pub fn target(self) -> &'static str {
        match self {
            Scale::No => "",
            Scale::Tokens => "tokens",
            Scale::SeqLen => "seq_len",
            Scale::RopeBase => "rope_base",
        }
    }
}

/// How hot reload tells that an edit changed the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Compared by value, under its own name.
    Value,
    /// Compared as part of another entry (a stage's `data` is its mixture, `mix`).
    Within(&'static str),
    /// A profile's field: reload compares the pipeline it produced.
    Applied,
}

/// What a block may contain.
#[derive(Debug)]
pub struct Block {
    /// The word that opens it: `pipeline`, a model kind, `data`, `stage`, `phase`, `profile`.
    pub keyword: &'static str,
    /// For messages: "a decoder", "the pipeline".
    pub what: &'static str,
    pub fields: &'static [Field],
    pub blocks: &'static [&'static str],
    /// Whether `scale X by F` entries are allowed.
    pub scales: bool,
}

impl Block {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().map(|f| f.name)
    }
}

impl Field {
    /// The entry the missing-field help suggests.
    pub fn example(&self) -> &'static str {
        match self.missing {
            Missing::Required(example) => example,
            _ => self.name,
        }
    }
}

pub const MODELS: [&Block; 3] = [&decoder::BLOCK, &vit::BLOCK, &projector::BLOCK];

/// Every block with a field table, in the order of the docs.
pub const BLOCKS: [&Block; 8] = [
    &pipeline::BLOCK,
    &decoder::BLOCK,
    &vit::BLOCK,
    &projector::BLOCK,
    &data::BLOCK,
    &stage::BLOCK,
    &phase::BLOCK,
    &profile::BLOCK,
];

pub fn model(kind: &str) -> Option<&'static Block> {
    MODELS.into_iter().find(|b| b.keyword == kind)
}
