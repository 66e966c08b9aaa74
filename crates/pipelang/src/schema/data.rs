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

/// The text column of Parquet files (`text("fineweb/*.parquet", column = "content")`).
pub const COLUMN: Field = Field {
    name: "column",
    ty: Ty::Str,
    missing: Missing::Means("text"),
    doc: "the string column holding each document, in Parquet files; also accepted as an argument",
    scale: Scale::No,
    reload: Reload::Value,
};

/// The JSON field holding the caption of a WebDataset sample
/// (`image_text("laion/{00000..00127}.tar", caption = "caption")`).
pub const CAPTION: Field = Field {
    name: "caption",
    ty: Ty::Str,
    missing: Missing::Means("the sample's .txt"),
    doc: "the string field of each sample's .json that holds its caption, in WebDataset tar shards; also accepted as an argument",
    scale: Scale::No,
    reload: Reload::Value,
};

/// The column a Parquet text source reads when none is named.
pub const DEFAULT_COLUMN: &str = "text";

pub const BLOCK: Block = Block {
    keyword: "data",
    what: "a data source",
    fields: &[TOKENIZER, COLUMN, CAPTION],
    blocks: &[],
    scales: false,
};
