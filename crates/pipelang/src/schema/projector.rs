//! `model NAME = projector(VIT -> DECODER) { ... }`: connects a vit to a decoder.

use super::{Block, Field, Missing, Reload, Scale, Ty};

pub const DEFAULT_PIXEL_SHUFFLE: u64 = 1;

pub const PIXEL_SHUFFLE: Field = Field {
    name: "pixel_shuffle",
    ty: Ty::Count { min: 1 },
    missing: Missing::Count(DEFAULT_PIXEL_SHUFFLE),
    doc: "spatial merge factor before the MLP",
    scale: Scale::No,
    reload: Reload::Value,
};

pub const BLOCK: Block = Block {
    keyword: "projector",
    what: "a projector",
    fields: &[PIXEL_SHUFFLE, super::model::INIT],
    blocks: &[],
    scales: false,
};
