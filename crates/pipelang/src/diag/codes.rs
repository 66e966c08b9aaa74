//! The registry of diagnostic codes. A code never changes meaning once released; each has a
//! page `docs/errors/P0xxx.md` (a test keeps the two in step).

use super::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(pub &'static str);

#[derive(Debug, Clone, Copy)]
pub struct CodeInfo {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

macro_rules! codes {
    ($($id:ident = $code:literal, $name:literal, $sev:ident, $summary:literal;)*) => {
        impl Code { $(pub const $id: Code = Code($code);)* }
        pub const CODES: &[CodeInfo] = &[
            $(CodeInfo { code: $code, name: $name, severity: Severity::$sev, summary: $summary },)*
        ];
    };
}

codes! {
    SYNTAX = "P0001", "syntax-error", Error, "the text does not follow the grammar";
    NO_PIPELINE = "P0002", "pipeline-block", Error, "no `pipeline` block, or more than one";
    IO = "P0003", "io-error", Error, "a file could not be read";
    UNDECLARED = "P0101", "undeclared-name", Error, "a name is used but never declared";
    DUPLICATE = "P0102", "duplicate-declaration", Error, "two items or entries share a name";
    UNKNOWN_FIELD = "P0103", "unknown-field", Error, "a field or block that this item does not have";
    MISSING_FIELD = "P0104", "missing-field", Error, "a required field is missing";
    UNUSED = "P0105", "unused-item", Warning, "a declared model, data source, schedule or mixture is never used";
    UNKNOWN_KIND = "P0106", "unknown-kind", Error, "an unknown model kind, data kind, loss or LR function";
    WRONG_NAME_KIND = "P0107", "wrong-kind-of-name", Error, "a name of the wrong kind (a data source where a model is due)";
    TYPE = "P0201", "type-mismatch", Error, "a value of the wrong type or unit for its field";
    RANGE = "P0202", "out-of-range", Error, "a value outside its allowed range";
    MIN_ABOVE_PEAK = "P0203", "min-above-peak", Error, "an LR minimum above its peak";
    TOO_LONG = "P0204", "duration-too-long", Error, "a warmup, decay or re-warm-up not shorter than its span";
    HEADS = "P0205", "heads-do-not-divide", Error, "attention heads do not divide d_model";
    EXPERTS = "P0206", "too-many-active-experts", Error, "more active experts than experts";
    ARGUMENTS = "P0207", "bad-arguments", Error, "missing, unknown or repeated arguments of a function";
    ROUNDING = "P0208", "budget-rounding", Warning, "whole steps change a token budget by more than 0.1%";
    AVERAGE_WINDOW = "P0240", "average-window", Error, "a checkpoint-averaging window longer than its stage, or covering no step";
    AVERAGE_AND_EMA = "P0241", "average-and-ema", Error, "a stage with both `average` and `ema`";
    UNDER_A_STEP = "P0209", "duration-under-a-step", Error, "an LR schedule duration in tokens shorter than one step";
    BATCH_BOTH = "P0210", "batch-and-batch-tokens", Error, "a stage or phase sets both `batch` and `batch_tokens`";
    BATCH_TOKENS_ROUNDING = "P0211", "batch-tokens-rounding", Warning, "`batch_tokens` is not a whole number of sequences at the seq_len (off by more than 0.1%)";
    ABSURD_BATCH = "P0212", "absurd-batch", Warning, "a batch in sequences that makes an absurd number of tokens per step (tokens meant?)";
    KV_HEADS = "P0220", "kv-heads-do-not-divide", Error, "key/value heads do not divide the query heads";
    DENSE_LAYERS = "P0221", "no-moe-layer-left", Error, "`dense_layers` leaves no layer for the experts";
    ROPE_SCALING_FACTOR = "P0230", "rope-scaling-factor", Error, "a RoPE scaling factor not above 1";
    ROPE_SCALING_BAND = "P0231", "rope-scaling-band", Error, "a RoPE scaling's band edges in the wrong order (YaRN's `alpha` not below `beta`, Llama 3's `low_freq` not below `high_freq`)";
    ROPE_SCALING_ORIGINAL = "P0232", "rope-scaling-original", Error, "a RoPE scaling's `original` context longer than the seq_len it is used at";
    CYCLE = "P0301", "stage-cycle", Error, "stages depend on each other in a cycle";
    TRAINED_AND_FROZEN = "P0302", "trained-and-frozen", Error, "a model is both trained and frozen in one stage";
    AMBIGUOUS_WEIGHTS = "P0303", "ambiguous-weights", Error, "a model's weights could come from two predecessors";
    TRAINS_NOTHING = "P0304", "trains-nothing", Error, "a stage trains no model";
    UNTRAINED_FROZEN = "P0305", "frozen-untrained", Error, "a frozen model was never trained before the stage";
    FROM_SCRATCH = "P0306", "unlinked-weights", Warning, "a model starts from scratch although another stage trains it";
    LR_SCALE_MODEL = "P0307", "lr-scale-model", Error, "an `lr_scale` names a model the stage does not train";
    BRANCH_OUTSIDE = "P0310", "branch-outside-stage", Error, "a branch point at or beyond the start or end of its stage";
    BRANCH_ROUNDED = "P0311", "branch-rounded", Warning, "a branch point in tokens rounds to a step boundary more than 0.1% away";
    BRANCH_RESUME = "P0312", "branch-resume", Error, "a branch continues the schedule of the stage it branches from";
    BRANCH_TWICE = "P0313", "branch-twice", Error, "a stage branches from more than one checkpoint";
    INIT_MISSING = "P0330", "init-missing", Error, "a model's `init` file or folder is not there";
    INIT_NOT_SAFETENSORS = "P0331", "init-not-safetensors", Error, "a model's `init` is not a readable safetensors file";
    INIT_MISSING_TENSOR = "P0332", "init-missing-tensor", Error, "a model's `init` lacks tensors the declared model has";
    INIT_SHAPE = "P0333", "init-shape", Error, "a tensor of a model's `init` has another shape than the declared model's";
    INIT_DTYPE = "P0334", "init-dtype", Error, "a tensor of a model's `init` is not a float";
    VARY_FIELD = "P0320", "vary-field", Error, "`vary` names a field that cannot vary, or that the stage also sets";
    VARY_EMPTY = "P0321", "vary-values", Error, "a `vary` list that is empty or holds a value that is no variant key";
    VARY_DUPLICATE = "P0322", "vary-duplicate", Error, "a `vary` list holds the same value twice";
    VARIANT_GROUP = "P0323", "variant-group", Error, "a group of variants where one stage is due";
    AVERAGE_MISMATCH = "P0324", "average-mismatch", Error, "averaged stages do not train the same models";
    SOUP_FIELDS = "P0325", "soup-trains", Error, "a soup (`= average(...)`) with a budget or other training fields";
    AVERAGE_WEIGHTS = "P0326", "average-weights", Error, "the weights of an average are partial, repeated or do not add up to 100%";
    MIX_TOTAL = "P0401", "mixture-total", Error, "mixture shares do not add up to 100% at some point";
    MIX_REST = "P0402", "mixture-rest", Error, "more than one `rest`, or a `rest` that would be negative";
    DATA_KIND = "P0403", "data-not-consumable", Error, "the stage's models cannot consume a data source's kind";
    NO_DATA = "P0404", "no-data", Error, "a stage has no data, or more than one of `data`, `mix = NAME` and `mix { ... }`";
    LOSS_MODELS = "P0405", "loss-needs-models", Error, "the loss needs models the stage does not have";
    VOCAB_TOO_SMALL = "P0406", "vocab-too-small", Error, "a decoder's vocab is below the token ids of a source that feeds it";
    MIXED_TOKENIZERS = "P0407", "mixed-tokenizers", Error, "one decoder reads sources of a stage through different tokenizers";
    MIX_CYCLE = "P0408", "mixture-cycle", Error, "a mixture refers to itself, directly or through other mixtures";
    MIX_STAGE_RAMP = "P0409", "mixture-of-ramping-stage", Error, "a mixture refers to a stage whose mixture ramps";
    RESUME_NONE = "P0501", "resume-without-schedule", Error, "`resume` has no schedule to continue";
    RESUME_AMBIGUOUS = "P0502", "resume-ambiguous", Error, "`resume` could continue more than one schedule";
    NOT_REWARMUP = "P0503", "rewarmup-not-above", Warning, "a re-warm-up target not above the hand-over LR";
    TRANSITION = "P0504", "transition-mismatch", Error, "a transition's left side differs from the inherited value";
    DISAGREE = "P0505", "predecessors-disagree", Error, "predecessors hand over different values";
    PHASES = "P0506", "phase-budgets", Error, "phase budgets do not add up to the stage budget";
    SCHEDULE_RESTART = "P0507", "schedule-restarted", Error, "a named schedule is started by more than one stage";
    PHASE_REST = "P0508", "phase-rest", Error, "a phase `rest` that is not the last phase, or that nothing is left for";
    SHARE_OF_STEPS = "P0509", "share-of-steps", Error, "a share of a budget in steps that is not a whole number of steps";
    RESUME_MOVES_LR = "P0510", "resume-moves-lr", Advice, "a stage that resumes a schedule changes the LR of the stages before it";
    PROFILE_TARGET = "P0601", "profile-unknown-target", Error, "a profile names something the pipeline does not have";
    PROFILE_UNKNOWN = "P0602", "unknown-profile", Error, "no profile of that name";
    PROFILE_VALUE = "P0603", "profile-value", Error, "a profile's scaling gives an invalid value";
    DATA_FILES = "P0701", "data-files", Error, "a data source's files are missing, empty or malformed";
    DATA_REPEATED = "P0702", "data-repeated", Warning, "the stages read a data source for more than 4 epochs";
    DATA_SAMPLES_SKIPPED = "P0703", "data-samples-skipped", Warning, "some WebDataset samples have no image or caption, or an image that does not decode";
    RELOAD_REFUSED = "P0801", "reload-refused", Error, "a live edit changes what already ran";
    ENGINE_CANNOT_TRAIN = "P0901", "engine-cannot-train", Error, "an external engine cannot train a stage";
    ENGINE_LR_UNEXPRESSIBLE = "P0902", "engine-lr-unexpressible", Error, "an engine's LR scheduler cannot follow a run's LR";
    ENGINE_APPROXIMATION = "P0903", "engine-approximation", Warning, "an engine run approximates the plan (positions or RoPE base rounded)";
    ENGINE_PARALLEL_LAYOUT = "P0904", "engine-parallel-layout", Error, "a parallel layout does not divide the recipe";
    ENGINE_SKIPPED_STAGE = "P0905", "engine-skipped-stage", Error, "an export skips a stage whose weights a later stage needs";
}

impl Code {
    pub fn info(self) -> &'static CodeInfo {
        CODES
            .iter()
            .find(|c| c.code == self.0)
            .expect("every Code constant is in CODES")
    }
    pub fn as_str(self) -> &'static str {
        self.0
    }
}
