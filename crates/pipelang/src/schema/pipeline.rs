//! `pipeline NAME { ... }`: what every stage shares.

use super::{Block, Field, Missing, Reload, Scale, Ty};

pub const DEFAULT_SEED: u64 = 0;

pub const SEED: Field = Field {
    name: "seed",
    ty: Ty::Count { min: 0 },
    missing: Missing::Count(DEFAULT_SEED),
    doc: "seeds initialisation and data order",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const BATCH: Field = Field {
    name: "batch",
    ty: Ty::Count { min: 1 },
    missing: Missing::Required("batch = 16"),
    doc: "sequences per optimizer step, for every stage that does not set its own",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const SEQ_LEN: Field = Field {
    name: "seq_len",
    ty: Ty::Length,
    missing: Missing::Required("seq_len = 8K"),
    doc: "tokens per sequence of the stages that start the graph",
    scale: Scale::SeqLen,
    reload: Reload::Value,
};
pub const DATA_ROOT: Field = Field {
    name: "data_root",
    ty: Ty::Str,
    missing: Missing::Means("none"),
    doc: "the folder the data globs are resolved in",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const SAMPLE_DATA: Field = Field {
    name: "sample_data",
    ty: Ty::Str,
    missing: Missing::Means("none"),
    doc: "like `data_root`, and sample data is generated there when missing",
    scale: Scale::No,
    reload: Reload::Value,
};

pub const OPTIMIZER: Field = Field {
    name: "optimizer",
    ty: Ty::Optimizer,
    missing: Missing::Means(
        "`adamw()`: `beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, clip = 1`",
    ),
    doc: "AdamW's settings for every stage ([the optimizer](#the-optimizer))",
    scale: Scale::No,
    reload: Reload::Value,
};

pub const BLOCK: Block = Block {
    keyword: "pipeline",
    what: "the pipeline",
    fields: &[SEED, BATCH, SEQ_LEN, DATA_ROOT, SAMPLE_DATA, OPTIMIZER],
    blocks: &[],
    scales: false,
};
