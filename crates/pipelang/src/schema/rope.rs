//! `rope_scaling = KIND(...)`: the RoPE frequency scalings a decoder, a stage or a phase may
//! state, their arguments, defaults and ranges, declared once. The frequencies themselves are
//! computed in `plan::rope`.

/// What an argument holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArgTy {
    /// A number; `min` is exclusive.
    Number { min: f64 },
    /// A sequence length (`4K` = 4,096).
    Length,
}

/// One argument of a scaling.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    pub name: &'static str,
    pub ty: ArgTy,
    /// `None`: required.
    pub default: Option<f64>,
    pub doc: &'static str,
}

/// One kind of scaling.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub name: &'static str,
    /// In positional order.
    pub args: &'static [Arg],
    /// Markdown, for docs and hover: what it does and where its defaults come from.
    pub doc: &'static str,
}

/// The scaling factor of every kind: above 1 (1 is no scaling: write `none`).
const FACTOR: Arg = Arg {
    name: "factor",
    ty: ArgTy::Number { min: 1.0 },
    default: None,
    doc: "how many times longer the context gets; above 1",
};

const ORIGINAL: Arg = Arg {
    name: "original",
    ty: ArgTy::Length,
    default: None,
    doc: "the context the model was trained at before the extension; at most the seq_len it is \
          used at",
};

pub const NONE: &str = "none";

pub const KINDS: [Kind; 4] = [
    Kind {
        name: NONE,
        args: &[],
        doc: "the plain frequencies `base^(-2i/d)`",
    },
    Kind {
        name: "linear",
        args: &[FACTOR],
        doc: "position interpolation (Chen et al. 2023): every frequency divided by `factor`",
    },
    Kind {
        name: "yarn",
        args: &[
            FACTOR,
            ORIGINAL,
            Arg {
                name: "alpha",
                ty: ArgTy::Number { min: 0.0 },
                default: Some(1.0),
                doc: "pairs with fewer rotations than this in the original context are divided \
                      by `factor` (the paper's alpha, `beta_slow` in HF configs)",
            },
            Arg {
                name: "beta",
                ty: ArgTy::Number { min: 0.0 },
                default: Some(32.0),
                doc: "pairs with more rotations than this keep their frequency; a linear ramp \
                      between (the paper's beta, `beta_fast` in HF configs); above `alpha`",
            },
        ],
        doc: "YaRN (Peng et al. 2023, §3.2-3.4; DeepSeek-V3 §4.3: `factor = 40, original = 4K`), \
              as the authors' code computes it, with the attention temperature \
              `sqrt(1/t) = 0.1 ln(factor) + 1` on queries and keys; `alpha = 1, beta = 32` are \
              the paper's",
    },
    Kind {
        name: "llama3",
        args: &[
            Arg {
                name: "factor",
                default: Some(8.0),
                ..FACTOR
            },
            Arg {
                name: "low_freq",
                ty: ArgTy::Number { min: 0.0 },
                default: Some(1.0),
                doc: "wavelengths above `original / low_freq` are divided by `factor`",
            },
            Arg {
                name: "high_freq",
                ty: ArgTy::Number { min: 0.0 },
                default: Some(4.0),
                doc: "wavelengths below `original / high_freq` are kept, those between \
                      interpolated smoothly; above `low_freq`",
            },
            Arg {
                name: "original",
                default: Some(8192.0),
                ..ORIGINAL
            },
        ],
        doc: "Llama 3.1's frequency scaling; the defaults are the released model's \
              (`factor = 8, low_freq = 1, high_freq = 4, original = 8K`)",
    },
];

pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|k| k.name)
}

/// The table of `docs/language.md` under `<!-- rope scalings -->` (held to it by
/// `tests/schema.rs`).
pub fn docs_table() -> String {
    let mut out = String::from("| scaling | arguments (defaults) | |\n|---|---|---|\n");
    for k in &KINDS {
        let args: Vec<String> = k
            .args
            .iter()
            .map(|a| match a.default {
                None => format!("`{}`", a.name),
                Some(d) if a.ty == ArgTy::Length => {
                    format!("`{} = {}`", a.name, crate::check::units::length(d as u64))
                }
                Some(d) => format!("`{} = {}`", a.name, crate::check::units::trim(d)),
            })
            .collect();
        let args = if args.is_empty() {
            "none".to_string()
        } else {
            args.join(", ")
        };
        out.push_str(&format!("| `{}` | {args} | {} |\n", k.name, k.doc));
    }
    out
}

/// The arguments' table under `<!-- rope scaling arguments -->`.
pub fn args_table() -> String {
    let mut out = String::from("| argument | of | |\n|---|---|---|\n");
    let mut seen: Vec<(&str, &str)> = vec![];
    for k in &KINDS {
        for a in k.args {
            if !seen.contains(&(a.name, a.doc)) {
                seen.push((a.name, a.doc));
            }
        }
    }
    for (name, doc) in seen {
        let of: Vec<String> = KINDS
            .iter()
            .filter(|k| k.args.iter().any(|a| a.name == name && a.doc == doc))
            .map(|k| format!("`{}`", k.name))
            .collect();
        out.push_str(&format!("| `{name}` | {} | {doc} |\n", of.join(", ")));
    }
    out
}
