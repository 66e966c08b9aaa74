//! Fields every model kind has (decoder, vit, projector).

use super::{Field, Missing, Reload, Scale, Ty};

pub const INIT: Field = Field {
    name: "init",
    ty: Ty::Str,
    missing: Missing::Means("random initialisation"),
    doc: "start from these weights: a safetensors file or a folder holding `model.safetensors` \
          (or `model.safetensors.index.json` and its shards), relative to the pipeline file; \
          the names and shapes are checked by `pipe check` from the file header",
    scale: Scale::No,
    reload: Reload::Value,
};
