//! What the language knows about tokenizers without reading any data: the byte tokenizer a
//! source without `tokenizer` uses, and the special tokens every tokenizer appends after its
//! base vocabulary. The runtime reads these (`pipelang_runtime::data::tokenizer`), and the
//! checker holds a decoder's `vocab` to them ([P0406](../../../../docs/errors/P0406.md)).

/// Ids of the byte tokenizer before the specials: one per byte value.
pub const BYTE_BASE: u64 = 256;

/// Special tokens appended after every base vocabulary, in this order: end of document, image
/// placeholder, image start, image end, padding.
pub const SPECIALS: u64 = 5;

/// What the specials are, for messages.
pub const SPECIAL_NAMES: [&str; SPECIALS as usize] = [
    "end of document",
    "image",
    "image start",
    "image end",
    "padding",
];

/// Every id the byte tokenizer produces: the smallest `vocab` of a decoder it feeds.
pub const BYTE_IDS: u64 = BYTE_BASE + SPECIALS;

/// Every id a tokenizer of `base` ids produces once the specials are appended.
pub const fn ids(base: u64) -> u64 {
    base + SPECIALS
}
