//! A run's LR as megatron-core's `OptimizerParamScheduler` computes it. Megatron-LM counts the
//! scheduler's position in samples: iteration `k` of a run that loaded `n0` samples of
//! scheduler state runs at `n0 + k * global_batch`. The plan's LR at that iteration is the
//! curve at token `offset + k * tokens_per_step`, so a token position `x` is the sample
//! position `n0 + (x - offset) / seq_len` of this run, and every boundary of the curve is
//! placed on that axis.
//!
//! The scheduler has one shape: a linear warm-up from `init` over `[0, W]`, then `constant`,
//! a linear or cosine decay over `[W, D]`, or `WSD` (flat at the peak, then a linear, cosine
//! or 1-sqrt decay over the last `S` samples before `D`), then `min` after `D`. A schedule's
//! pieces are fitted to that shape; positions are rounded to whole samples, and the LR error
//! the rounding causes is measured at every iteration of the run (`Fit::max_rel_error`).

use pipelang::plan::lr::{Piece, Shape};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Style {
    #[serde(rename = "constant")]
    Constant,
    #[serde(rename = "linear")]
    Linear,
    #[serde(rename = "cosine")]
    Cosine,
    #[serde(rename = "WSD")]
    Wsd,
}

impl Style {
    pub fn flag(self) -> &'static str {
        match self {
            Style::Constant => "constant",
            Style::Linear => "linear",
            Style::Cosine => "cosine",
            Style::Wsd => "WSD",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WsdStyle {
    Linear,
    Cosine,
    MinusSqrt,
}

impl WsdStyle {
    pub fn flag(self) -> &'static str {
        match self {
            WsdStyle::Linear => "linear",
            WsdStyle::Cosine => "cosine",
            WsdStyle::MinusSqrt => "minus_sqrt",
        }
    }
}

/// The scheduler's arguments as Megatron-LM's flags give them (positions in samples).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sched {
    /// `--lr-warmup-init`
    pub init: f64,
    /// `--lr`
    pub max: f64,
    /// `--min-lr`
    pub min: f64,
    /// `--lr-warmup-samples`
    pub warmup: u64,
    /// `--lr-decay-samples`
    pub decay: u64,
    /// `--lr-decay-style`
    pub style: Style,
    /// `--lr-wsd-decay-samples`, `--lr-wsd-decay-style` (WSD only)
    pub wsd: Option<(u64, WsdStyle)>,
}

impl Sched {
    /// `OptimizerParamScheduler.get_lr` at `n` samples (a port, float for float).
    pub fn at(&self, n: u64) -> f64 {
        let (w, d) = (self.warmup, self.decay);
        if w > 0 && n <= w {
            return self.init + (self.max - self.init) * n as f64 / w as f64;
        }
        if self.style == Style::Constant {
            return self.max;
        }
        if n > d {
            return self.min;
        }
        let ratio = (n - w) as f64 / (d - w) as f64;
        let pi = std::f64::consts::PI;
        let coeff = match self.style {
            Style::Linear => 1.0 - ratio,
            Style::Cosine => 0.5 * ((pi * ratio).cos() + 1.0),
            Style::Wsd => {
                let (s, ws) = self.wsd.expect("WSD has its decay samples");
                let start = d - s;
                if n <= start {
                    1.0
                } else {
                    let r = (n - start) as f64 / s as f64;
                    match ws {
                        WsdStyle::Linear => 1.0 - r,
                        WsdStyle::Cosine => 0.5 * ((pi * r).cos() + 1.0),
                        WsdStyle::MinusSqrt => 1.0 - r.sqrt(),
                    }
                }
            }
            Style::Constant => unreachable!(),
        };
        self.min + coeff * (self.max - self.min)
    }
}

/// Where a run sits on Megatron's sample axis.
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    /// Scheduler samples loaded from the checkpoint (0 for a fresh scheduler).
    pub n0: u64,
    /// Token position on the schedule's span of the run's first token.
    pub offset: f64,
    pub seq_len: u64,
}

impl Axis {
    fn n(&self, x: f64) -> f64 {
        self.n0 as f64 + (x - self.offset) / self.seq_len as f64
    }
}

