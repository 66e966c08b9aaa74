//! Wall time spent in each fused op, for `pipe bench --ops`: the fused ops are the only part of
//! a step candle does not account for in its own code, so timing them shows where a step goes
//! (the remainder is candle's own ops, the autograd bookkeeping and the optimizer).
//! Off unless [`enable`] was called: then each op costs one relaxed load.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static ON: AtomicBool = AtomicBool::new(false);
static TABLE: Mutex<BTreeMap<&'static str, (Duration, u64)>> = Mutex::new(BTreeMap::new());

/// Starts recording (and clears what was recorded).
pub fn enable() {
    TABLE.lock().expect("op timing lock").clear();
    ON.store(true, Ordering::Relaxed);
}

/// Per op name: total wall time and number of calls since [`enable`], busiest first.
pub fn totals() -> Vec<(&'static str, Duration, u64)> {
    let mut v: Vec<_> = TABLE
        .lock()
        .expect("op timing lock")
        .iter()
        .map(|(k, (d, n))| (*k, *d, *n))
        .collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    v
}

/// Times the rest of the enclosing scope under `name` when recording is on.
pub(crate) fn span(name: &'static str) -> Span {
    Span {
        name,
        start: ON.load(Ordering::Relaxed).then(Instant::now),
    }
}

pub(crate) struct Span {
    name: &'static str,
    start: Option<Instant>,
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(s) = self.start {
            let mut t = TABLE.lock().expect("op timing lock");
            let e = t.entry(self.name).or_default();
            e.0 += s.elapsed();
            e.1 += 1;
        }
    }
}
