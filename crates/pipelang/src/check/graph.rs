//! The stage graph: cycles and the execution order (topological; among stages free to run,
//! the order written).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::diag::{Code, Diagnostic, Diagnostics};

use super::ir::{IndexVec, Pipeline, StageId};

/// The execution order, or `None` (with a diagnostic per cycle) when the graph has cycles.
pub fn order(p: &Pipeline, diags: &mut Diagnostics) -> Option<Vec<StageId>> {
    let n = p.stages.len();
    let mut indeg: IndexVec<StageId, usize> = IndexVec::from_elem(0, n);
    let mut succ: IndexVec<StageId, Vec<StageId>> = IndexVec::from_elem(vec![], n);
    for (i, s) in p.stages.iter_enumerated() {
        for a in &s.after {
            if a.value == i {
                diags.push(
                    Diagnostic::new(Code::CYCLE, format!("stage `{}` runs after itself", s.name))
                        .label(a.span, "a stage cannot come after itself")
                        .help("remove it from `after`"),
                );
                return None;
            }
            indeg[i] += 1;
            succ[a.value].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<StageId>> = indeg
        .indices()
        .filter(|&i| indeg[i] == 0)
        .map(Reverse)
        .collect();
    let mut out = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        out.push(i);
        for &j in &succ[i] {
            indeg[j] -= 1;
            if indeg[j] == 0 {
                ready.push(Reverse(j));
            }
        }
    }
    if out.len() == n {
        return Some(out);
    }
    report_cycle(p, &indeg, diags);
    None
}

/// Finds one cycle among the stages left with predecessors and shows it edge by edge.
fn report_cycle(p: &Pipeline, indeg: &IndexVec<StageId, usize>, diags: &mut Diagnostics) {
    let start = indeg.indices().find(|&i| indeg[i] > 0).unwrap();
    // Walk backwards along `after` edges that stay inside the blocked set until a repeat.
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let next = p.stages[cur]
            .after
            .iter()
            .map(|a| a.value)
            .find(|&x| indeg[x] > 0)
            .unwrap();
        if let Some(pos) = path.iter().position(|&x| x == next) {
            path.drain(..pos);
            break;
        }
        path.push(next);
        cur = next;
    }
    // path: s0 after s1 after s2 ... after s0
    let names: Vec<&str> = path.iter().map(|&i| p.stages[i].name.as_str()).collect();
    let mut shown = names.clone();
    shown.push(names[0]);
    let mut d = Diagnostic::new(
        Code::CYCLE,
        format!("stages form a cycle: {}", shown.join(" -> ")),
    )
    .help("each stage must run after the ones it names in `after`: remove one of these edges");
    for (k, &i) in path.iter().enumerate() {
        let next = path[(k + 1) % path.len()];
        let edge = p.stages[i].after.iter().find(|a| a.value == next).unwrap();
        d = d.label(
            edge.span,
            format!(
                "`{}` runs after `{}`",
                p.stages[i].name, p.stages[next].name
            ),
        );
    }
    diags.push(d);
}

/// `anc[s][t]`: stage t runs before s along `after` edges. Bitsets keep this cheap.
pub struct Ancestors {
    words: usize,
    bits: Vec<u64>,
}

impl Ancestors {
    pub fn new(p: &Pipeline, order: &[StageId]) -> Self {
        let n = p.stages.len();
        let words = n.div_ceil(64).max(1);
        let mut bits = vec![0u64; n * words];
        for &s in order {
            let s = s.index();
            for a in &p.stages[StageId::new(s)].after {
                let a = a.value.index();
                bits[s * words + a / 64] |= 1 << (a % 64);
                for w in 0..words {
                    let v = bits[a * words + w];
                    bits[s * words + w] |= v;
                }
            }
        }
        Ancestors { words, bits }
    }

    pub fn is_ancestor(&self, of: StageId, candidate: StageId) -> bool {
        let (of, candidate) = (of.index(), candidate.index());
        self.bits[of * self.words + candidate / 64] & (1 << (candidate % 64)) != 0
    }
}