/// The fitted scheduler and how far it is from the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    pub sched: Sched,
    /// The largest relative distance from the plan's LR over the run's iterations.
    pub max_rel_error: f64,
    /// The largest distance, in samples, of a fitted position from the exact one.
    pub max_rounding: f64,
}

enum Dir {
    Rise,
    Flat,
    Fall,
}

fn dir(p: &Piece) -> Option<Dir> {
    let (from, to) = match p.shape {
        Shape::Linear { from, to } => (from, to),
        Shape::Cosine { from, to } | Shape::CosinePart { from, to, .. } => (from, to),
        Shape::Sqrt { from, to } => (from, to),
        Shape::Exponential { .. } => return None,
    };
    let same = (from - to).abs() <= 1e-12 * from.abs().max(to.abs());
    match p.shape {
        Shape::Linear { .. } if same => Some(Dir::Flat),
        Shape::Linear { .. } if to > from => Some(Dir::Rise),
        _ if to < from => Some(Dir::Fall),
        _ => None,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Exact (unrounded) scheduler positions, fitted to `pieces` (consecutive, in order) as far as
/// they go; returns how many pieces fit.
struct Exact {
    init: f64,
    max: f64,
    min: Option<f64>,
    warmup: f64,
    style: Style,
    decay: Option<f64>,
    wsd: Option<(f64, WsdStyle)>,
}

fn fit_exact(pieces: &[Piece], ax: &Axis) -> (Exact, usize) {
    let mut e = Exact {
        init: 0.0,
        max: 0.0,
        min: None,
        warmup: 0.0,
        style: Style::Constant,
        decay: None,
        wsd: None,
    };
    let mut i = 0;
    let mut have_max = false;
    let mut flat = false;
    if let Some(p) = pieces.first() {
        if let (Some(Dir::Rise), Shape::Linear { from, to }) = (dir(p), p.shape) {
            let (s, t) = (ax.n(p.start), ax.n(p.end));
            e.warmup = t;
            e.max = to;
            // The warm-up line always starts at sample 0: extend this piece's line back to it.
            e.init = from - (to - from) * s / (t - s);
            have_max = true;
            i = 1;
        }
    }
    if let Some(p) = pieces.get(i) {
        if let (Some(Dir::Flat), Shape::Linear { from, .. }) = (dir(p), p.shape) {
            if !have_max || close(from, e.max) {
                if !have_max {
                    e.max = from;
                    e.init = from;
                }
                have_max = true;
                flat = true;
                i += 1;
            }
        }
    }
    let Some(p) = pieces.get(i) else {
        return (e, i);
    };
    if !matches!(dir(p), Some(Dir::Fall)) {
        return (e, i);
    }
    let (from, to) = match p.shape {
        Shape::Linear { from, to }
        | Shape::Cosine { from, to }
        | Shape::CosinePart { from, to, .. }
        | Shape::Sqrt { from, to } => (from, to),
        Shape::Exponential { .. } => unreachable!("not a fall"),
    };
    if have_max && !close(from, e.max) {
        return (e, i);
    }
    let (s, t) = (ax.n(p.start), ax.n(p.end));
    // A cosine cut at `part` of its horizon is the whole cosine over the longer span.
    let end = match p.shape {
        Shape::CosinePart { part, .. } => s + (t - s) / part,
        _ => t,
    };
    let shape = match p.shape {
        Shape::Linear { .. } => WsdStyle::Linear,
        Shape::Cosine { .. } | Shape::CosinePart { .. } => WsdStyle::Cosine,
        _ => WsdStyle::MinusSqrt,
    };
    if !flat && shape != WsdStyle::MinusSqrt {
        if !have_max {
            e.max = from;
            e.init = from;
            // Held at the peak over [0, W]: the fall starts at W.
            e.warmup = s.max(0.0);
            if s < 0.0 {
                if shape != WsdStyle::Linear {
                    return (e, i);
                }
                // A line entered part-way: the same line from sample 0 with the value it has
                // there as its peak.
                e.max = from + (to - from) * (0.0 - s) / (t - s);
                e.init = e.max;
            }
        } else if !close(s, e.warmup) {
            return (e, i);
        }
        e.style = if shape == WsdStyle::Linear {
            Style::Linear
        } else {
            Style::Cosine
        };
    } else {
        if !have_max {
            e.max = from;
            e.init = from;
        }
        if s < e.warmup - 1e-9 || s < 0.0 {
            return (e, i);
        }
        e.style = Style::Wsd;
        e.wsd = Some((end - s, shape));
    }
    e.decay = Some(end);
    e.min = Some(to);
    i += 1;
    // The floor after the decay.
    if let Some(p) = pieces.get(i) {
        if let (Some(Dir::Flat), Shape::Linear { from, .. }) = (dir(p), p.shape) {
            if close(from, to) && matches!(p.shape, Shape::Linear { .. }) && end <= t + 1e-9 {
                i += 1;
            }
        }
    }
    (e, i)
}

/// Rounds the exact fit to whole samples and measures the run against the plan.
fn rounded(
    e: &Exact,
    min_default: f64,
    ax: &Axis,
    gbs: u64,
    steps: u64,
    plan: &dyn Fn(u64) -> f64,
) -> Option<Fit> {
    let mut dev: f64 = 0.0;
    let mut round = |x: f64| -> u64 {
        let r = x.round().max(0.0);
        dev = dev.max((x - r).abs());
        r as u64
    };
    let warmup = round(e.warmup);
    let last = ax.n0 + steps.saturating_sub(1) * gbs;
    let (decay, wsd) = match e.decay {
        Some(d) => {
            let d = round(d);
            let wsd = e.wsd.map(|(s, st)| (round(s).max(1), st));
            (d, wsd)
        }
        // Constant after the warm-up: the decay end only has to lie past the warm-up.
        None => ((warmup + 1).max(last + 1), None),
    };
    if decay <= warmup || decay == 0 {
        return None;
    }
    if let Some((s, _)) = wsd {
        if s > decay {
            return None;
        }
    }
    let sched = Sched {
        init: e.init.min(e.max),
        max: e.max,
        min: e.min.unwrap_or(min_default.min(e.max)),
        warmup,
        decay,
        style: e.style,
        wsd,
    };
    if sched.min < 0.0 || sched.init < 0.0 {
        return None;
    }
    let mut err: f64 = 0.0;
    for k in 0..steps {
        let want = plan(k);
        let got = sched.at(ax.n0 + k * gbs);
        err = err.max((got - want).abs() / want.abs().max(f64::MIN_POSITIVE));
    }
    Some(Fit {
        sched,
        max_rel_error: err,
        max_rounding: dev,
    })
}

/// A fit this close to the plan is exact (float rounding only).
pub const EXACT: f64 = 1e-9;

/// Fits the schedule's `pieces` (its whole curve) for a run on `ax`: from the earliest piece
/// the fit can start at and still cover the run, so the runs of one schedule get the same
/// flags; when none is exact, the one with the smallest LR error. `min_default` is the floor
/// when the fitted pieces reach none (the chain's: a resumed optimizer keeps its stored
/// bounds). `None`: Megatron's scheduler cannot follow the run's LR.
pub fn fit(
    pieces: &[Piece],
    ax: &Axis,
    gbs: u64,
    steps: u64,
    min_default: f64,
    plan: &dyn Fn(u64) -> f64,
) -> Option<Fit> {
    let run_end = ax.offset + (steps.saturating_sub(1) * gbs * ax.seq_len) as f64;
    let mut best: Option<Fit> = None;
    for start in 0..pieces.len() {
        let (e, n) = fit_exact(&pieces[start..], ax);
        if n == 0 {
            continue;
        }
        let reach = pieces[start + n - 1].end;
        let covers = (pieces[start].start <= ax.offset + 1e-9 || start == 0)
            && (reach >= run_end - 1e-9 || start + n == pieces.len());
        if !covers {
            continue;
        }
        if let Some(f) = rounded(&e, min_default, ax, gbs, steps, plan) {
            if f.max_rel_error <= EXACT {
                return Some(f);
            }
            if best
                .as_ref()
                .is_none_or(|b| f.max_rel_error < b.max_rel_error)
            {
                best = Some(f);
            }
        }
    }
    best
}
