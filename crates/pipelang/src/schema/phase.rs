//! `phase NAME { ... }` inside a stage: consecutive parts of it.

use super::{Block, Field, Missing, Reload, Scale, Ty};

pub const BUDGET: Field = Field {
    name: "budget",
    ty: Ty::PhaseBudget,
    missing: Missing::Required("budget = 50%"),
    doc: "a token amount, optimizer steps (`1000 steps`), a share of the stage's budget in its unit (`50%`, or a ratio `1/6`: six phases of `1/6` add up exactly), or `rest` on the last phase: what the others leave ([P0508](errors/P0508.md)); a share of a budget in steps is whole steps ([P0509](errors/P0509.md))",
    scale: Scale::Tokens,
    reload: Reload::Value,
};
pub const SEQ_LEN: Field = Field {
    name: "seq_len",
    ty: Ty::Transition(&Ty::Length),
    missing: Missing::Means("the stage's, or the previous phase's"),
    doc: "",
    scale: Scale::SeqLen,
    reload: Reload::Value,
};
pub const ROPE_BASE: Field = Field {
    name: "rope_base",
    ty: Ty::Transition(&Ty::Number),
    missing: Missing::Means("the stage's, or the previous phase's"),
    doc: "applies to every decoder of the stage",
    scale: Scale::RopeBase,
    reload: Reload::Value,
};
pub const ROPE_SCALING: Field = Field {
    name: "rope_scaling",
    ty: Ty::Transition(&Ty::RopeScaling),
    missing: Missing::Means("the stage's, or the previous phase's"),
    doc: "applies to every decoder of the stage; `original` at most the phase's seq_len ([P0232](errors/P0232.md))",
    scale: Scale::SeqLen,
    reload: Reload::Value,
};
pub const BATCH: Field = Field {
    name: "batch",
    ty: Ty::Batch,
    missing: Missing::Means("the stage's batch"),
    doc: "a ramp here counts from the phase's start",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const BATCH_TOKENS: Field = Field {
    name: "batch_tokens",
    ty: Ty::Tokens,
    missing: Missing::Means("the stage's batch"),
    doc: "tokens per step, in whole sequences of the phase's seq_len",
    scale: Scale::No,
    reload: Reload::Within("batch"),
};

/// The last phase's budget that takes what the other phases leave (as `rest` in a mixture).
pub const REST: &str = "rest";

pub const BLOCK: Block = Block {
    keyword: "phase",
    what: "a phase",
    fields: &[
        BUDGET,
        SEQ_LEN,
        ROPE_BASE,
        ROPE_SCALING,
        BATCH,
        BATCH_TOKENS,
    ],
    blocks: &[],
    scales: false,
};
