//! One figure of a plan, shared x axis in tokens along the execution order: LR, stacked
//! mixture shares, sequence length, and RoPE base (log scale), with stages as labelled bands
//! (vision-branch stages shaded apart).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use pipelang::check::units;
use pipelang::plan::Plan;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const SAMPLES_PER_STAGE: u64 = 240;

pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Writes the figure as SVG or PNG, by the extension of `path`.
pub fn plot(plan: &Plan, path: &Path) -> Result<(), String> {
    register_font();
    let size = (1400, 1000);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "svg" => draw(plan, SVGBackend::new(path, size).into_drawing_area()),
        "png" => draw(plan, BitMapBackend::new(path, size).into_drawing_area()),
        _ => Err(format!(
            "`{}`: the plot is written as .svg or .png",
            path.display()
        )),
    }
}

struct Samples {
    x: Vec<f64>,
    lr: Vec<f64>,
    mix: Vec<Vec<f64>>,
    seq: Vec<f64>,
    rope: Vec<(String, Vec<(f64, f64)>)>,
}

fn sample(plan: &Plan) -> Samples {
    let mut s = Samples {
        x: vec![],
        lr: vec![],
        mix: vec![],
        seq: vec![],
        rope: vec![],
    };
    for (i, st) in plan.stages.iter().enumerate() {
        let n = st.steps.clamp(1, SAMPLES_PER_STAGE);
        let mut steps: Vec<u64> = (0..n).map(|k| k * st.steps.max(1) / n).collect();
        // Phase boundaries and the last step are sampled exactly so transitions show sharply.
        steps.extend(st.phases.iter().map(|p| p.first_step));
        steps.push(st.steps.saturating_sub(1));
        steps.sort();
        steps.dedup();
        for step in steps {
            let p = plan.step(i, step);
            s.x.push(st.global_start + p.tokens);
            s.lr.push(p.lr);
            s.mix.push(p.shares.clone().into_raw());
            s.seq.push(p.seq_len as f64);
            for (model, base) in &p.rope_base {
                let at = s
                    .rope
                    .iter()
                    .position(|(m, _)| m == model)
                    .unwrap_or_else(|| {
                        s.rope.push((model.clone(), vec![]));
                        s.rope.len() - 1
                    });
                s.rope[at].1.push((st.global_start + p.tokens, *base));
            }
        }
    }
    s
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("cannot draw the plot: {e:?}")
}

