//! `profile NAME { ... }`: a variant of the recipe. Its `model NAME { }` and `stage NAME { }`
//! blocks take the fields of what they change.

use super::{Block, Field, Missing, Reload, Scale, Ty};

pub const BATCH: Field = Field {
    name: "batch",
    ty: Ty::Count { min: 1 },
    missing: Missing::Means("unchanged"),
    doc: "the pipeline's batch, and it replaces every `batch` of every stage and phase",
    scale: Scale::No,
    reload: Reload::Applied,
};
pub const SEED: Field = Field {
    name: "seed",
    ty: Ty::Count { min: 0 },
    missing: Missing::Means("unchanged"),
    doc: "the pipeline's seed",
    scale: Scale::No,
    reload: Reload::Applied,
};
pub const DATA_ROOT: Field = Field {
    name: "data_root",
    ty: Ty::Str,
    missing: Missing::Means("unchanged"),
    doc: "where the data globs are resolved",
    scale: Scale::No,
    reload: Reload::Applied,
};
pub const SAMPLE_DATA: Field = Field {
    name: "sample_data",
    ty: Ty::Str,
    missing: Missing::Means("unchanged"),
    doc: "like `data_root`, and sample data is generated there when missing",
    scale: Scale::No,
    reload: Reload::Applied,
};

/// Fields the profile sets on the pipeline block itself.
pub const GLOBALS: [Field; 2] = [BATCH, SEED];

pub const BLOCK: Block = Block {
    keyword: "profile",
    what: "a profile",
    fields: &[BATCH, SEED, DATA_ROOT, SAMPLE_DATA],
    blocks: &["model", "stage", "mix"],
    scales: true,
};
