//! `model NAME = vit { ... }`: a vision transformer.

use super::{Block, Field, Missing, Reload, Scale, Ty};

pub const DEFAULT_MAX_IMAGE_SIDE: u64 = 448;

const fn count(name: &'static str, missing: Missing, doc: &'static str) -> Field {
    Field {
        name,
        ty: Ty::Count { min: 1 },
        missing,
        doc,
        scale: Scale::No,
        reload: Reload::Value,
    }
}

pub const PATCH: Field = count(
    "patch",
    Missing::Required("patch = 14"),
    "pixels per patch side",
);
pub const D_MODEL: Field = count("d_model", Missing::Required("d_model = 768"), "");
pub const LAYERS: Field = count("layers", Missing::Required("layers = 12"), "");
pub const HEADS: Field = count(
    "heads",
    Missing::Required("heads = 12"),
    "must divide `d_model` with a head dimension that is a multiple of 4 (2-D RoPE) \
     ([P0205](errors/P0205.md))",
);
pub const MAX_IMAGE_SIDE: Field = count(
    "max_image_side",
    Missing::Count(DEFAULT_MAX_IMAGE_SIDE),
    "largest image side in pixels; larger images are resized down",
);

pub const BLOCK: Block = Block {
    keyword: "vit",
    what: "a vit",
    fields: &[
        PATCH,
        D_MODEL,
        LAYERS,
        HEADS,
        MAX_IMAGE_SIDE,
        super::model::INIT,
    ],
    blocks: &[],
    scales: false,
};