fn palette(i: usize) -> RGBColor {
    const C: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

fn draw<DB: DrawingBackend>(plan: &Plan, root: DrawingArea<DB, Shift>) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let s = sample(plan);
    let total = plan.total_tokens.max(1.0);
    let title = format!(
        "{}{} — {} tokens, {} steps",
        plan.pipeline,
        plan.profile
            .as_ref()
            .map_or(String::new(), |p| format!(" (profile {p})")),
        units::tokens(plan.total_tokens),
        units::grouped(plan.total_steps)
    );
    let root = root.titled(&title, ("sans-serif", 26)).map_err(err)?;
    let panels = root.split_evenly((4, 1));
    let xfmt = |v: &f64| units::tokens(*v);

    // ---- LR
    let max_lr = s.lr.iter().cloned().fold(0.0, f64::max) * 1.1 + 1e-12;
    let mut c = ChartBuilder::on(&panels[0])
        .margin(8)
        .margin_right(16)
        .x_label_area_size(24)
        .y_label_area_size(70)
        .caption("learning rate", ("sans-serif", 18))
        .build_cartesian_2d(0.0..total, 0.0..max_lr)
        .map_err(err)?;
    c.configure_mesh()
        .x_label_formatter(&xfmt)
        .y_label_formatter(&|v| units::lr(*v))
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    stage_bands(&mut c, plan, 0.0, max_lr, true)?;
    c.draw_series(LineSeries::new(
        s.x.iter().cloned().zip(s.lr.iter().cloned()),
        BLUE.stroke_width(2),
    ))
    .map_err(err)?;

    // ---- mixture, stacked
    let mut c = ChartBuilder::on(&panels[1])
        .margin(8)
        .margin_right(16)
        .x_label_area_size(24)
        .y_label_area_size(70)
        .caption("data mixture (stacked shares)", ("sans-serif", 18))
        .build_cartesian_2d(0.0..total, 0.0..1.0)
        .map_err(err)?;
    c.configure_mesh()
        .x_label_formatter(&xfmt)
        .y_label_formatter(&|v: &f64| format!("{:.0}%", v * 100.0))
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    stage_bands(&mut c, plan, 0.0, 1.0, false)?;
    let nsrc = plan.sources.len();
    let mut cum = vec![vec![0.0; s.x.len()]; nsrc + 1];
    for (k, shares) in s.mix.iter().enumerate() {
        for d in 0..nsrc {
            cum[d + 1][k] = cum[d][k] + shares[d];
        }
    }
    for d in (0..nsrc).rev() {
        if s.mix.iter().all(|m| m[d] == 0.0) {
            continue;
        }
        let color = palette(d);
        c.draw_series(AreaSeries::new(
            s.x.iter().cloned().zip(cum[d + 1].iter().cloned()),
            0.0,
            color.mix(0.85),
        ))
        .map_err(err)?
        .label(plan.sources.as_raw()[d].clone())
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::Coordinate(420, 6))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(err)?;

    // ---- sequence length
    let max_seq = s.seq.iter().cloned().fold(1.0, f64::max) * 2.0;
    let lo_seq = s.seq.iter().cloned().fold(f64::MAX, f64::min).min(max_seq) / 2.0;
    let mut c = ChartBuilder::on(&panels[2])
        .margin(8)
        .margin_right(16)
        .x_label_area_size(24)
        .y_label_area_size(70)
        .caption("sequence length (log scale)", ("sans-serif", 18))
        .build_cartesian_2d(0.0..total, (lo_seq..max_seq).log_scale())
        .map_err(err)?;
    c.configure_mesh()
        .x_label_formatter(&xfmt)
        .y_label_formatter(&|v| units::length(v.round() as u64))
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    stage_bands(&mut c, plan, lo_seq, max_seq, false)?;
    c.draw_series(LineSeries::new(
        s.x.iter().cloned().zip(s.seq.iter().cloned()),
        RED.stroke_width(2),
    ))
    .map_err(err)?;

    // ---- RoPE base, log scale
    let (lo, hi) = s
        .rope
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.1))
        .fold((f64::MAX, 1.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let lo = if lo == f64::MAX { 1.0 } else { lo / 2.0 };
    let mut c = ChartBuilder::on(&panels[3])
        .margin(8)
        .margin_right(16)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .caption("RoPE base (log scale), per decoder", ("sans-serif", 18))
        .build_cartesian_2d(0.0..total, (lo..hi * 2.0).log_scale())
        .map_err(err)?;
    c.configure_mesh()
        .x_label_formatter(&xfmt)
        .y_label_formatter(&|v| units::tokens(*v))
        .x_desc("tokens, in execution order")
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    stage_bands(&mut c, plan, lo, hi * 2.0, false)?;
    for (i, (model, pts)) in s.rope.iter().enumerate() {
        let color = palette(i + 3);
        // Points of one decoder, drawn per stage so stages without it leave a gap.
        for st in &plan.stages {
            let seg: Vec<(f64, f64)> = pts
                .iter()
                .cloned()
                .filter(|(x, _)| *x >= st.global_start && *x <= st.global_start + st.tokens)
                .collect();
            c.draw_series(LineSeries::new(seg, color.stroke_width(3)))
                .map_err(err)?;
        }
        c.draw_series(std::iter::once(Circle::new((0.0, lo), 0, color.filled())))
            .map_err(err)?
            .label(model.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(3))
            });
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::Coordinate(420, 6))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Shaded bands for the stages (vision-branch stages in a different tint), labelled at the top.
fn stage_bands<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    c: &mut ChartContext<DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    plan: &Plan,
    lo: f64,
    hi: f64,
    labels: bool,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    for (i, st) in plan.stages.iter().enumerate() {
        let color = if st.vision_branch {
            RGBColor(255, 236, 200)
        } else if i % 2 == 0 {
            RGBColor(235, 242, 252)
        } else {
            RGBColor(246, 248, 252)
        };
        let x0 = st.global_start;
        let x1 = st.global_start + st.tokens;
        c.draw_series(std::iter::once(Rectangle::new(
            [(x0, lo), (x1, hi)],
            color.filled(),
        )))
        .map_err(err)?;
        if labels {
            // Narrow neighbours would overlap: stagger the labels over two rows.
            let label = if st.vision_branch {
                format!("{} (ViT branch)", st.name)
            } else {
                st.name.clone()
            };
            let y = if i % 2 == 0 {
                hi
            } else {
                lo + (hi - lo) * 0.93
            };
            let font = ("sans-serif", 12).into_font().color(&BLACK);
            c.draw_series(std::iter::once(Text::new(label, (x0, y), font)))
                .map_err(err)?;
        }
    }
    Ok(())
}
