//! `stage NAME [after ...] { ... }`: models trained and frozen, budget, data, loss and LR.

use super::{Block, Field, LOSSES, Missing, Reload, Scale, Ty};
use crate::check::names::NameKind;

pub const TRAIN: Field = Field {
    name: "train",
    ty: Ty::Names(NameKind::Model),
    missing: Missing::Required("train = [model]"),
    doc: "the models that learn; not empty ([P0304](errors/P0304.md))",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const FREEZE: Field = Field {
    name: "freeze",
    ty: Ty::Names(NameKind::Model),
    missing: Missing::Means("`[]`"),
    doc: "models used but not updated; never also in `train` ([P0302](errors/P0302.md))",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const BUDGET: Field = Field {
    name: "budget",
    ty: Ty::Budget,
    missing: Missing::Required("budget = 1T"),
    doc: "tokens the stage trains on, or optimizer steps (`1000 steps`: their tokens follow the batch and seq_len of each step); `scale tokens` leaves steps as written",
    scale: Scale::Tokens,
    reload: Reload::Value,
};
pub const BATCH: Field = Field {
    name: "batch",
    ty: Ty::Batch,
    missing: Missing::Means("the pipeline's"),
    doc: "sequences per step, or `ramp(A -> B, over = TOKENS)` from the stage's start; not with `batch_tokens` ([P0210](errors/P0210.md))",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const BATCH_TOKENS: Field = Field {
    name: "batch_tokens",
    ty: Ty::Tokens,
    missing: Missing::Means("`batch`"),
    doc: "tokens per step: the batch is this over each phase's seq_len, in whole sequences ([P0211](errors/P0211.md))",
    scale: Scale::No,
    reload: Reload::Within("batch"),
};
pub const SEQ_LEN: Field = Field {
    name: "seq_len",
    ty: Ty::Transition(&Ty::Length),
    missing: Missing::Means("inherited"),
    doc: "",
    scale: Scale::SeqLen,
    reload: Reload::Value,
};
pub const ROPE_BASE: Field = Field {
    name: "rope_base",
    ty: Ty::Transition(&Ty::Number),
    missing: Missing::Means("inherited"),
    doc: "applies to every decoder in the stage",
    scale: Scale::RopeBase,
    reload: Reload::Value,
};
pub const ROPE_SCALING: Field = Field {
    name: "rope_scaling",
    ty: Ty::Transition(&Ty::RopeScaling),
    missing: Missing::Means("inherited"),
    doc: "applies to every decoder in the stage; `original` at most the stage's seq_len ([P0232](errors/P0232.md))",
    scale: Scale::SeqLen,
    reload: Reload::Value,
};
pub const DATA: Field = Field {
    name: "data",
    ty: Ty::Name(NameKind::Data),
    missing: Missing::Means("none"),
    doc: "one source ([P0404](errors/P0404.md): one of `data`, `mix = NAME` and `mix { ... }`)",
    scale: Scale::No,
    reload: Reload::Within("mix"),
};
pub const MIX: Field = Field {
    name: "mix",
    ty: Ty::Name(NameKind::Mixture),
    missing: Missing::Means("none"),
    doc: "a named mixture (`mix NAME { ... }`) or a stage whose mixture this stage uses ([named mixtures](#named-and-relative-mixtures))",
    scale: Scale::No,
    reload: Reload::Within("mix"),
};
pub const LOSS: Field = Field {
    name: "loss",
    ty: Ty::Loss,
    missing: Missing::Word(LOSSES[0]),
    doc: "`caption_weight` defaults to 1",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const LR: Field = Field {
    name: "lr",
    ty: Ty::StageLr,
    missing: Missing::Required("lr = cosine(peak = 3e-4, warmup = 1%, min = 3e-5)"),
    doc: "an LR expression starts a schedule of the stage's own",
    scale: Scale::Tokens,
    reload: Reload::Value,
};
pub const CHECKPOINT_EVERY: Field = Field {
    name: "checkpoint_every",
    ty: Ty::Count { min: 1 },
    missing: Missing::Means("`pipe run --checkpoint-every`"),
    doc: "optimizer steps between checkpoints; the stage's last step is always saved",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const OPTIMIZER: Field = Field {
    name: "optimizer",
    ty: Ty::Optimizer,
    missing: Missing::Means("the pipeline's"),
    doc: "the arguments it writes replace the pipeline's",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const SEED: Field = Field {
    name: "seed",
    ty: Ty::Count { min: 0 },
    missing: Missing::Means("derived from the pipeline's"),
    doc: "seeds the stage's fresh weights and its data order",
    scale: Scale::No,
    reload: Reload::Value,
};
pub const AVERAGE: Field = Field {
    name: "average",
    ty: Ty::Window,
    missing: Missing::Means("none"),
    doc: "checkpoint averaging: the stage hands on the mean of the weights after each step of its final window ([averaging](#weight-averaging-along-a-stage))",
    scale: Scale::Tokens,
    reload: Reload::Value,
};
pub const EMA: Field = Field {
    name: "ema",
    ty: Ty::Number,
    missing: Missing::Means("none"),
    doc: "exponential moving average of the weights, this decay per step, strictly between 0 and 1; the stage hands it on; not with `average` ([P0241](errors/P0241.md))",
    scale: Scale::No,
    reload: Reload::Within("average"),
};
/// The fields `vary FIELD = [...]` may give one value per variant. Only the seed: it seeds
/// the data order (and any fresh weights), which is what soups of parallel runs vary
/// (OLMo 2); a field that changes the model or the budget would make variants that cannot
/// be averaged or compared.
pub const VARYABLE: &[&Field] = &[&SEED];
/// The keyword of a soup: `stage NAME = average(STAGES)`.
pub const SOUP: &str = "average";
/// `lr_scale { vit = 0.1 }`: a block, compared by reload as a whole.
pub const LR_SCALE: &str = "lr_scale";

pub const BLOCK: Block = Block {
    keyword: "stage",
    what: "a stage",
    fields: &[
        TRAIN,
        FREEZE,
        BUDGET,
        BATCH,
        BATCH_TOKENS,
        SEQ_LEN,
        ROPE_BASE,
        ROPE_SCALING,
        DATA,
        MIX,
        LOSS,
        LR,
        CHECKPOINT_EVERY,
        OPTIMIZER,
        SEED,
        AVERAGE,
        EMA,
    ],
    blocks: &[MIX.name, "phase", "weights", LR_SCALE],
    scales: false,
};
