//! One figure of a plan: a strip of stages laid out along the stage graph (parallel branches in
//! lanes, `plan::picture::Timeline`), then LR, stacked mixture shares (a row per lane),
//! sequence length, RoPE base and batch / tokens per step, on one x axis in tokens on which
//! short stages stay visible (`picture::Axis`). Ticks are the values the recipe writes (4K,
//! 32K; 50K, 800K), legends stand in a column right of the panels, never on the data.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;

use pipelang::check::units;
use pipelang::plan::picture::{self, Axis, Timeline};
use pipelang::plan::{Plan, StepState};

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const SAMPLES_PER_STAGE: u64 = 240;
const WIDTH: u32 = 1600;
/// The column right of the panels that holds the legends.
const LEGEND_W: u32 = 290;
const MARGIN: u32 = 8;
/// Every panel keeps the same label areas, so their x axes line up with the stage strip.
const LEFT: u32 = 80;
const RIGHT: u32 = 64;
const PANEL_H: u32 = 170;
const LANE_H: i32 = 24;
const LABEL_ROW_H: i32 = 16;
/// The least share of the width a stretch between two stage boundaries gets.
const MIN_SHARE: f64 = 0.035;

pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Writes the figure as SVG or PNG, by the extension of `path`.
pub fn plot(plan: &Plan, path: &Path) -> Result<(), String> {
    register_font();
    let fig = Figure::new(plan);
    let size = (WIDTH, fig.height());
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "svg" => fig.draw(SVGBackend::new(path, size).into_drawing_area()),
        "png" => fig.draw(BitMapBackend::new(path, size).into_drawing_area()),
        _ => Err(format!(
            "`{}`: the plot is written as .svg or .png",
            path.display()
        )),
    }
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("cannot draw the plot: {e:?}")
}

fn rgb((r, g, b): (u8, u8, u8)) -> RGBColor {
    RGBColor(r, g, b)
}

/// Curves take their lane's colour, so a branch's LR is told from the main path's.
fn lane_color(lane: usize) -> RGBColor {
    const C: [RGBColor; 4] = [
        RGBColor(31, 79, 180),
        RGBColor(214, 110, 0),
        RGBColor(0, 136, 86),
        RGBColor(135, 86, 146),
    ];
    C.get(lane)
        .copied()
        .unwrap_or_else(|| rgb(picture::color(lane + 4)))
}

/// Decoders' RoPE lines take hues apart from the lanes' (blue, orange, green, purple), so a
/// decoder's colour is not read as a lane.
fn decoder_color(k: usize) -> RGBColor {
    const C: [RGBColor; 4] = [
        RGBColor(190, 0, 50),
        RGBColor(0, 128, 128),
        RGBColor(136, 45, 23),
        RGBColor(96, 78, 151),
    ];
    C.get(k)
        .copied()
        .unwrap_or_else(|| rgb(picture::color(k + 8)))
}

/// The x axis as a plotters coordinate: `picture::Axis`'s piecewise scale, ticks at the stage
/// boundaries that do not crowd each other.
#[derive(Clone)]
struct X {
    axis: Axis,
    length: f64,
    ticks: Vec<f64>,
}

impl Ranged for X {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        limit.0 + ((limit.1 - limit.0) as f64 * self.axis.at(*v)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, _: H) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.length
    }
}

/// One stage's samples: (x along the timeline, the step's state).
type Samples = Vec<(f64, StepState)>;

struct Figure<'p> {
    plan: &'p Plan,
    timeline: Timeline,
    axis: Axis,
    samples: Vec<Samples>,
    /// Sources with a share anywhere, in declaration order; their colour is their place here.
    used: Vec<usize>,
    /// Decoders with a RoPE base, in order of first use.
    decoders: Vec<String>,
}

impl<'p> Figure<'p> {
    fn new(plan: &'p Plan) -> Self {
        let timeline = Timeline::new(plan);
        let axis = Axis::new(&timeline, MIN_SHARE);
        let samples: Vec<Samples> = (0..plan.stages.len())
            .map(|i| picture::samples(plan, &timeline, i, SAMPLES_PER_STAGE))
            .collect();
        let used = (0..plan.sources.len())
            .filter(|&k| {
                samples
                    .iter()
                    .flatten()
                    .any(|(_, p)| p.shares.as_raw()[k] > 0.0)
            })
            .collect();
        let mut decoders: Vec<String> = vec![];
        for (_, p) in samples.iter().flatten() {
            for m in p.rope_base.keys() {
                if !decoders.contains(m) {
                    decoders.push(m.clone());
                }
            }
        }
        Figure {
            plan,
            timeline,
            axis,
            samples,
            used,
            decoders,
        }
    }

