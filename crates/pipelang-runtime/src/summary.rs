//! What a run prints: a line per stage as it ends, and the table at the end of the run (per
//! stage, steps, loss at the start and the end, wall time and evaluations; then where the
//! checkpoints and metrics are).

use std::fmt::Write;
use std::path::Path;

use super::record::{RunRecord, StageRecord, Status};
use pipelang::check::units;
use pipelang::plan::{Plan, StagePlan};

pub fn render(plan: &Plan, record: &RunRecord, out: &Path, wall_s: f64) -> String {
    let mut s = String::new();
    let profile = record
        .profile
        .as_ref()
        .map_or(String::new(), |p| format!(" (profile {p})"));
    let _ = writeln!(
        s,
        "\nrun of {}{profile}: {} stages in {:.1}s",
        record.pipeline,
        plan.stages.len(),
        wall_s
    );
    let _ = writeln!(
        s,
        "{:<20} {:>8} {:>9} {:>12} {:>12} {:>8}  evaluations",
        "stage", "steps", "tokens", "loss first", "loss last", "time"
    );
    for st in &plan.stages {
        let Some(r) = record.stage(&st.name) else {
            continue;
        };
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let status = if r.status == Status::Done {
            ""
        } else {
            " (not done)"
        };
        let evals: Vec<String> = r.evals.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
        // Losses at different sequence lengths do not compare: a stage whose phases change
        // the context gives its figures per phase.
        let by_phase = r.phases.windows(2).any(|w| w[0].seq_len != w[1].seq_len);
        let (first, last) = if by_phase {
            ("by phase".to_string(), "by phase".to_string())
        } else {
            (f(r.loss_first_tenth), f(r.loss_last_tenth))
        };
        let _ = writeln!(
            s,
            "{:<20} {:>8} {:>9} {:>12} {:>12} {:>7.1}s  {}{status}",
            st.name,
            units::grouped(r.step),
            units::tokens(st.tokens),
            first,
            last,
            r.wall_s,
            evals.join(", ")
        );
        for (ph, pr) in st.phases.iter().zip(&r.phases) {
            let _ = writeln!(
                s,
                "{:<20} {:>8} {:>9} {:>12} {:>12}           seq_len {}",
                format!("  .{}", pr.name),
                units::grouped(ph.steps),
                units::tokens(ph.tokens),
                f(pr.loss_first_tenth),
                f(pr.loss_last_tenth),
                pr.seq_len
            );
        }
    }
    // A run trained by an external engine keeps the engine's own checkpoints.
    let engine = record.stages.iter().any(|r| {
        r.checkpoint
            .as_deref()
            .is_some_and(|c| c.starts_with("engine/"))
    });
    let checkpoints = if engine {
        "engine/runs/<NN-run>/checkpoint".to_string()
    } else {
        super::checkpoint::final_path("<stage>")
    };
    let _ = writeln!(s, "checkpoints: {}/{checkpoints}", out.display());
    let _ = writeln!(
        s,
        "metrics:     {}/metrics.jsonl   record: {}/run.ron",
        out.display(),
        out.display()
    );
    let _ = writeln!(
        s,
        "plot:        pipe report {} --plot loss.png",
        out.display()
    );
    // Rows without evaluations would end in padding.
    s.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}

/// The line a stage prints when it ends (and one per phase when it has several).
pub fn stage_line(st: &StagePlan, r: &StageRecord, wall_s: f64) -> String {
    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
    let mut msg = format!(
        "{:>20}  {} steps  loss {} -> {}  {:.1}s",
        st.name,
        st.steps,
        f(r.loss_first_tenth),
        f(r.loss_last_tenth),
        wall_s
    );
    for ph in &r.phases {
        msg += &format!(
            "\n{:>20}  seq_len {}  loss {} -> {}",
            format!(".{}", ph.name),
            ph.seq_len,
            f(ph.loss_first_tenth),
            f(ph.loss_last_tenth)
        );
    }
    msg
}
