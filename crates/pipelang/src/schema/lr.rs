//! The LR functions and their arguments, declared once: lowering (`check/lower_lr.rs`) binds
//! arguments with these lists and the language server completes them.

/// One LR function: its parameters in positional order and the ones it cannot do without.
#[derive(Debug, Clone, Copy)]
pub struct LrFunction {
    pub name: &'static str,
    pub params: &'static [&'static str],
    pub required: &'static [&'static str],
}

/// Every LR function, in the order of the docs.
pub const FUNCTIONS: &[LrFunction] = &[
    LrFunction {
        name: "constant",
        params: &["lr", "over", "until"],
        required: &["lr"],
    },
    LrFunction {
        name: "linear",
        params: &["from", "to", "over", "until"],
        required: &["to"],
    },
    LrFunction {
        name: "cosine",
        params: &["peak", "warmup", "min", "over", "horizon", "until"],
        required: &[],
    },
    LrFunction {
        name: "wsd",
        params: &["peak", "warmup", "decay", "min", "shape"],
        required: &["peak", "warmup", "decay"],
    },
    LrFunction {
        name: "rewarmup",
        params: &["to", "over", "until"],
        required: &["to"],
    },
    LrFunction {
        name: "exponential",
        params: &["half_life", "min", "from", "over", "until"],
        required: &["half_life"],
    },
];

/// The names of `FUNCTIONS`, for "did you mean" and completion.
pub const NAMES: &[&str] = &[
    "constant",
    "linear",
    "cosine",
    "wsd",
    "rewarmup",
    "exponential",
];

/// The shapes a `wsd` decay may take: the words, and `exponential(...)` with these arguments.
pub const DECAY_SHAPES: &[&str] = &["linear", "cosine", "sqrt", "exponential"];
pub const EXPONENTIAL_SHAPE_PARAMS: &[&str] = &["half_life"];

pub fn function(name: &str) -> Option<&'static LrFunction> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_functions() {
        let names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        assert_eq!(names, NAMES);
        for f in FUNCTIONS {
            for r in f.required {
                assert!(
                    f.params.contains(r),
                    "{}: `{r}` required but not a parameter",
                    f.name
                );
            }
        }
    }
}
