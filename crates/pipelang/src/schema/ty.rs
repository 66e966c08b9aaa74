//! The types of values: named in the docs' tables and in type errors.

use crate::check::names::NameKind;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ty {
    Count {
        min: u64,
    },
    Tokens,
    Length,
    Number,
    Lr,
    Share,
    Duration,
    /// A stage's budget: tokens or `N steps`.
    Budget,
    PhaseBudget,
    /// Sequences per step, or `ramp(A -> B, over = TOKENS)`.
    Batch,
    Str,
    Names(NameKind),
    Name(NameKind),
    Choice(&'static [&'static str]),
    Loss,
    StageLr,
    /// `adamw(beta1 = .., beta2 = .., eps = .., weight_decay = .., clip = ..)`.
    Optimizer,
    /// `none`, `linear(...)`, `yarn(...)` or `llama3(...)` (`schema::rope`).
    RopeScaling,
    /// `model = factor` entries of a block.
    Scales,
    /// `a -> b` of the inner type, or a plain value.
    Transition(&'static Ty),
    /// `last(D)`: the final D of a stage, as tokens, a share of the stage or steps.
    Window,
}

/// The losses a stage may name.
pub const LOSSES: &[&str] = &["next_token", "coca"];

impl Ty {
    /// As the docs' tables write it.
    pub fn name(self) -> String {
        match self {
            Ty::Count { .. } => "whole number".into(),
            Ty::Tokens => "token amount".into(),
            Ty::Length => "sequence length".into(),
            Ty::Number => "number".into(),
            Ty::Lr => "learning rate".into(),
            Ty::Share => "percentage".into(),
            Ty::Duration => "duration".into(),
            Ty::Budget => "token amount or step count".into(),
            Ty::PhaseBudget => "phase budget".into(),
            Ty::Batch => "whole number or batch ramp".into(),
            Ty::Str => "string".into(),
            Ty::Names(k) => format!("list of {}s", k.word()),
            Ty::Name(k) => format!("{} name", k.word()),
            Ty::Choice(words) => words
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(" or "),
            Ty::Loss => "`next_token`, `coca` or `coca(caption_weight = W)`".into(),
            Ty::StageLr => "schedule name, `resume`, `resume(NAME)` or an LR expression".into(),
            Ty::Optimizer => "`adamw(...)`".into(),
            Ty::RopeScaling => "RoPE scaling".into(),
            Ty::Scales => "block of `model = factor`".into(),
            Ty::Transition(t) => format!("{} or transition", t.name()),
            Ty::Window => "`last(D)`".into(),
        }
    }

    /// With an example, for the help of a type error.
    pub fn describe(self) -> String {
        match self {
            Ty::Count { .. } => "a whole number (e.g. `16`)".into(),
            Ty::Tokens => "a token amount (e.g. `5.2T`, `20B`)".into(),
            Ty::Length => "a sequence length (e.g. `8K` = 8,192)".into(),
            Ty::Number => "a number (e.g. `50_000`)".into(),
            Ty::Lr => "a learning rate (e.g. `3e-4`)".into(),
            Ty::Share => "a percentage (e.g. `40%`)".into(),
            Ty::Duration => {
                "a duration: tokens (`20B`), a share of the span (`1%`) or steps (`2000 steps`)"
                    .into()
            }
            Ty::Budget => "a token amount (`5.2T`) or optimizer steps (`1000 steps`)".into(),
            Ty::Window => {
                "`last(D)`: the stage's final tokens (`last(40M)`), share of its budget (`last(10%)`) or steps (`last(100 steps)`)".into()
            }
            Ty::PhaseBudget => {
                "a token amount (`50B`), optimizer steps (`1000 steps`), a share of the stage's budget (`50%`, `1/6`) or `rest` (the last phase: what the others leave)".into()
            }
            Ty::Batch => {
                "sequences per step (`16`) or a ramp (`ramp(3072 -> 15360, over = 469B)`)".into()
            }
            Ty::RopeScaling => "a RoPE scaling: `none`, `linear(factor = 4)`, `yarn(factor = 40, original = 4K)` or `llama3(factor = 8, original = 8K)`".into(),
            other => other.short(),
        }
    }

    /// With its article, for the message of a type error.
    pub fn short(self) -> String {
        match self {
            Ty::Budget => "a token amount or a step count".into(),
            Ty::PhaseBudget => "a token amount, a step count, a share or `rest`".into(),
            other => format!("a {}", other.name()),
        }
    }
}