    fn mix_height(&self) -> u32 {
        PANEL_H + 90 * (self.timeline.lanes as u32 - 1)
    }

    fn panel_heights(&self) -> [u32; 5] {
        [PANEL_H, self.mix_height(), PANEL_H, PANEL_H, PANEL_H + 20]
    }

    /// The strip's height depends on how many rows the labels that do not fit their band need.
    fn strip_height(&self, label_rows: usize) -> u32 {
        (12 + self.timeline.lanes as i32 * (LANE_H + 4) + label_rows as i32 * LABEL_ROW_H + 6)
            as u32
    }

    fn height(&self) -> u32 {
        let (_, rows) = self.labels(label_width);
        40 + self.strip_height(rows) + self.panel_heights().iter().sum::<u32>()
    }

    /// Plot pixels (relative to a panel's left edge) of the x axis.
    fn x_pixels(&self) -> (i32, i32) {
        (
            (MARGIN + LEFT) as i32,
            (WIDTH - LEGEND_W - MARGIN - RIGHT) as i32,
        )
    }

    fn px(&self, t: f64) -> i32 {
        let (a, b) = self.x_pixels();
        a + ((b - a) as f64 * self.axis.at(t)).round() as i32
    }

    /// Each stage's label: its text, and either `None` (inside its band) or its place in the
    /// rows under the lanes. Returns the labels and the number of rows.
    fn labels(
        &self,
        width: impl Fn(&str) -> u32,
    ) -> (Vec<(String, Option<picture::Placed>)>, usize) {
        let mut out = vec![];
        let mut outside = vec![];
        for (i, st) in self.plan.stages.iter().enumerate() {
            let s = &self.timeline.slots[i];
            let mark = if self.axis.is_widened(s.start, s.end) {
                "*"
            } else {
                ""
            };
            let text = if st.is_soup() {
                format!("{} = average", st.name)
            } else {
                format!("{}{mark} ({})", st.name, units::tokens(st.tokens))
            };
            let (x0, x1) = (self.px(s.start), self.px(s.end));
            let w = width(&text) as i32;
            if w + 8 <= x1 - x0 {
                out.push((text, None));
            } else {
                outside.push((out.len(), ((x0 + x1) as f64 / 2.0, w as f64)));
                out.push((text, None));
            }
        }
        let (lo, _) = self.x_pixels();
        let hi = (WIDTH - LEGEND_W - MARGIN) as f64;
        let placed = picture::place(
            &outside.iter().map(|o| o.1).collect::<Vec<_>>(),
            MARGIN as f64 + 2.0,
            hi.max(lo as f64),
            10.0,
        );
        let rows = placed.iter().map(|p| p.row + 1).max().unwrap_or(0);
        for ((k, _), p) in outside.iter().zip(placed) {
            out[*k].1 = Some(p);
        }
        (out, rows)
    }

    fn x(&self, area_px: (i32, i32)) -> X {
        // Tick labels at the boundaries, thinned where they would touch.
        let bounds = self.axis.boundaries();
        let (a, b) = area_px;
        let items: Vec<(f64, f64)> = bounds
            .iter()
            .map(|t| {
                let px = a as f64 + (b - a) as f64 * self.axis.at(*t);
                (px, units::tokens(*t).chars().count() as f64 * 7.0)
            })
            .collect();
        let ticks = picture::thin(&items, 8.0)
            .into_iter()
            .map(|i| bounds[i])
            .collect();
        X {
            axis: self.axis.clone(),
            length: self.timeline.length.max(1.0),
            ticks,
        }
    }

