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
use pipelang::check::units;
use pipelang::plan::picture::{self, Axis, Timeline};
use pipelang::plan::{Plan, StagePlan};
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
    let (plan, stale) = match (doc.plan(), last_good) {
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
        svg: plan.map(|p| {
            let mut memo = doc.plan_svg.borrow_mut();
            match &*memo {
                Some((at, was_stale, svg)) if *at == stage && *was_stale == stale => svg.clone(),
                _ => {
                    let fresh = svg(p, stage.as_deref(), stale);
                    *memo = Some((stage.clone(), stale, fresh.clone()));
                    fresh
                }
            }
        }),
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

const WIDTH: f64 = 1000.0;
/// The column right of the panels that holds the legends.
const LEGEND_W: f64 = 170.0;
const LEFT: f64 = 78.0;
/// Room for the batch panel's tokens-per-step ticks.
const RIGHT: f64 = 48.0;
const TOP: f64 = 34.0;
const PANEL: f64 = 110.0;
const GAP: f64 = 28.0;
const LANE_H: f64 = 18.0;
const LABEL_ROW: f64 = 14.0;
/// Width of a character at font-size 11, for placing labels (no font metrics in a webview
/// answer; a little wide, so labels keep apart).
const CHAR_W: f64 = 6.6;
const SAMPLES_PER_STAGE: u64 = 120;
const MIN_SHARE: f64 = 0.035;
const LANE_COLORS: [&str; 4] = ["#1f4fb4", "#d66e00", "#008856", "#875692"];
/// Hues apart from the lanes', so that a decoder's RoPE line is not read as a lane.
const DECODER_COLORS: [&str; 4] = ["#be0032", "#008080", "#882d17", "#604e97"];

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn lane_color(l: usize) -> String {
    LANE_COLORS
        .get(l)
        .map_or_else(|| hex(picture::color(l + 4)), |c| c.to_string())
}

struct Sample {
    x: f64,
    lr: f64,
    mix: Vec<f64>,
    seq_len: f64,
    batch: f64,
    tokens_per_step: f64,
    rope: Vec<(String, f64)>,
}

/// Samples of each stage, at its place on the timeline (the last step held to the stage's end).
fn samples(plan: &Plan, t: &Timeline) -> Vec<Vec<Sample>> {
    (0..plan.stages.len())
        .map(|i| {
            picture::samples(plan, t, i, SAMPLES_PER_STAGE)
                .into_iter()
                .map(|(x, p)| Sample {
                    x,
                    lr: p.lr,
                    mix: p.shares.as_raw().to_vec(),
                    seq_len: p.seq_len as f64,
                    batch: p.batch as f64,
                    tokens_per_step: p.tokens_per_step as f64,
                    rope: p.rope_base.into_iter().collect(),
                })
                .collect()
        })
        .collect()
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
    height: f64,
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
        self.top + self.height * (1.0 - f.clamp(0.0, 1.0))
    }

    /// A log panel around the values the plan takes, ticked at those that keep apart.
    fn log(top: f64, height: f64, used: &[f64]) -> (Panel, Vec<f64>) {
        let (lo, hi) = match (used.first(), used.last()) {
            (Some(a), Some(b)) => (a / 1.6, b * 1.6),
            _ => (1.0, 10.0),
        };
        let p = Panel {
            top,
            height,
            lo,
            hi,
            log: true,
        };
        let items: Vec<(f64, f64)> = used.iter().map(|v| (-p.y(*v), 11.0)).collect();
        let mut order: Vec<usize> = (0..used.len()).collect();
        order.sort_by(|a, b| items[*a].0.total_cmp(&items[*b].0));
        let sorted: Vec<(f64, f64)> = order.iter().map(|&i| items[i]).collect();
        let ticks = picture::thin(&sorted, 1.0)
            .into_iter()
            .map(|k| used[order[k]])
            .collect();
        (p, ticks)
    }
}

