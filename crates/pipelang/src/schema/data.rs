//! `data NAME = KIND("glob", ...) { ... }`: the optional block of a data source.

use super::{Block, Field, Missing, Reload, Scale, Ty};

pub const KINDS: &[&str] = &["text", "image_text", "interleaved", "video"];

pub const TOKENIZER: Field = Field {
    name: "tokenizer",
    ty: Ty::Str,
    missing: Missing::Means("none"),
    doc: "a tokenizer file; also accepted as an argument",
    scale: Scale::No,
    reload: Reload::Value,
};

pub const BLOCK: Block = Block {
    keyword: "data",
    what: "a data source",
    fields: &[TOKENIZER],
    blocks: &[],
    scales: false,
};