    /// Runs of stages that follow each other in one lane, drawn as one line.
    fn runs(&self) -> Vec<(usize, Vec<usize>)> {
        let mut runs: Vec<(usize, Vec<usize>)> = vec![];
        for (i, s) in self.timeline.slots.iter().enumerate() {
            let joins = runs.iter_mut().rev().find(|(lane, _)| *lane == s.lane);
            match joins {
                Some((_, stages))
                    if self.timeline.slots[*stages.last().unwrap()].end == s.start =>
                {
                    stages.push(i)
                }
                _ => runs.push((s.lane, vec![i])),
            }
        }
        runs
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(err)?;
        let plan = self.plan;
        let mut title = format!(
            "{}{} — {} tokens, {} steps",
            plan.pipeline,
            plan.profile
                .as_ref()
                .map_or(String::new(), |p| format!(" (profile {p})")),
            units::tokens(plan.total_tokens),
            units::grouped(plan.total_steps)
        );
        if self.timeline.lanes > 1 {
            title += &format!(
                "; {} along the longest path",
                units::tokens(self.timeline.length)
            );
        }
        let root = root.titled(&title, ("sans-serif", 24)).map_err(err)?;
        let (labels, rows) = self.labels(label_width);
        let mut heights = vec![self.strip_height(rows)];
        heights.extend(self.panel_heights());
        let mut cuts = vec![];
        let mut y = 0;
        for h in &heights[..heights.len() - 1] {
            y += h;
            cuts.push(y);
        }
        let (main, side) = root.split_horizontally(WIDTH - LEGEND_W);
        let areas = main.split_by_breakpoints::<u32, u32, _, _>([], &cuts);
        let sides = side.split_by_breakpoints::<u32, u32, _, _>([], &cuts);
        self.strip(&areas[0], &labels)?;
        self.strip_legend(&sides[0])?;
        self.lr(&areas[1])?;
        self.mixture(&areas[2], &sides[2])?;
        self.seq_len(&areas[3])?;
        self.rope(&areas[4], &sides[4])?;
        self.batch(&areas[5], &sides[5])?;
        root.present().map_err(err)
    }

