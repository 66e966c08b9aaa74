//! Fixes that need the checker's view of an item (its header, its `after` list), shared by the
//! checks that offer them.

use crate::diag::Fix;

use super::ir::Stage;

/// Adds `name` to the stage's `after` list, creating the list when the stage has none.
pub fn add_after(st: &Stage, name: &str) -> Fix {
    let message = format!("add `{name}` to `after`");
    match st.after.last() {
        Some(last) => Fix::insert(message, last.span.end, format!(", {name}")),
        None => Fix::insert(message, st.name_span.end, format!(" after {name}")),
    }
}
