//! `pipe check --fix`: the same edits as the editors' quick fixes, applied in rounds until none
//! is left (one fix can reveal the next, e.g. a renamed model whose stage then lacks a field).

use pipelang::diag::{Code, apply_fixes};

/// Bounds the rounds: a fix that kept re-offering itself would otherwise loop.
const MAX_ROUNDS: usize = 8;

/// The fixed text and the number of fixes applied.
pub fn fix_source(source: &str, profile: Option<&str>) -> (String, usize) {
    let mut text = source.to_string();
    let mut total = 0;
    for _ in 0..MAX_ROUNDS {
        let checked = pipelang::check::check_with(&text, profile);
        // A missing field is added only once no other fix is left: a misspelt field is often the
        // missing one, and renaming it must not be followed by a second copy.
        let (missing, other): (Vec<_>, Vec<_>) = checked
            .diagnostics
            .iter()
            .filter(|d| !d.fixes.is_empty())
            .partition(|d| d.code == Code::MISSING_FIELD);
        let round = if other.is_empty() { missing } else { other };
        let (next, applied) = apply_fixes(&text, round.iter().filter_map(|d| d.fixes.first()));
        if applied == 0 || next == text {
            break;
        }
        text = next;
        total += applied;
    }
    (text, total)
}