    fn chart<'a, DB: DrawingBackend, Y: AsRangedCoord<Value = f64>>(
        &self,
        area: &'a DrawingArea<DB, Shift>,
        caption: &str,
        y: Y,
        x_labels: bool,
    ) -> Result<ChartContext<'a, DB, Cartesian2d<X, Y::CoordDescType>>, String>
    where
        DB::ErrorType: 'static,
    {
        let x = self.x(self.x_pixels());
        let mut b = ChartBuilder::on(area);
        b.margin(MARGIN)
            .x_label_area_size(if x_labels { 40 } else { 22 })
            .y_label_area_size(LEFT)
            .caption(caption, ("sans-serif", 17));
        // Only the last panel has a right axis (tokens per step); the others keep its width
        // as margin, so that every x axis lines up.
        if x_labels {
            b.right_y_label_area_size(RIGHT);
        } else {
            b.margin_right(MARGIN + RIGHT);
        }
        b.build_cartesian_2d(x, y).map_err(err)
    }

    /// Lanes of stage bands, labels inside their band when they fit, else in rows underneath
    /// with a leader line.
    fn strip<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        labels: &[(String, Option<picture::Placed>)],
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let font = ("sans-serif", 13).into_font().color(&BLACK);
        let top = 10;
        let lane_top = |l: usize| top + l as i32 * (LANE_H + 4);
        let rows_top = lane_top(self.timeline.lanes);
        for (i, (text, placed)) in labels.iter().enumerate() {
            let s = &self.timeline.slots[i];
            let (x0, x1) = (self.px(s.start), self.px(s.end).max(self.px(s.start) + 2));
            let y0 = lane_top(s.lane);
            let base = lane_color(s.lane);
            let tint = base.mix(if i % 2 == 0 { 0.22 } else { 0.38 });
            area.draw(&Rectangle::new(
                [(x0, y0), (x1, y0 + LANE_H)],
                tint.filled(),
            ))
            .map_err(err)?;
            area.draw(&Rectangle::new(
                [(x0, y0), (x1, y0 + LANE_H)],
                base.stroke_width(1),
            ))
            .map_err(err)?;
            match placed {
                None => {
                    let w = area.estimate_text_size(text, &font).map_or(0, |w| w.0) as i32;
                    area.draw(&Text::new(
                        text.clone(),
                        ((x0 + x1 - w) / 2, y0 + 5),
                        font.clone(),
                    ))
                    .map_err(err)?;
                }
                Some(p) => {
                    let ly = rows_top + p.row as i32 * LABEL_ROW_H + 2;
                    let w = area.estimate_text_size(text, &font).map_or(0, |w| w.0) as f64;
                    let anchor = ((x0 + x1) / 2, y0 + LANE_H);
                    let to = ((anchor.0 as f64).clamp(p.left, p.left + w) as i32, ly);
                    area.draw(&PathElement::new(vec![anchor, to], RGBColor(120, 120, 120)))
                        .map_err(err)?;
                    area.draw(&Text::new(text.clone(), (p.left as i32, ly), font.clone()))
                        .map_err(err)?;
                }
            }
        }
        Ok(())
    }

    fn strip_legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let font = ("sans-serif", 12).into_font().color(&BLACK);
        let mut lines = vec![];
        if self.timeline.lanes > 1 {
            lines.push("stages in parallel lanes: each starts".to_string());
            lines.push("when the stages it runs after end,".to_string());
            lines.push("a branch at its point in its parent".to_string());
        }
        if !self.axis.widened.is_empty() {
            lines.push("* widened to stay visible (not to scale)".to_string());
        }
        for (k, l) in lines.iter().enumerate() {
            area.draw(&Text::new(l.clone(), (6, 12 + 15 * k as i32), font.clone()))
                .map_err(err)?;
        }
        Ok(())
    }

    /// One line per run of stages in a lane, in the lane's colour.
    fn lines<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
        &self,
        c: &mut ChartContext<DB, Cartesian2d<X, Y>>,
        f: impl Fn(&StepState) -> f64,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        // Later lanes first and wider, so a branch running at the same values as the main path
        // shows as a border around its line instead of vanishing under it.
        let mut runs = self.runs();
        runs.sort_by_key(|r| std::cmp::Reverse(r.0));
        for (lane, stages) in runs {
            let pts: Vec<(f64, f64)> = stages
                .iter()
                .flat_map(|&i| self.samples[i].iter().map(|(x, p)| (*x, f(p))))
                .collect();
            let w = 2 + 2 * lane.min(2) as u32;
            c.draw_series(LineSeries::new(pts, lane_color(lane).stroke_width(w)))
                .map_err(err)?;
        }
        Ok(())
    }

    fn lr<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let hi = self
            .samples
            .iter()
            .flatten()
            .map(|(_, p)| p.lr)
            .fold(0.0, f64::max)
            * 1.1
            + 1e-12;
        let mut c = self.chart(area, "learning rate", 0.0..hi, false)?;
        c.configure_mesh()
            .y_labels(6)
            .x_label_formatter(&|v| units::tokens(*v))
            .y_label_formatter(&|v| units::lr(*v))
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        self.lines(&mut c, |p| p.lr)
    }

    /// Stacked shares, a row per lane (lane 0 on top), sources coloured by their place among
    /// the sources in use.
    fn mixture<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        side: &DrawingArea<DB, Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let lanes = self.timeline.lanes;
        let caption = if lanes > 1 {
            "data mixture (stacked shares), a row per lane"
        } else {
            "data mixture (stacked shares)"
        };
        let mut c = self.chart(area, caption, 0.0..lanes as f64, false)?;
        c.configure_mesh()
            // Halves of each lane's row: 0%, 50%, 100%.
            .y_labels(2 * lanes + 1)
            .x_label_formatter(&|v| units::tokens(*v))
            .y_label_formatter(&|v| {
                let f = v - v.floor();
                match f {
                    0.0 if *v == 0.0 => "0%".into(),
                    0.0 if *v >= lanes as f64 => "100%".into(),
                    // Where one lane's row meets the next.
                    0.0 => "100% | 0%".into(),
                    _ => format!("{:.0}%", f * 100.0),
                }
            })
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        let color = |n: usize| rgb(picture::color(n));
        for (i, samples) in self.samples.iter().enumerate() {
            let base = (lanes - 1 - self.timeline.slots[i].lane) as f64;
            let mut cum = vec![vec![base; samples.len()]; self.used.len() + 1];
            for (k, (_, p)) in samples.iter().enumerate() {
                for (n, &d) in self.used.iter().enumerate() {
                    cum[n + 1][k] = cum[n][k] + p.shares.as_raw()[d];
                }
            }
            // Top of the stack first: each smaller cumulative share is painted over it.
            for n in (0..self.used.len()).rev() {
                if samples
                    .iter()
                    .all(|(_, p)| p.shares.as_raw()[self.used[n]] == 0.0)
                {
                    continue;
                }
                c.draw_series(AreaSeries::new(
                    samples.iter().map(|s| s.0).zip(cum[n + 1].iter().cloned()),
                    base,
                    color(n).mix(0.9),
                ))
                .map_err(err)?;
            }
        }
        let items: Vec<(String, RGBColor)> = self
            .used
            .iter()
            .enumerate()
            .map(|(n, &d)| (self.plan.sources.as_raw()[d].clone(), color(n)))
            .collect();
        legend(side, "sources", &items, true)
    }

    fn seq_len<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let used =
            picture::used_values(self.samples.iter().flatten().map(|(_, p)| p.seq_len as f64));
        let (lo, hi) = log_range(&used);
        let ticks = log_ticks(&used, lo, hi, PANEL_H as f64 - 60.0);
        let mut c = self.chart(
            area,
            "sequence length (log scale)",
            (lo..hi).log_scale().with_key_points(ticks),
            false,
        )?;
        c.configure_mesh()
            .x_label_formatter(&|v| units::tokens(*v))
            .y_label_formatter(&|v| units::length(v.round() as u64))
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        self.lines(&mut c, |p| p.seq_len as f64)
    }

    fn rope<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        side: &DrawingArea<DB, Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let used = picture::used_values(
            self.samples
                .iter()
                .flatten()
                .flat_map(|(_, p)| p.rope_base.values().copied()),
        );
        let (lo, hi) = log_range(&used);
        let ticks = log_ticks(&used, lo, hi, PANEL_H as f64 - 60.0);
        let mut c = self.chart(
            area,
            "RoPE base (log scale) and scaling, per decoder",
            (lo..hi).log_scale().with_key_points(ticks),
            false,
        )?;
        c.configure_mesh()
            .x_label_formatter(&|v| units::tokens(*v))
            .y_label_formatter(&|v| units::tokens(*v))
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        let color = decoder_color;
        // Later decoders first and wider, as for lanes.
        for (k, model) in self.decoders.iter().enumerate().rev() {
            let w = 3 + 2 * k.min(2) as u32;
            // One line per run of stages using the decoder, so stages without it leave a gap.
            for (_, stages) in self.runs() {
                let mut seg: Vec<(f64, f64)> = vec![];
                for &i in &stages {
                    for (x, p) in &self.samples[i] {
                        match p.rope_base.get(model) {
                            Some(b) => seg.push((*x, *b)),
                            None if !seg.is_empty() => {
                                c.draw_series(LineSeries::new(
                                    std::mem::take(&mut seg),
                                    color(k).stroke_width(w),
                                ))
                                .map_err(err)?;
                            }
                            None => {}
                        }
                    }
                }
                c.draw_series(LineSeries::new(seg, color(k).stroke_width(w)))
                    .map_err(err)?;
            }
            // Where a decoder's frequency scaling changes, its new value is written on the
            // line: the base alone does not say that a YaRN or Llama 3 scaling is in force.
            let font = ("sans-serif", 12).into_font().color(&color(k));
            let mut prev: Option<String> = None;
            for (x, p) in self.samples.iter().flatten() {
                let Some(b) = p.rope_base.get(model) else {
                    continue;
                };
                let now = p.rope_scaling.get(model).map(|s| s.brief());
                if now != prev && (now.is_some() || prev.is_some()) {
                    let label = now.clone().unwrap_or_else(|| "no scaling".into());
                    c.draw_series(std::iter::once(Text::new(
                        format!("{model}: {label}"),
                        (*x, *b * 1.15),
                        font.clone(),
                    )))
                    .map_err(err)?;
                }
                prev = now;
            }
        }
        let items: Vec<(String, RGBColor)> = self
            .decoders
            .iter()
            .enumerate()
            .map(|(k, m)| (m.clone(), color(k)))
            .collect();
        legend(side, "decoders", &items, false)
    }

    /// Sequences per step on the left axis, tokens per step (dashed) on the right.
    fn batch<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        side: &DrawingArea<DB, Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let all = || self.samples.iter().flatten().map(|(_, p)| p);
        let batches = picture::used_values(all().map(|p| p.batch as f64));
        let tps = picture::used_values(all().map(|p| p.tokens_per_step as f64));
        let h = PANEL_H as f64 - 60.0;
        let (blo, bhi) = log_range(&batches);
        let (tlo, thi) = log_range(&tps);
        let mut c = self
            .chart(
                area,
                "batch: sequences per step (solid, left) and tokens per step (dashed, right)",
                (blo..bhi)
                    .log_scale()
                    .with_key_points(log_ticks(&batches, blo, bhi, h)),
                true,
            )?
            .set_secondary_coord(
                self.x(self.x_pixels()),
                (tlo..thi)
                    .log_scale()
                    .with_key_points(log_ticks(&tps, tlo, thi, h)),
            );
        let mut desc = "tokens along the stage graph (ticks at stage boundaries)".to_string();
        if !self.axis.widened.is_empty() {
            desc += "; * widened to stay visible";
        }
        c.configure_mesh()
            .x_label_formatter(&|v| units::tokens(*v))
            .y_label_formatter(&|v| units::grouped(v.round() as u64))
            .x_desc(desc)
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        c.configure_secondary_axes()
            .y_label_formatter(&|v| units::tokens(*v))
            .draw()
            .map_err(err)?;
        self.lines(&mut *c, |p| p.batch as f64)?;
        for (lane, stages) in self.runs() {
            let pts: Vec<(f64, f64)> = stages
                .iter()
                .flat_map(|&i| {
                    self.samples[i]
                        .iter()
                        .map(|(x, p)| (*x, p.tokens_per_step as f64))
                })
                .collect();
            c.draw_secondary_series(DashedLineSeries::new(
                pts,
                8,
                5,
                lane_color(lane).stroke_width(2),
            ))
            .map_err(err)?;
        }
        let lanes: Vec<(String, RGBColor)> = (0..self.timeline.lanes)
            .map(|l| {
                let name = if l == 0 {
                    "longest path".to_string()
                } else {
                    format!("parallel lane {l}")
                };
                (name, lane_color(l))
            })
            .collect();
        if self.timeline.lanes > 1 {
            legend(side, "curves by lane", &lanes, false)?;
        }
        Ok(())
    }
}

