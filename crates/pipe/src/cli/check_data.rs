//! `pipe check --data`: the census of every source (`pipelang_runtime::data::census`) after a
//! clean check, as a table on standard output or as JSON.

use std::path::Path;

use pipelang::check::Checked;
use pipelang_runtime::data::census::{self, DataReport, short};
use pipelang_runtime::data::prepared::Manifest;

/// Counts the data of a checked pipeline read from `path`; `None` when it has no plan (the
/// check found errors, so there is nothing to ask of the data yet).
pub fn census(
    checked: &Checked,
    path: &Path,
    progress: bool,
    prepared: Option<&Manifest>,
) -> Option<DataReport> {
    let (p, plan) = (checked.pipeline.as_ref()?, checked.plan()?);
    Some(census::census(p, plan, path, progress, prepared))
}

/// The summary tables: one row per source, one per (stage, source).
pub fn table(r: &DataReport) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<16} {:<12} {:>6} {:>10} {:>10} {:>10} {:>8}\n",
        "source", "kind", "files", "bytes", "documents", "tokens", "images"
    ));
    for s in &r.sources {
        let mark = match (s.complete, s.prepared) {
            (false, _) => " (incomplete)",
            (true, true) => " (prepared)",
            (true, false) => "",
        };
        let mark = match s.count.bad_samples {
            0 => mark.to_string(),
            n => format!("{mark} ({n} bad samples skipped)"),
        };
        out.push_str(&format!(
            "{:<16} {:<12} {:>6} {:>10} {:>10} {:>10} {:>8}{mark}\n",
            s.name,
            s.kind,
            s.count.files,
            short(s.count.bytes as f64),
            short(s.count.documents as f64),
            short(s.count.tokens as f64),
            s.count.images,
        ));
    }
    out.push('\n');
    let w = r
        .stages
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(0)
        .max(16);
    out.push_str(&format!(
        "{:<w$} {:<16} {:>12} {:>8} {:>8}\n",
        "stage", "source", "tokens", "epochs", "total"
    ));
    for st in &r.stages {
        for n in &st.sources {
            let flag = if n.cumulative_epochs > census::EPOCH_WARNING {
                "  !"
            } else {
                ""
            };
            out.push_str(&format!(
                "{:<w$} {:<16} {:>12} {:>8.2} {:>8.2}{flag}\n",
                st.name,
                n.source,
                short(n.tokens),
                n.epochs,
                n.cumulative_epochs
            ));
        }
    }
    out.push_str(&format!(
        "\nread {} in {:.2} s ({:.1} MB/s)\n",
        short(r.bytes as f64),
        r.seconds,
        r.mb_per_s()
    ));
    out
}

pub fn json(r: &DataReport) -> serde_json::Value {
    let mut v = serde_json::to_value(r).expect("the report serialises");
    v["mb_per_s"] = serde_json::json!(r.mb_per_s());
    v
}
