//! What every picture of a plan shares, whatever draws it (`pipe plan --plot` with plotters,
//! the editor's hand-written SVG): where each stage sits (branches of the stage graph in
//! parallel lanes), an x axis on which a short stage stays visible, the ticks a reader of the
//! recipe recognises, label placement that never overlaps nor leaves the figure, and colours
//! that stay distinct past twenty sources. Pure geometry in fractions and caller-given pixel
//! widths: no drawing library here.

use std::collections::HashMap;

use super::{Plan, StepState};

/// The steps a picture draws of stage `i`, each at its place on the timeline: `per_stage`
/// evenly spaced, plus both sides of every phase boundary and the last step, so transitions
/// show as steps rather than slopes; then the last step's values once more at the stage's end,
/// since they hold until then.
pub fn samples(plan: &Plan, t: &Timeline, i: usize, per_stage: u64) -> Vec<(f64, StepState)> {
    let st = &plan.stages[i];
    // A soup has no steps: nothing of it is drawn in the curves (its band is its inputs' end).
    if st.is_soup() {
        return vec![];
    }
    let n = st.steps.clamp(1, per_stage.max(1));
    let mut steps: Vec<u64> = (0..n).map(|k| k * st.steps.max(1) / n).collect();
    for ph in &st.phases {
        steps.push(ph.first_step);
        steps.push(ph.first_step.saturating_sub(1));
    }
    steps.push(st.steps.saturating_sub(1));
    steps.sort();
    steps.dedup();
    let slot = t.slots[i];
    let mut out: Vec<(f64, StepState)> = steps
        .into_iter()
        .map(|k| {
            let p = plan.step(i, k);
            (slot.start + p.tokens, p)
        })
        .collect();
    if let Some((_, last)) = out.last().cloned() {
        out.push((slot.end, last));
    }
    out
}

/// Where a stage sits: its lane and its token span along the stage graph.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    pub lane: usize,
    pub start: f64,
    pub end: f64,
}

/// The stages laid out along the stage graph: a stage starts when the last stage it runs after
/// ends, so two branches (a ViT trained beside the LLM) overlap instead of being drawn end to
/// end. Lane 0 holds the longest path; every other stage takes the lane of the predecessor it
/// continues when that lane is free, else the first free lane.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Indexed like `Plan::stages`.
    pub slots: Vec<Slot>,
    pub lanes: usize,
    /// Tokens along the longest path (the sum of all stages when nothing runs in parallel).
    pub length: f64,
}

impl Timeline {
    pub fn new(plan: &Plan) -> Timeline {
        let index: HashMap<&str, usize> = plan
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let preds: Vec<Vec<usize>> = plan
            .stages
            .iter()
            .map(|s| {
                s.after
                    .iter()
                    .filter_map(|a| index.get(a.as_str()).copied())
                    .collect()
            })
            .collect();
        // Stages are in execution order, so every predecessor is placed before its successors.
        let mut start = vec![0.0f64; plan.stages.len()];
        let mut end = vec![0.0f64; plan.stages.len()];
        let branch_of: Vec<Option<usize>> = plan
            .stages
            .iter()
            .map(|s| {
                s.branch
                    .as_ref()
                    .and_then(|b| index.get(b.parent.as_str()).copied())
            })
            .collect();
        for (i, st) in plan.stages.iter().enumerate() {
            // A branch leaves its parent at the branch point, not at the parent's end.
            let leaves = |p: usize| match (&st.branch, branch_of[i]) {
                (Some(b), Some(q)) if q == p => start[p] + b.tokens,
                _ => end[p],
            };
            start[i] = preds[i].iter().map(|&p| leaves(p)).fold(0.0, f64::max);
            end[i] = start[i] + st.tokens;
        }
        let length = end.iter().cloned().fold(0.0, f64::max);
        let mut lane: Vec<Option<usize>> = vec![None; plan.stages.len()];
        // The longest path, walked back from the last stage to end: the predecessor that ends
        // where the stage starts (the first in `after` on a tie).
        let mut at = (0..plan.stages.len()).rev().find(|&i| end[i] == length);
        while let Some(i) = at {
            // A branch overlaps the rest of its parent: the trunk goes on through the parent
            // and the branch takes a lane of its own.
            if let Some(p) = branch_of[i] {
                at = Some(p);
                continue;
            }
            lane[i] = Some(0);
            at = preds[i].iter().copied().find(|&p| end[p] == start[i]);
        }
        let overlaps = |a: usize, b: usize| {
            start[a] < end[b] && start[b] < end[a] || (start[a] == start[b] && end[a] == end[b])
        };
        let mut lanes = 1;
        for i in 0..plan.stages.len() {
            if lane[i].is_some() {
                continue;
            }
            let free = |l: usize, lane: &[Option<usize>]| {
                (0..plan.stages.len()).all(|j| j == i || lane[j] != Some(l) || !overlaps(i, j))
            };
            let continued = preds[i]
                .iter()
                .filter(|&&p| end[p] == start[i])
                .filter_map(|&p| lane[p])
                .find(|&l| free(l, &lane));
            let l = continued.unwrap_or_else(|| (1..).find(|&l| free(l, &lane)).unwrap_or(1));
            lane[i] = Some(l);
            lanes = lanes.max(l + 1);
        }
        let slots = (0..plan.stages.len())
            .map(|i| Slot {
                lane: lane[i].unwrap_or(0),
                start: start[i],
                end: end[i],
            })
            .collect();
        Timeline {
            slots,
            lanes,
            length,
        }
    }
}