/// Stage labels: inside the band when they fit (`None`), else placed in rows under the lanes.
fn labels(
    plan: &Plan,
    t: &Timeline,
    x: &dyn Fn(f64) -> f64,
) -> (Vec<Option<picture::Placed>>, usize) {
    let mut out = vec![None; plan.stages.len()];
    let mut outside = vec![];
    for (i, st) in plan.stages.iter().enumerate() {
        let (x0, x1) = (x(t.slots[i].start), x(t.slots[i].end));
        let w = label_of(st).chars().count() as f64 * CHAR_W;
        if w + 6.0 > x1 - x0 {
            outside.push((i, ((x0 + x1) / 2.0, w)));
        }
    }
    let placed = picture::place(
        &outside.iter().map(|o| o.1).collect::<Vec<_>>(),
        4.0,
        WIDTH - LEGEND_W,
        8.0,
    );
    let rows = placed.iter().map(|p| p.row + 1).max().unwrap_or(0);
    for ((i, _), p) in outside.iter().zip(placed) {
        out[*i] = Some(p);
    }
    (out, rows)
}

fn label_of(st: &StagePlan) -> String {
    format!("{} ({})", st.name, units::tokens(st.tokens))
}

pub fn svg(plan: &Plan, current: Option<&str>, stale: bool) -> String {
    let t = Timeline::new(plan);
    let axis = Axis::new(&t, MIN_SHARE);
    let s = samples(plan, &t);
    let plot_w = WIDTH - LEGEND_W - LEFT - RIGHT;
    let x = |v: f64| LEFT + plot_w * axis.at(v);
    let (placed, rows) = labels(plan, &t, &x);
    let strip_top = TOP;
    let lane_y = |l: usize| strip_top + l as f64 * (LANE_H + 3.0);
    let rows_top = lane_y(t.lanes) + 2.0;
    let panels_top = rows_top + rows as f64 * LABEL_ROW + 14.0;
    let titles = [
        "learning rate",
        "data mixture",
        "seq_len",
        "RoPE base",
        "batch",
    ];
    let heights = [
        PANEL,
        PANEL + 60.0 * (t.lanes as f64 - 1.0),
        PANEL,
        PANEL,
        PANEL,
    ];
    let tops: Vec<f64> = heights
        .iter()
        .scan(panels_top, |y, h| {
            let top = *y;
            *y += h + GAP;
            Some(top)
        })
        .collect();
    let bottom = tops[4] + heights[4];
    let height = bottom + 34.0;
    let mut o = String::new();
    let _ = write!(
        o,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11" data-pipeline="{}">"##,
        esc(&plan.pipeline)
    );
    let _ = write!(
        o,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="{LEFT}" y="20" font-size="15" font-weight="bold">{}{} — {} tokens, {} steps{}{}</text>"##,
        esc(&plan.pipeline),
        plan.profile
            .as_ref()
            .map_or(String::new(), |p| format!(" (profile {})", esc(p))),
        units::tokens(plan.total_tokens),
        units::grouped(plan.total_steps),
        if t.lanes > 1 {
            format!("; {} along the longest path", units::tokens(t.length))
        } else {
            String::new()
        },
        if stale {
            " (last version without errors)"
        } else {
            ""
        }
    );

    // Stages: a band in their lane, the label in it or under the lanes, and for the stage under
    // the cursor a highlight down through every panel.
    for (i, st) in plan.stages.iter().enumerate() {
        let slot = t.slots[i];
        let (x0, x1) = (x(slot.start), x(slot.end));
        let is_current = current == Some(st.name.as_str());
        let class = if is_current { "stage current" } else { "stage" };
        let widened = axis.is_widened(slot.start, slot.end);
        let y0 = lane_y(slot.lane);
        let _ = write!(
            o,
            r##"<g class="{class}" data-stage="{name}" data-lane="{lane}"><title>{name}: {tok} tokens, {steps} steps{note}</title>"##,
            name = esc(&st.name),
            lane = slot.lane,
            tok = units::tokens(st.tokens),
            steps = units::grouped(st.steps),
            note = if widened {
                " (widened to stay visible: not to scale)"
            } else {
                ""
            },
        );
        if is_current {
            let _ = write!(
                o,
                r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#ffd54f" fill-opacity="0.35" stroke="#e0a800" stroke-width="2"/>"##,
                panels_top - 4.0,
                (x1 - x0).max(1.0),
                bottom - panels_top + 4.0
            );
        }
        let _ = write!(
            o,
            r##"<rect x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{LANE_H}" fill="{}" fill-opacity="{}" stroke="{}" stroke-dasharray="{}"/>"##,
            (x1 - x0).max(1.0),
            if is_current {
                "#ffd54f".to_string()
            } else {
                lane_color(slot.lane)
            },
            if is_current {
                0.9
            } else if i % 2 == 0 {
                0.2
            } else {
                0.34
            },
            lane_color(slot.lane),
            if widened { "3,2" } else { "none" },
        );
        let label = esc(&label_of(st));
        let weight = if is_current { "bold" } else { "normal" };
        match placed[i] {
            None => {
                let _ = write!(
                    o,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="{weight}" fill="#222">{label}</text>"##,
                    (x0 + x1) / 2.0,
                    y0 + 13.0
                );
            }
            Some(p) => {
                let ly = rows_top + p.row as f64 * LABEL_ROW;
                let w = label_of(st).chars().count() as f64 * CHAR_W;
                let _ = write!(
                    o,
                    r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#888"/><text x="{:.1}" y="{:.1}" font-weight="{weight}" fill="#222">{label}</text>"##,
                    (x0 + x1) / 2.0,
                    y0 + LANE_H,
                    (p.left + w / 2.0).clamp(p.left, p.left + w),
                    ly + 2.0,
                    p.left,
                    ly + 11.0
                );
            }
        }
        o.push_str("</g>");
    }
    // Stage boundaries: faint lines through the panels, ticked under the last one.
    let bounds = axis.boundaries();
    let items: Vec<(f64, f64)> = bounds
        .iter()
        .map(|b| (x(*b), units::tokens(*b).len() as f64 * CHAR_W))
        .collect();
    o.push_str(r#"<g class="x-axis">"#);
    for k in picture::thin(&items, 6.0) {
        let bx = x(bounds[k]);
        let _ = write!(
            o,
            r##"<line x1="{bx:.1}" x2="{bx:.1}" y1="{panels_top:.1}" y2="{bottom:.1}" stroke="#ddd"/><text x="{bx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            bottom + 14.0,
            units::tokens(bounds[k])
        );
    }
    let _ = write!(
        o,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">tokens along the stage graph (ticks at stage boundaries{})</text></g>"##,
        LEFT + plot_w / 2.0,
        bottom + 28.0,
        if axis.widened.is_empty() {
            ""
        } else {
            "; dashed stages widened to stay visible"
        }
    );

    let all = || s.iter().flatten();
    let runs = runs(&t);
    for (i, title) in titles.iter().enumerate() {
        let (top, h) = (tops[i], heights[i]);
        let (p, ticks): (Panel, Vec<f64>) = match i {
            0 => {
                let hi = all().map(|p| p.lr).fold(0.0, f64::max) * 1.1 + 1e-12;
                let p = Panel {
                    top,
                    height: h,
                    lo: 0.0,
                    hi,
                    log: false,
                };
                // The peak to two significant digits, and half of it: `1e-3`, not `9.999e-4`.
                let peak = hi / 1.1;
                let unit = 10f64.powf(peak.log10().floor() - 1.0);
                let peak = (peak / unit).round() * unit;
                (p, vec![0.0, peak / 2.0, peak])
            }
            1 => {
                let n = t.lanes as f64;
                let p = Panel {
                    top,
                    height: h,
                    lo: 0.0,
                    hi: n,
                    log: false,
                };
                (p, (0..=2 * t.lanes).map(|k| k as f64 / 2.0).collect())
            }
            2 => Panel::log(top, h, &picture::used_values(all().map(|p| p.seq_len))),
            3 => Panel::log(
                top,
                h,
                &picture::used_values(all().flat_map(|p| p.rope.iter().map(|r| r.1))),
            ),
            _ => Panel::log(top, h, &picture::used_values(all().map(|p| p.batch))),
        };
        let _ = write!(
            o,
            r##"<g class="panel" data-panel="{title}"><rect x="{LEFT}" y="{top}" width="{plot_w}" height="{h}" fill="none" stroke="#999"/><text x="{LEFT}" y="{}" font-weight="bold">{}</text>"##,
            top - 4.0,
            match i {
                1 if t.lanes > 1 => "data mixture, a row per lane".to_string(),
                4 => "batch: sequences per step (solid, left), tokens per step (dashed, right)"
                    .to_string(),
                _ => title.to_string(),
            }
        );
        let label = |v: f64| match i {
            0 => units::lr(v),
            1 => {
                let f = v - v.floor();
                match f {
                    0.0 if v == 0.0 => "0%".to_string(),
                    0.0 if v >= t.lanes as f64 => "100%".to_string(),
                    0.0 => "100% | 0%".to_string(),
                    _ => format!("{}%", units::trim(f * 100.0)),
                }
            }
            2 => units::length(v.round() as u64),
            3 => units::tokens(v),
            _ => units::grouped(v.round() as u64),
        };
        for v in ticks {
            tick(&mut o, p.y(v), &label(v), false);
        }
        match i {
            1 => mixture(&mut o, plan, &t, &s, &p, &x, tops[1]),
            3 => {
                let mut models: Vec<&str> = vec![];
                for sm in all() {
                    for (m, _) in &sm.rope {
                        if !models.contains(&m.as_str()) {
                            models.push(m);
                        }
                    }
                }
                for (k, m) in models.iter().enumerate() {
                    let color = DECODER_COLORS
                        .get(k)
                        .map_or_else(|| hex(picture::color(k + 8)), |c| c.to_string());
                    for run in &runs {
                        let pts: Vec<(f64, f64)> = run
                            .1
                            .iter()
                            .flat_map(|&st| &s[st])
                            .filter_map(|sm| {
                                sm.rope.iter().find(|r| r.0 == *m).map(|r| (sm.x, r.1))
                            })
                            .collect();
                        line(&mut o, &pts, &p, &x, &color, m, false);
                    }
                    swatch(&mut o, tops[3] + 14.0 * k as f64, &color, m, false);
                }
            }
            _ => {
                let f: fn(&Sample) -> f64 = match i {
                    0 => |p| p.lr,
                    2 => |p| p.seq_len,
                    _ => |p| p.batch,
                };
                for run in &runs {
                    let pts: Vec<(f64, f64)> = run
                        .1
                        .iter()
                        .flat_map(|&st| &s[st])
                        .map(|sm| (sm.x, f(sm)))
                        .collect();
                    line(&mut o, &pts, &p, &x, &lane_color(run.0), title, false);
                }
                if i == 4 {
                    let (q, ticks) = Panel::log(
                        top,
                        h,
                        &picture::used_values(all().map(|p| p.tokens_per_step)),
                    );
                    for v in ticks {
                        tick(&mut o, q.y(v), &units::tokens(v), true);
                    }
                    for run in &runs {
                        let pts: Vec<(f64, f64)> = run
                            .1
                            .iter()
                            .flat_map(|&st| &s[st])
                            .map(|sm| (sm.x, sm.tokens_per_step))
                            .collect();
                        line(
                            &mut o,
                            &pts,
                            &q,
                            &x,
                            &lane_color(run.0),
                            "tokens per step",
                            true,
                        );
                    }
                    if t.lanes > 1 {
                        for l in 0..t.lanes {
                            let name = if l == 0 {
                                "longest path".to_string()
                            } else {
                                format!("parallel lane {l}")
                            };
                            swatch(&mut o, top + 14.0 * l as f64, &lane_color(l), &name, false);
                        }
                    }
                }
            }
        }
        o.push_str("</g>");
    }
    o.push_str("</svg>");
    o
}

/// Runs of stages that follow each other in one lane, drawn as one line: (lane, stages).
fn runs(t: &Timeline) -> Vec<(usize, Vec<usize>)> {
    let mut runs: Vec<(usize, Vec<usize>)> = vec![];
    for (i, s) in t.slots.iter().enumerate() {
        match runs.iter_mut().rev().find(|(lane, _)| *lane == s.lane) {
            Some((_, stages)) if t.slots[*stages.last().unwrap_or(&i)].end == s.start => {
                stages.push(i)
            }
            _ => runs.push((s.lane, vec![i])),
        }
    }
    runs
}

fn tick(o: &mut String, y: f64, label: &str, right: bool) {
    let (x, x2, tx, anchor) = if right {
        let r = WIDTH - LEGEND_W - RIGHT;
        (r, r + 4.0, r + 6.0, "start")
    } else {
        (LEFT - 4.0, LEFT, LEFT - 6.0, "end")
    };
    let _ = write!(
        o,
        r##"<line x1="{x}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#999"/><text x="{tx}" y="{:.1}" text-anchor="{anchor}">{}</text>"##,
        y + 4.0,
        esc(label)
    );
}

/// A legend row in the column right of the panels.
fn swatch(o: &mut String, y: f64, color: &str, name: &str, filled: bool) {
    let x = WIDTH - LEGEND_W + 8.0;
    if filled {
        let _ = write!(
            o,
            r##"<rect x="{x}" y="{:.1}" width="9" height="9" fill="{color}"/>"##,
            y + 2.0
        );
    } else {
        let _ = write!(
            o,
            r##"<line x1="{x}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="3"/>"##,
            x + 12.0,
            y + 6.0,
            y + 6.0
        );
    }
    let _ = write!(
        o,
        r##"<text x="{}" y="{:.1}" font-size="10" class="legend">{}</text>"##,
        x + 16.0,
        y + 10.0,
        esc(name)
    );
}

/// A coordinate to one decimal, written with integer formatting: `{:.1}` on an f64 takes
/// core's exact float path (Grisu, then Dragon), which was a third of a `pipelang/plan`
/// request's time for the curves' thousands of points. Ties round away from zero, and a
/// coordinate outside the canvas by far falls back to `{:.1}`.
struct Px(f64);

impl std::fmt::Display for Px {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tenths = (self.0 * 10.0).round();
        if tenths.is_nan() || tenths.abs() >= 1e15 {
            return write!(f, "{:.1}", self.0);
        }
        let t = tenths as i64;
        let sign = if t < 0 { "-" } else { "" };
        write!(
            f,
            "{sign}{}.{}",
            t.unsigned_abs() / 10,
            t.unsigned_abs() % 10
        )
    }
}

