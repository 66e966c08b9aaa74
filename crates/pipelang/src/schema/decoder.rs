//! `model NAME = decoder { ... }`: a transformer language model.

use super::{Block, Field, Missing, Reload, Scale, Ty};

pub const DEFAULT_ROPE_BASE: f64 = 10_000.0;
/// The first is the default.
pub const MLPS: &[&str] = &["swiglu", "gelu"];
/// Weight of the Switch load-balancing loss of every MoE layer, the Switch Transformer's 1e-2
/// (not a field: the candle runtime and the engine exports train with it).
pub const MOE_BALANCE_WEIGHT: f64 = 0.01;

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

pub const VOCAB: Field = count("vocab", Missing::Required("vocab = 32_000"), "");
pub const D_MODEL: Field = count("d_model", Missing::Required("d_model = 512"), "");
pub const LAYERS: Field = count("layers", Missing::Required("layers = 8"), "");
pub const HEADS: Field = count(
    "heads",
    Missing::Required("heads = 8"),
    "must divide `d_model` with an even head dimension ([P0205](errors/P0205.md))",
);
pub const EXPERTS: Field = count(
    "experts",
    Missing::Means("dense (none)"),
    "a mixture of experts",
);
pub const ACTIVE_EXPERTS: Field = count(
    "active_experts",
    Missing::Means("none"),
    "experts per token, at most `experts` ([P0206](errors/P0206.md)); required with \
     `experts`, not allowed without",
);
pub const ROPE_BASE: Field = Field {
    name: "rope_base",
    ty: Ty::Number,
    missing: Missing::Number(DEFAULT_ROPE_BASE),
    doc: "above 0",
    scale: Scale::RopeBase,
    reload: Reload::Value,
};
pub const ROPE_SCALING: Field = Field {
    name: "rope_scaling",
    ty: Ty::RopeScaling,
    missing: Missing::Word(super::rope::NONE),
    doc: "`linear(factor)`, `yarn(factor, original, alpha = 1, beta = 32)` or \
          `llama3(factor = 8, low_freq = 1, high_freq = 4, original = 8K)` \
          ([RoPE scaling](#rope-scaling))",
    scale: Scale::SeqLen,
    reload: Reload::Value,
};
pub const MLP: Field = Field {
    name: "mlp",
    ty: Ty::Choice(MLPS),
    missing: Missing::Word(MLPS[0]),
    doc: "",
    scale: Scale::No,
    reload: Reload::Value,
};

/// `false` first: the default.
pub const SWITCH: &[&str] = &["false", "true"];

pub const KV_HEADS: Field = count(
    "kv_heads",
    Missing::Means("`heads` (multi-head attention)"),
    "key/value heads shared by groups of query heads: grouped-query attention, `1` for \
     multi-query; must divide `heads` ([P0220](errors/P0220.md))",
);
pub const FFN: Field = count(
    "ffn",
    Missing::Means(
        "`8/3 d_model` for swiglu (rounded up to a multiple of 8), `4 d_model` for gelu",
    ),
    "hidden width of the feed-forward block (of each expert, and of the dense layers, under \
     MoE)",
);
pub const TIE_EMBEDDINGS: Field = Field {
    name: "tie_embeddings",
    ty: Ty::Choice(SWITCH),
    missing: Missing::Word(SWITCH[0]),
    doc: "the output head reuses the input embedding matrix",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const QK_NORM: Field = Field {
    name: "qk_norm",
    ty: Ty::Choice(SWITCH),
    missing: Missing::Word(SWITCH[0]),
    doc: "RMSNorm over each head's queries and keys before RoPE",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const SHARED_EXPERTS: Field = count(
    "shared_experts",
    Missing::Means("none"),
    "experts every token goes through beside the `active_experts` routed ones; only with \
     `experts`",
);
pub const DENSE_LAYERS: Field = count(
    "dense_layers",
    Missing::Means("none"),
    "the first N layers have a dense feed-forward instead of experts; fewer than `layers`, \
     only with `experts` ([P0221](errors/P0221.md))",
);

pub const BLOCK: Block = Block {
    keyword: "decoder",
    what: "a decoder",
    fields: &[
        VOCAB,
        D_MODEL,
        LAYERS,
        HEADS,
        EXPERTS,
        ACTIVE_EXPERTS,
        ROPE_BASE,
        ROPE_SCALING,
        MLP,
        KV_HEADS,
        FFN,
        TIE_EMBEDDINGS,
        QK_NORM,
        SHARED_EXPERTS,
        DENSE_LAYERS,
        super::model::INIT,
    ],
    blocks: &[],
    scales: false,
};
