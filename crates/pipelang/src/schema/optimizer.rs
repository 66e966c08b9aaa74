//! `optimizer = adamw(beta1 = B1, beta2 = B2, eps = E, weight_decay = W, clip = C)`: the AdamW
//! settings, declared once with their defaults. The pipeline's apply to every stage; a stage's
//! own `optimizer` replaces the arguments it writes and keeps the pipeline's for the rest.

/// The one optimizer the language knows.
pub const ADAMW: &str = "adamw";

/// One argument of `adamw(...)`: its default and the range it must lie in.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub default: f64,
    pub doc: &'static str,
    /// Lowest allowed value, and whether it is allowed itself.
    pub min: (f64, bool),
    /// Highest allowed value, exclusive (`None`: unbounded).
    pub below: Option<f64>,
}

/// In positional order.
pub const PARAMS: [Param; 5] = [
    Param {
        name: "beta1",
        default: 0.9,
        doc: "decay of the first moment",
        min: (0.0, true),
        below: Some(1.0),
    },
    Param {
        name: "beta2",
        default: 0.95,
        doc: "decay of the second moment",
        min: (0.0, true),
        below: Some(1.0),
    },
    Param {
        name: "eps",
        default: 1e-8,
        doc: "added to the root of the second moment",
        min: (0.0, false),
        below: None,
    },
    Param {
        name: "weight_decay",
        default: 0.1,
        doc: "decoupled, times the LR; matrices and embeddings only",
        min: (0.0, true),
        below: None,
    },
    Param {
        name: "clip",
        default: 1.0,
        doc: "global gradient-norm threshold; `0` does not clip",
        min: (0.0, true),
        below: None,
    },
];