fn line(
    o: &mut String,
    pts: &[(f64, f64)],
    p: &Panel,
    x: &dyn Fn(f64) -> f64,
    color: &str,
    name: &str,
    dashed: bool,
) {
    if pts.is_empty() {
        return;
    }
    let _ = write!(
        o,
        r##"<polyline fill="none" stroke="{color}" stroke-width="2"{} data-series="{}" points=""##,
        if dashed {
            r#" stroke-dasharray="6,4""#
        } else {
            ""
        },
        esc(name)
    );
    for (t, v) in pts {
        let _ = write!(o, "{},{} ", Px(x(*t)), Px(p.y(*v)));
    }
    o.push_str(r#""/>"#);
}

/// Stacked shares, one polygon per stage and source in use, in the row of the stage's lane
/// (lane 0 on top), with the legend in the column right of the panel.
fn mixture(
    o: &mut String,
    plan: &Plan,
    t: &Timeline,
    s: &[Vec<Sample>],
    p: &Panel,
    x: &dyn Fn(f64) -> f64,
    top: f64,
) {
    let used: Vec<usize> = (0..plan.sources.len())
        .filter(|&k| {
            s.iter()
                .flatten()
                .any(|sm| sm.mix.get(k).is_some_and(|v| *v > 0.0))
        })
        .collect();
    for (i, stage) in s.iter().enumerate() {
        let base = (t.lanes - 1 - t.slots[i].lane) as f64;
        let mut below = vec![base; stage.len()];
        for (n, &k) in used.iter().enumerate() {
            let above: Vec<f64> = stage
                .iter()
                .zip(&below)
                .map(|(sm, b)| b + sm.mix.get(k).copied().unwrap_or(0.0))
                .collect();
            if above != below {
                let _ = write!(
                    o,
                    r##"<polygon fill="{}" fill-opacity="0.85" data-series="{}" points=""##,
                    hex(picture::color(n)),
                    esc(&plan.sources.as_raw()[k])
                );
                for (sm, v) in stage.iter().zip(&above) {
                    let _ = write!(o, "{},{} ", Px(x(sm.x)), Px(p.y(*v)));
                }
                for (sm, v) in stage.iter().zip(&below).rev() {
                    let _ = write!(o, "{},{} ", Px(x(sm.x)), Px(p.y(*v)));
                }
                o.push_str(r#""/>"#);
            }
            below = above;
        }
    }
    // Two columns when one would run past the panel.
    let per_col = ((p.height / 13.0) as usize).max(1);
    for (n, &k) in used.iter().enumerate() {
        let col = (n / per_col) as f64;
        let y = top + 13.0 * (n % per_col) as f64;
        let xx = WIDTH - LEGEND_W + 8.0 + col * 82.0;
        let _ = write!(
            o,
            r##"<rect x="{xx:.1}" y="{:.1}" width="9" height="9" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="10" class="legend">{}</text>"##,
            y + 2.0,
            hex(picture::color(n)),
            xx + 12.0,
            y + 10.0,
            esc(&plan.sources.as_raw()[k])
        );
    }
}

#[cfg(test)]
mod tests {
    use super::Px;

    /// The picture kept for a version is the one of the stage asked for: moving between two
    /// stages and back gives each its own highlight, never the other's.
    #[test]
    fn the_kept_picture_follows_the_stage_under_the_cursor() {
        let src = include_str!("../../../pipelines/tiny_text.pipe");
        let uri: lsp_types::Uri = "file:///t/tiny_text.pipe".parse().unwrap();
        let doc = super::Document::new(uri, 1, src.to_string());
        let at = |stage: &str| {
            let off = src.find(&format!("stage {stage}")).unwrap() + 3;
            let p = doc.text().position(off);
            let r = super::plan_view(&doc, None, Some(p));
            assert_eq!(r.stage.as_deref(), Some(stage));
            r.svg.unwrap()
        };
        let (a, b, a2) = (at("pretrain"), at("cooldown"), at("pretrain"));
        assert_ne!(a, b);
        assert_eq!(a, a2);
        assert_eq!(a, super::svg(doc.plan().unwrap(), Some("pretrain"), false));
    }

    #[test]
    fn coordinates_are_written_to_a_tenth() {
        for (x, want) in [
            (0.0, "0.0"),
            (12.34, "12.3"),
            (12.36, "12.4"),
            (-3.21, "-3.2"),
            (-0.04, "0.0"),
            (799.96, "800.0"),
            (f64::NAN, "NaN"),
            (1e300, &format!("{:.1}", 1e300)),
        ] {
            assert_eq!(Px(x).to_string(), want, "{x}");
        }
    }
}
