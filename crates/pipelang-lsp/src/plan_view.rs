//! `pipelang/plan`: the plan as one SVG picture (LR, mixture, seq_len, RoPE base and batch along
//! the run, stages as bands, the stage under the cursor highlighted), for an editor to show
//! beside the file. A custom request rather than a client-side drawing so that every editor
//! gets the same picture from the same planner.
//!
//! The SVG is written by hand, not with plotters: a webview repaints it on every edit, so it has
//! to be small and self-contained (no fonts to embed), and its stage bands carry `data-stage`
//! attributes a client or a test can find.

use std::fmt::Write;

use lsp_types::{Position, TextDocumentIdentifier};
use serde::{Deserialize, Serialize};

use super::document::Document;
use pipelang::check::ir::{DataId, IndexVec};
use pipelang::check::units;
use pipelang::plan::Plan;
use pipelang::syntax::Item;

pub enum PlanRequest {}

impl lsp_types::request::Request for PlanRequest {
    type Params = PlanParams;
    type Result = PlanResult;
    const METHOD: &'static str = "pipelang/plan";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanParams {
    pub text_document: TextDocumentIdentifier,
    /// The cursor: the stage around it is highlighted.
    #[serde(default)]
    pub position: Option<Position>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanResult {
    /// The document version the answer was computed for.
    pub version: i32,
    /// `None` when no version of the file has had a plan yet.
    pub svg: Option<String>,
    /// The stage under the cursor, when the plan has it.
    pub stage: Option<String>,
    /// True when the picture is of an earlier version (this one has errors).
    pub stale: bool,
    /// Why the picture is missing or stale, for the panel to say.
    pub message: Option<String>,
}

pub fn plan_view(doc: &Document, last_good: Option<&Plan>, at: Option<Position>) -> PlanResult {
    let errors = doc
        .checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .count();
    let (plan, stale) = match (&doc.plan, last_good) {
        (Some(p), _) => (Some(p), false),
        (None, Some(p)) => (Some(p), true),
        (None, None) => (None, false),
    };
    let message = match (plan, stale) {
        (None, _) => Some(format!(
            "no plan yet: the file has {errors} error(s) and no earlier version without errors"
        )),
        (Some(_), true) => Some(format!(
            "the file has {errors} error(s): showing the plan of its last version without errors"
        )),
        (Some(_), false) => None,
    };
    let stage = at
        .and_then(|p| stage_at(doc, doc.text().offset(p)))
        .filter(|name| plan.is_some_and(|p| p.stage(name).is_some()));
    PlanResult {
        version: doc.version,
        svg: plan.map(|p| svg(p, stage.as_deref(), stale)),
        stage,
        stale,
        message,
    }
}

fn stage_at(doc: &Document, offset: usize) -> Option<String> {
    doc.checked.file.items.iter().find_map(|item| match item {
        Item::Stage(s) if s.span.start <= offset && offset <= s.span.end => {
            Some(s.name.name.clone())
        }
        _ => None,
    })
}

const WIDTH: f64 = 960.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 64.0;
const PANEL: f64 = 118.0;
const GAP: f64 = 26.0;
const SAMPLES_PER_STAGE: u64 = 120;
const COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

struct Sample {
    x: f64,
    lr: f64,
    mix: IndexVec<DataId, f64>,
    seq_len: f64,
    batch: f64,
    rope: Vec<(String, f64)>,
}

fn samples(plan: &Plan) -> Vec<Sample> {
    let mut out = vec![];
    for (i, st) in plan.stages.iter().enumerate() {
        let n = st.steps.clamp(1, SAMPLES_PER_STAGE);
        let mut steps: Vec<u64> = (0..n).map(|k| k * st.steps.max(1) / n).collect();
        // Phase boundaries and the last step exactly, so transitions show as steps.
        for ph in &st.phases {
            steps.push(ph.first_step);
            steps.push(ph.first_step.saturating_sub(1));
        }
        steps.push(st.steps.saturating_sub(1));
        steps.sort();
        steps.dedup();
        for step in steps {
            let p = plan.step(i, step);
            out.push(Sample {
                x: st.global_start + p.tokens,
                lr: p.lr,
                mix: plan.mix_at(i, step),
                seq_len: p.seq_len as f64,
                batch: p.batch as f64,
                rope: p.rope_base.into_iter().collect(),
            });
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One panel's frame: a y-range and where it sits.
struct Panel {
    top: f64,
    lo: f64,
    hi: f64,
    log: bool,
}

impl Panel {
    fn y(&self, v: f64) -> f64 {
        let (v, lo, hi) = if self.log {
            (v.max(1e-300).log10(), self.lo.log10(), self.hi.log10())
        } else {
            (v, self.lo, self.hi)
        };
        let f = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        self.top + PANEL * (1.0 - f.clamp(0.0, 1.0))
    }
}

pub fn svg(plan: &Plan, current: Option<&str>, stale: bool) -> String {
    let s = samples(plan);
    let total = plan.total_tokens.max(1.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let x = |t: f64| LEFT + plot_w * (t / total).clamp(0.0, 1.0);
    let titles = [
        "learning rate",
        "data mixture",
        "seq_len",
        "RoPE base",
        "batch",
    ];
    let height = TOP + titles.len() as f64 * (PANEL + GAP) + 30.0;
    let mut o = String::new();
    let _ = write!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11" data-pipeline="{}">"##,
        esc(&plan.pipeline)
    );
    let _ = write!(
        o,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="{LEFT}" y="20" font-size="15" font-weight="bold">{}{} — {} tokens, {} steps{}</text>"##,
        esc(&plan.pipeline),
        plan.profile
            .as_ref()
            .map_or(String::new(), |p| format!(" (profile {})", esc(p))),
        units::tokens(plan.total_tokens),
        units::grouped(plan.total_steps),
        if stale {
            " (last version without errors)"
        } else {
            ""
        }
    );

    let max_of = |f: &dyn Fn(&Sample) -> f64| s.iter().map(f).fold(0.0, f64::max);
    let ropes: Vec<f64> = s.iter().flat_map(|p| p.rope.iter().map(|r| r.1)).collect();
    let (rope_lo, rope_hi) = ropes
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let panels: Vec<Panel> = (0..titles.len())
        .map(|i| {
            let top = TOP + i as f64 * (PANEL + GAP);
            let (lo, hi, log) = match i {
                0 => (0.0, max_of(&|p| p.lr) * 1.1 + 1e-12, false),
                1 => (0.0, 1.0, false),
                2 => (0.0, max_of(&|p| p.seq_len) * 1.1 + 1.0, false),
                3 if !ropes.is_empty() => (rope_lo / 2.0, rope_hi * 2.0, true),
                3 => (1.0, 10.0, true),
                _ => (0.0, max_of(&|p| p.batch) * 1.1 + 1.0, false),
            };
            Panel { top, lo, hi, log }
        })
        .collect();

    // Stage bands first, under the curves, across all panels; labels along the top.
    let band_top = TOP - 18.0;
    let band_h = titles.len() as f64 * (PANEL + GAP) - GAP + 18.0;
    for (i, st) in plan.stages.iter().enumerate() {
        let (x0, x1) = (x(st.global_start), x(st.global_start + st.tokens));
        let is_current = current == Some(st.name.as_str());
        let (fill, class) = match (is_current, st.vision_branch, i % 2) {
            (true, _, _) => ("#ffd54f", "stage current"),
            (false, true, _) => ("#e8f0fb", "stage"),
            (false, false, 0) => ("#f4f4f4", "stage"),
            _ => ("#fbfbfb", "stage"),
        };
        let _ = write!(
            o,
            r##"<g class="{class}" data-stage="{name}"><title>{name}: {tok} tokens, {steps} steps</title><rect x="{x0:.1}" y="{band_top}" width="{w:.1}" height="{band_h}" fill="{fill}" fill-opacity="{op}" stroke="{stroke}" stroke-width="{sw}"/>"##,
            name = esc(&st.name),
            tok = units::tokens(st.tokens),
            steps = units::grouped(st.steps),
            w = (x1 - x0).max(1.0),
            op = if is_current { 0.55 } else { 1.0 },
            stroke = if is_current { "#e0a800" } else { "none" },
            sw = if is_current { 2 } else { 0 },
        );
        // Names of narrow stages would collide: they get their title tooltip only.
        if x1 - x0 > 46.0 || is_current {
            let _ = write!(
                o,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="{}" fill="#333">{}</text>"##,
                (x0 + x1) / 2.0,
                band_top + 12.0,
                if is_current { "bold" } else { "normal" },
                esc(&st.name)
            );
        }
        o.push_str("</g>");
    }

    for (i, (title, p)) in titles.iter().zip(&panels).enumerate() {
        let _ = write!(
            o,
            r##"<g class="panel" data-panel="{title}"><rect x="{LEFT}" y="{}" width="{plot_w}" height="{PANEL}" fill="none" stroke="#999"/><text x="{}" y="{}" font-weight="bold">{title}</text>"##,
            p.top,
            LEFT + 4.0,
            p.top + 13.0
        );
        let label = |v: f64| match i {
            0 => units::lr(v),
            1 => format!("{}%", units::trim(v * 100.0)),
            2 => units::length(v.round() as u64),
            3 => units::tokens(v),
            _ => units::grouped(v.round() as u64),
        };
        let ticks: Vec<f64> = if p.log {
            let (a, b) = (p.lo.log10().ceil() as i32, p.hi.log10().floor() as i32);
            (a..=b).map(|e| 10f64.powi(e)).collect()
        } else {
            vec![p.lo, (p.lo + p.hi / 1.1) / 2.0, p.hi / 1.1]
        };
        for t in ticks {
            let y = p.y(t);
            let _ = write!(
                o,
                r##"<line x1="{}" x2="{LEFT}" y1="{y:.1}" y2="{y:.1}" stroke="#999"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT - 4.0,
                LEFT - 6.0,
                y + 4.0,
                esc(&label(t))
            );
        }
        match i {
            1 => mixture(&mut o, plan, &s, p, &x),
            3 => {
                let mut models: Vec<&str> = vec![];
                for sm in &s {
                    for (m, _) in &sm.rope {
                        if !models.contains(&m.as_str()) {
                            models.push(m);
                        }
                    }
                }
                for (k, m) in models.iter().enumerate() {
                    let pts: Vec<(f64, f64)> = s
                        .iter()
                        .filter_map(|sm| sm.rope.iter().find(|r| r.0 == *m).map(|r| (sm.x, r.1)))
                        .collect();
                    line(&mut o, &pts, p, &x, COLORS[k % COLORS.len()], m);
                }
            }
            _ => {
                let f: fn(&Sample) -> f64 = match i {
                    0 => |p| p.lr,
                    2 => |p| p.seq_len,
                    _ => |p| p.batch,
                };
                let pts: Vec<(f64, f64)> = s.iter().map(|sm| (sm.x, f(sm))).collect();
                line(&mut o, &pts, p, &x, "#1f4fb4", title);
            }
        }
        o.push_str("</g>");
    }
    let bottom = TOP + titles.len() as f64 * (PANEL + GAP) - GAP + 16.0;
    let _ = write!(
        o,
        r##"<text x="{LEFT}" y="{bottom}">0</text><text x="{}" y="{bottom}" text-anchor="end">{} tokens</text></svg>"##,
        WIDTH - RIGHT,
        units::tokens(plan.total_tokens)
    );
    o
}

fn line(
    o: &mut String,
    pts: &[(f64, f64)],
    p: &Panel,
    x: &dyn Fn(f64) -> f64,
    color: &str,
    name: &str,
) {
    if pts.is_empty() {
        return;
    }
    let _ = write!(
        o,
        r##"<polyline fill="none" stroke="{color}" stroke-width="2" data-series="{}" points=""##,
        esc(name)
    );
    for (t, v) in pts {
        let _ = write!(o, "{:.1},{:.1} ", x(*t), p.y(*v));
    }
    o.push_str(r#""/>"#);
}

/// Stacked shares, one polygon per source in use, with a legend at the panel's right.
fn mixture(o: &mut String, plan: &Plan, s: &[Sample], p: &Panel, x: &dyn Fn(f64) -> f64) {
    let used: Vec<DataId> = plan
        .sources
        .indices()
        .filter(|&k| s.iter().any(|sm| sm.mix.get(k).is_some_and(|v| *v > 0.0)))
        .collect();
    let mut below = vec![0.0; s.len()];
    for (n, &k) in used.iter().enumerate() {
        let above: Vec<f64> = s
            .iter()
            .zip(&below)
            .map(|(sm, b)| b + sm.mix.get(k).copied().unwrap_or(0.0))
            .collect();
        let color = COLORS[n % COLORS.len()];
        let _ = write!(
            o,
            r##"<polygon fill="{color}" fill-opacity="0.75" data-series="{}" points=""##,
            esc(&plan.sources[k])
        );
        for (sm, v) in s.iter().zip(&above) {
            let _ = write!(o, "{:.1},{:.1} ", x(sm.x), p.y(*v));
        }
        for (sm, v) in s.iter().zip(&below).rev() {
            let _ = write!(o, "{:.1},{:.1} ", x(sm.x), p.y(*v));
        }
        o.push_str(r#""/>"#);
        let _ = write!(
            o,
            r##"<rect x="{:.1}" y="{:.1}" width="9" height="9" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="10">{}</text>"##,
            WIDTH - RIGHT - 120.0,
            p.top + 6.0 + n as f64 * 12.0,
            WIDTH - RIGHT - 107.0,
            p.top + 14.0 + n as f64 * 12.0,
            esc(&plan.sources[k])
        );
        below = above;
    }
}
