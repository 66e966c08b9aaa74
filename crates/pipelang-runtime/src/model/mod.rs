//! Models of a recipe on candle: decoder, ViT, projector, losses, optimiser.
//!
//! Hot operations come in two implementations picked by [`Kernels`] in the configs: fused CPU
//! custom ops (`kernels/`) and differentiable candle compositions (`reference.rs`); the tests
//! hold them to the same values and gradients.

pub mod adamw;
pub mod bench;
pub mod coca;
pub mod config;
pub mod decoder;
pub mod init;
pub mod kernels;
pub mod layers;
pub mod loss;
pub mod moe;
pub mod projector;
pub mod reference;
pub mod vit;

#[cfg(test)]
mod tests;

pub use adamw::{AdamW, AdamWConfig, StepStats, named_vars};
pub use coca::{CaptionBatch, CocaHead, CocaOut};
pub use config::{
    DecoderConfig, Kernels, MlpKind, MoeConfig, ProjectorConfig, VitConfig, default_mlp_hidden,
};
pub use decoder::{Decoder, DecoderOut, scatter_rows};
pub use init::seeded_var_builder;
pub use loss::{cross_entropy, next_token_loss, siglip_loss};
pub use projector::{Projector, pixel_shuffle};
pub use vit::{PackedImages, Vit, VitOut, patchify};