/// The x axis: token positions to fractions of the width, linear between stage boundaries, with
/// every stretch between two boundaries given at least a minimum share of the width (a 40M
/// anneal after 15T stays a visible band). Ticks stand at the boundaries, so every label is
/// true even where the scale changes.
#[derive(Debug, Clone)]
pub struct Axis {
    /// (token position, fraction of the width), increasing in both.
    knots: Vec<(f64, f64)>,
    /// Stretches drawn wider than their tokens (start, end in tokens).
    pub widened: Vec<(f64, f64)>,
}

impl Axis {
    /// `min_share`: the least fraction of the width a stretch between boundaries gets.
    pub fn new(timeline: &Timeline, min_share: f64) -> Axis {
        let mut cuts: Vec<f64> = timeline
            .slots
            .iter()
            .flat_map(|s| [s.start, s.end])
            .chain([0.0, timeline.length])
            .collect();
        cuts.sort_by(f64::total_cmp);
        cuts.dedup();
        let lens: Vec<f64> = cuts.windows(2).map(|w| w[1] - w[0]).collect();
        let n = lens.len().max(1);
        let min_share = min_share.min(0.5 / n as f64);
        // Stretches under the minimum take it; the others share what is left by their tokens,
        // until no other stretch falls under it.
        let mut fixed = vec![false; lens.len()];
        let shares = loop {
            let left = 1.0 - min_share * fixed.iter().filter(|f| **f).count() as f64;
            let free: f64 = lens.iter().zip(&fixed).filter(|p| !*p.1).map(|p| p.0).sum();
            let shares: Vec<f64> = lens
                .iter()
                .zip(&fixed)
                .map(|(l, f)| match (*f, free > 0.0) {
                    (true, _) => min_share,
                    (false, true) => left * l / free,
                    (false, false) => left,
                })
                .collect();
            let more: Vec<usize> = (0..lens.len())
                .filter(|&i| !fixed[i] && shares[i] < min_share)
                .collect();
            if more.is_empty() {
                break shares;
            }
            for i in more {
                fixed[i] = true;
            }
        };
        let mut knots = vec![(cuts[0], 0.0)];
        let mut widened = vec![];
        let total = timeline.length.max(f64::MIN_POSITIVE);
        for (i, share) in shares.iter().enumerate() {
            let f = knots[i].1 + share;
            knots.push((cuts[i + 1], f));
            // Marked only when the stretch is drawn at least twice its true width.
            if fixed[i] && share > &(2.0 * lens[i] / total) {
                widened.push((cuts[i], cuts[i + 1]));
            }
        }
        Axis { knots, widened }
    }

    /// Fraction of the width (0..=1) at a token position.
    pub fn at(&self, t: f64) -> f64 {
        let k = &self.knots;
        let i = k.partition_point(|p| p.0 <= t).clamp(1, k.len().max(2) - 1);
        if k.len() < 2 {
            return 0.0;
        }
        let ((t0, f0), (t1, f1)) = (k[i - 1], k[i]);
        let f = if t1 > t0 {
            f0 + (f1 - f0) * (t - t0) / (t1 - t0)
        } else {
            f0
        };
        f.clamp(0.0, 1.0)
    }

    /// The stage boundaries, in tokens: where the ticks go.
    pub fn boundaries(&self) -> Vec<f64> {
        self.knots.iter().map(|k| k.0).collect()
    }

    /// Whether the stretch holding `t` is drawn wider than its tokens.
    pub fn is_widened(&self, a: f64, b: f64) -> bool {
        self.widened.iter().any(|w| w.0 < b && a < w.1)
    }
}

/// Which labels to keep along an axis so that none overlaps the next: `items` are (centre,
/// extent) in pixels, sorted by centre; the first and the last are always kept (the last
/// displacing the one before it when they meet). Returns the indices kept.
pub fn thin(items: &[(f64, f64)], gap: f64) -> Vec<usize> {
    let mut kept: Vec<usize> = vec![];
    let meets = |a: (f64, f64), b: (f64, f64)| (b.0 - a.0).abs() < (a.1 + b.1) / 2.0 + gap;
    for (i, &it) in items.iter().enumerate() {
        match kept.last() {
            Some(&k) if meets(items[k], it) => {
                if i + 1 == items.len() && kept.len() > 1 {
                    kept.pop();
                    kept.push(i);
                }
            }
            _ => kept.push(i),
        }
    }
    kept
}