/// The width of a stage label in the strip's 13-pixel font, a little over DejaVu Sans's
/// average: the layout is made before any backend (and its font metrics) exists, and the same
/// widths must size the strip and place the labels.
fn label_width(s: &str) -> u32 {
    (s.chars().count() as f64 * 7.6).ceil() as u32
}

/// A log-scale range around the values, with room above and below.
fn log_range(used: &[f64]) -> (f64, f64) {
    match (used.first(), used.last()) {
        (Some(lo), Some(hi)) => (lo / 1.6, hi * 1.6),
        _ => (1.0, 10.0),
    }
}

/// The used values that keep 14 pixels apart on a log axis `height` pixels tall (the largest
/// always kept).
fn log_ticks(used: &[f64], lo: f64, hi: f64, height: f64) -> Vec<f64> {
    let px = |v: f64| height * (v.ln() - lo.ln()) / (hi.ln() - lo.ln());
    let items: Vec<(f64, f64)> = used.iter().map(|v| (px(*v), 12.0)).collect();
    picture::thin(&items, 2.0)
        .into_iter()
        .map(|i| used[i])
        .collect()
}

/// A legend in the column right of a panel: a title, then a swatch (filled square or line) and a
/// name per item, in two columns when one would run past the panel.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    items: &[(String, RGBColor)],
    filled: bool,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let font = ("sans-serif", 12).into_font().color(&BLACK);
    let (w, h) = area.dim_in_pixel();
    let row = 15;
    let top = 34;
    let per_col = ((h as i32 - top - 6) / row).max(1) as usize;
    let cols = items.len().div_ceil(per_col).max(1);
    let col_w = (w as i32 - 10) / cols as i32;
    area.draw(&Text::new(
        title.to_string(),
        (6, top - 18),
        ("sans-serif", 13).into_font().color(&BLACK),
    ))
    .map_err(err)?;
    for (k, (name, color)) in items.iter().enumerate() {
        let x = 6 + (k / per_col) as i32 * col_w;
        let y = top + (k % per_col) as i32 * row;
        if filled {
            area.draw(&Rectangle::new(
                [(x, y + 1), (x + 11, y + 12)],
                color.filled(),
            ))
            .map_err(err)?;
        } else {
            area.draw(&PathElement::new(
                vec![(x, y + 7), (x + 14, y + 7)],
                color.stroke_width(3),
            ))
            .map_err(err)?;
        }
        // A name longer than its column is cut with an ellipsis rather than run into the next.
        let room = (col_w - 24).max(10) as usize / 7;
        let shown = if name.chars().count() > room {
            format!(
                "{}…",
                name.chars()
                    .take(room.saturating_sub(1))
                    .collect::<String>()
            )
        } else {
            name.clone()
        };
        area.draw(&Text::new(shown, (x + 18, y), font.clone()))
            .map_err(err)?;
    }
    Ok(())
}
