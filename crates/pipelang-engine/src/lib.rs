//! A checked plan handed to an existing engine. `runs` lowers the plan into engine runs (one
//! per stage, phase and mixture piece), each carrying everything the engine needs and nothing
//! it would have to compute; `olmo_core` renders those runs as OLMo-core configs, the Python
//! driver that reads them, and launch scripts; `megatron` as Megatron-LM launch scripts;
//! `torchtitan` as torchtitan config modules with a shipped helper module.

pub mod megatron;
pub mod olmo_core;
pub mod parallel;
pub mod pieces;
pub mod python;
pub mod runs;
pub mod torchtitan;

pub use runs::{EngineRun, Given, Lowering, Options, Skip, Target, Unmappable, lower};