/// A label placed by `place`: its left edge in pixels and its row (0 = nearest the bands).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    pub left: f64,
    pub row: usize,
}

/// Places labels of the given widths, each as near its anchor (a centre in pixels) as the
/// bounds allow, in the first row where it meets no other: labels never overlap and never
/// leave `[lo, hi]`.
pub fn place(labels: &[(f64, f64)], lo: f64, hi: f64, gap: f64) -> Vec<Placed> {
    let mut rows: Vec<Vec<(f64, f64)>> = vec![];
    labels
        .iter()
        .map(|&(centre, width)| {
            let left = (centre - width / 2.0).min(hi - width).max(lo);
            let span = (left - gap / 2.0, left + width + gap / 2.0);
            let row = rows
                .iter()
                .position(|r| r.iter().all(|o| span.1 <= o.0 || o.1 <= span.0))
                .unwrap_or(rows.len());
            if row == rows.len() {
                rows.push(vec![]);
            }
            rows[row].push(span);
            Placed { left, row }
        })
        .collect()
}

/// The i-th of a set of colours that stay apart: Kelly's colours of maximum contrast (white and
/// black left out, a dark blue first, the two yellows closest to others swapped for a teal and a
/// violet), then hues a golden angle apart at alternating lightness.
pub fn color(i: usize) -> (u8, u8, u8) {
    const KELLY: [(u8, u8, u8); 20] = [
        (0x00, 0x67, 0xa5),
        (0xf3, 0x84, 0x00),
        (0x00, 0x88, 0x56),
        (0xbe, 0x00, 0x32),
        (0x87, 0x56, 0x92),
        (0xf3, 0xc3, 0x00),
        (0xa1, 0xca, 0xf1),
        (0x84, 0x84, 0x82),
        (0xc2, 0xb2, 0x80),
        (0xe6, 0x8f, 0xac),
        (0x60, 0x4e, 0x97),
        (0xf9, 0x93, 0x79),
        (0x8d, 0xb6, 0x00),
        (0xb3, 0x44, 0x6c),
        (0x88, 0x2d, 0x17),
        (0x00, 0x9e, 0xa8),
        (0x65, 0x45, 0x22),
        (0xe2, 0x58, 0x22),
        (0x2b, 0x3d, 0x26),
        (0x4b, 0x00, 0x92),
    ];
    if let Some(c) = KELLY.get(i) {
        return *c;
    }
    let k = i - KELLY.len();
    let hue = (k as f64 * 137.507_764) % 360.0;
    let light = if k % 2 == 0 { 0.42 } else { 0.62 };
    hsl(hue, 0.65, light)
}

fn hsl(h: f64, s: f64, l: f64) -> (u8, u8, u8) {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let to = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    (to(r), to(g), to(b))
}

/// The values a panel's ticks stand at: the distinct values the plan takes (4K, 32K, 128K; a
/// RoPE base of 50K and 800K), as written in the recipe, thinned by the caller when they crowd.
pub fn used_values(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values
        .into_iter()
        .filter(|x| x.is_finite() && *x > 0.0)
        .collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thin_keeps_ends_and_drops_crowded() {
        let items = [(0.0, 20.0), (10.0, 20.0), (40.0, 20.0), (45.0, 20.0)];
        assert_eq!(thin(&items, 2.0), vec![0, 3]);
        let spread = [(0.0, 10.0), (30.0, 10.0), (60.0, 10.0)];
        assert_eq!(thin(&spread, 2.0), vec![0, 1, 2]);
    }

    #[test]
    fn place_never_overlaps_nor_leaves_bounds() {
        let labels = [(5.0, 40.0), (20.0, 40.0), (30.0, 30.0), (98.0, 30.0)];
        let placed = place(&labels, 0.0, 100.0, 4.0);
        for (p, l) in placed.iter().zip(&labels) {
            assert!(p.left >= 0.0 && p.left + l.1 <= 100.0, "{p:?}");
        }
        for i in 0..placed.len() {
            for j in 0..i {
                if placed[i].row == placed[j].row {
                    let (a, b) = (placed[i].left, placed[j].left);
                    assert!(
                        a + labels[i].1 <= b || b + labels[j].1 <= a,
                        "{i} and {j} overlap"
                    );
                }
            }
        }
        assert_eq!(placed[0].row, 0);
        assert_eq!(placed[1].row, 1);
        assert_eq!(placed[3].row, 0);
    }

    #[test]
    fn colours_stay_distinct_past_twenty() {
        let cs: Vec<_> = (0..32).map(color).collect();
        for i in 0..cs.len() {
            for j in 0..i {
                let d = |a: u8, b: u8| (a as i32 - b as i32).abs();
                let dist = d(cs[i].0, cs[j].0) + d(cs[i].1, cs[j].1) + d(cs[i].2, cs[j].2);
                assert!(
                    dist > 40,
                    "colours {j} and {i} too close: {:?} {:?}",
                    cs[j],
                    cs[i]
                );
            }
        }
    }
}
