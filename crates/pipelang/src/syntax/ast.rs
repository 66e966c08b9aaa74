//! The untyped syntax tree. It keeps the shape of the text (with byte spans); meaning,
//! units and types are the checker's job.

use super::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct File {
    pub items: Vec<Item>,
    pub errors: Vec<SyntaxError>,
}

#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub span: Span,
    /// What was found, e.g. "`Q`" or "end of file".
    pub found: String,
    /// What the grammar would have accepted at `span.start`.
    pub expected: Vec<String>,
    /// The whole region that was skipped to recover.
    pub skipped: Span,
    /// The field a skipped entry was setting (`budget` in `budget = 1.5Q`): the checker does
    /// not also report it missing.
    pub key: Option<String>,
    /// A related place, e.g. the `{` that was never closed.
    pub note: Option<(Span, String)>,
}

#[derive(Debug, Clone)]
pub enum Item {
    Pipeline(PipelineItem),
    Model(ModelItem),
    Data(DataItem),
    Schedule(ScheduleItem),
    Stage(StageItem),
    Profile(ProfileItem),
    Mix(MixItem),
}

impl Item {
    pub fn name(&self) -> &Ident {
        match self {
            Item::Pipeline(i) => &i.name,
            Item::Model(i) => &i.name,
            Item::Data(i) => &i.name,
            Item::Schedule(i) => &i.name,
            Item::Stage(i) => &i.name,
            Item::Profile(i) => &i.name,
            Item::Mix(i) => &i.name,
        }
    }
    pub fn span(&self) -> Span {
        match self {
            Item::Pipeline(i) => i.span,
            Item::Model(i) => i.span,
            Item::Data(i) => i.span,
            Item::Schedule(i) => i.span,
            Item::Stage(i) => i.span,
            Item::Profile(i) => i.span,
            Item::Mix(i) => i.span,
        }
    }
    pub fn keyword(&self) -> &'static str {
        match self {
            Item::Pipeline(_) => "pipeline",
            Item::Model(_) => "model",
            Item::Data(_) => "data",
            Item::Schedule(_) => "schedule",
            Item::Stage(_) => "stage",
            Item::Profile(_) => "profile",
            Item::Mix(_) => "mix",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PipelineItem {
    pub name: Ident,
    pub body: Body,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct ModelItem {
    pub name: Ident,
    pub kind: Ident,
    pub args: Option<Args>,
    pub body: Body,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct DataItem {
    pub name: Ident,
    pub kind: Ident,
    pub args: Args,
    pub body: Option<Body>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct ScheduleItem {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct StageItem {
    pub name: Ident,
    /// Stage references as written: `pretrain`, a group `mid`, a variant `mid[42]`.
    pub after: Vec<Ident>,
    /// One per name in `after`: the branch point written after it (`after stage4 @ 925B`).
    pub at: Vec<Option<BranchAt>>,
    /// `vary seed = [42, 42069, 666]`: the stage stands for one stage per value.
    pub vary: Option<Vary>,
    /// `= average(mid)`: a soup, whose weights are the mean of its inputs' final weights.
    pub average: Option<Average>,
    /// A soup written without a body has an empty one, zero-width at the item's end.
    pub body: Body,
    pub span: Span,
}

/// `@ 925B`, `@ 9000 steps`, `@ end - 75B`: where inside a stage a branch starts.
#[derive(Debug, Clone)]
pub struct BranchAt {
    /// Written as `end - amount`.
    pub from_end: bool,
    /// A quantity: tokens, or steps with the word `steps`.
    pub amount: Expr,
    /// From `@` to the end of the amount.
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Vary {
    pub field: Ident,
    /// The list of values (an `ExprKind::List`).
    pub values: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Average {
    pub inputs: Vec<AverageInput>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct AverageInput {
    pub stage: Ident,
    /// `mid[42] = 60%`: the input's weight in the mean; all inputs or none have one.
    pub weight: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct ProfileItem {
    pub name: Ident,
    pub body: Body,
    pub span: Span,
}

/// `mix NAME { ... }`: a mixture stages use by name.
#[derive(Debug, Clone)]
pub struct MixItem {
    pub name: Ident,
    pub body: Body,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Body {
    pub entries: Vec<Entry>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Entry {
    /// `key = value` or `key = value { ... }` (a mixture group).
    Field(Field),
    /// `mix { ... }`, `phase NAME { ... }`, `model NAME { ... }` in a profile.
    Block(BlockEntry),
    /// `scale tokens by 1e-6`
    Scale(ScaleEntry),
}

impl Entry {
    pub fn span(&self) -> Span {
        match self {
            Entry::Field(f) => f.span,
            Entry::Block(b) => b.span,
            Entry::Scale(s) => s.span,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub key: Ident,
    pub value: Expr,
    pub body: Option<Body>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct BlockEntry {
    pub keyword: Ident,
    pub name: Option<Ident>,
    pub body: Body,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct ScaleEntry {
    pub what: Ident,
    pub factor: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Args {
    pub args: Vec<Arg>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// A count suffix as written. Its value depends on where the number stands: in a token amount
/// `K` is 1,000, in a sequence length 1,024. The checker decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suffix {
    None,
    K,
    M,
    B,
    T,
    Percent,
}

impl Suffix {
    /// The suffix a character after a number stands for, if any. The parsers and `--at` read
    /// letters here; what they multiply by is `check::units`' business.
    pub fn from_char(c: char) -> Option<Suffix> {
        match c {
            'K' => Some(Suffix::K),
            'M' => Some(Suffix::M),
            'B' => Some(Suffix::B),
            'T' => Some(Suffix::T),
            '%' => Some(Suffix::Percent),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Suffix::None => "",
            Suffix::K => "K",
            Suffix::M => "M",
            Suffix::B => "B",
            Suffix::T => "T",
            Suffix::Percent => "%",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    /// The number as written, without suffix (`_` removed).
    pub number: f64,
    pub suffix: Suffix,
    /// Followed by the word `steps`.
    pub steps: bool,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Quantity(Quantity),
    /// `1/256`
    Ratio(Box<Expr>, Box<Expr>),
    Str(String),
    Ident(String),
    List(Vec<Expr>),
    Call {
        name: Ident,
        args: Args,
    },
    /// `a -> b`
    Transition(Box<Expr>, Box<Expr>),
    /// `a then b then c`
    Chain(Vec<Expr>),
}

impl Expr {
    pub fn as_ident(&self) -> Option<&str> {
        match &self.kind {
            ExprKind::Ident(s) => Some(s),
            _ => None,
        }
    }

    /// A value written as a call or a bare name (`adamw(beta2 = 0.99)`, `adamw`, `yarn(...)`,
    /// `none`): the name, and the arguments when there are any. `None` for any other value.
    pub fn as_call(&self) -> Option<(Ident, Option<&Args>)> {
        match &self.kind {
            ExprKind::Call { name, args } => Some((name.clone(), Some(args))),
            ExprKind::Ident(n) => Some((
                Ident {
                    name: n.clone(),
                    span: self.span,
                },
                None,
            )),
            _ => None,
        }
    }
}
