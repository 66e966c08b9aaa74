//! `pipe report RUN_DIR --plot PATH`: loss and LR across the stages of a run, from
//! `metrics.jsonl`, with stage bands.

use std::path::Path;

use pipelang_runtime::metrics;
use plotters::prelude::*;

struct Row {
    stage: String,
    step: f64,
    loss: f64,
    lr: f64,
}

fn read(run: &Path) -> Result<Vec<Row>, String> {
    let rows: Vec<Row> = metrics::read(run)?
        .into_iter()
        .map(|m| Row {
            stage: m.stage,
            step: m.global_step as f64,
            loss: m.loss,
            lr: m.lr,
        })
        .collect();
    if rows.is_empty() {
        return Err(format!(
            "`{}` has no steps yet",
            metrics::path(run).display()
        ));
    }
    Ok(rows)
}

pub fn plot(run: &Path, out: &Path) -> Result<(), String> {
    let rows = read(run)?;
    super::register_font();
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "svg" => draw(&rows, SVGBackend::new(out, (1200, 800)).into_drawing_area()),
        "png" => draw(
            &rows,
            BitMapBackend::new(out, (1200, 800)).into_drawing_area(),
        ),
        _ => Err(format!(
            "`{}`: the plot is written as .svg or .png",
            out.display()
        )),
    }
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("cannot draw the plot: {e:?}")
}

fn draw<DB: DrawingBackend>(
    rows: &[Row],
    root: DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((2, 1));
    let max_x = rows.last().map_or(1.0, |r| r.step + 1.0);
    // Stage extents, in global steps.
    let mut bands: Vec<(String, f64, f64)> = vec![];
    for r in rows {
        match bands.last_mut() {
            Some((name, _, end)) if *name == r.stage => *end = r.step + 1.0,
            _ => bands.push((r.stage.clone(), r.step, r.step + 1.0)),
        }
    }
    type Series = (&'static str, fn(&Row) -> f64);
    let series: [Series; 2] = [("loss", |r| r.loss), ("learning rate", |r| r.lr)];
    for (panel, (title, get)) in panels.iter().zip(series.iter()) {
        let vals: Vec<f64> = rows.iter().map(get).filter(|v| v.is_finite()).collect();
        let hi = vals.iter().cloned().fold(f64::MIN, f64::max).max(1e-12) * 1.05;
        let lo = vals.iter().cloned().fold(f64::MAX, f64::min).min(0.0);
        let mut c = ChartBuilder::on(panel)
            .margin(10)
            .caption(*title, ("sans-serif", 20))
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..max_x, lo..hi)
            .map_err(err)?;
        c.configure_mesh()
            .x_desc("step (whole run)")
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        for (i, (name, a, b)) in bands.iter().enumerate() {
            let color = if i % 2 == 0 {
                RGBColor(235, 242, 252)
            } else {
                RGBColor(250, 244, 230)
            };
            c.draw_series(std::iter::once(Rectangle::new(
                [(*a, lo), (*b, hi)],
                color.filled(),
            )))
            .map_err(err)?;
            c.draw_series(std::iter::once(Text::new(
                name.clone(),
                (*a, hi),
                ("sans-serif", 12).into_font(),
            )))
            .map_err(err)?;
        }
        for (name, _, _) in &bands {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| &r.stage == name)
                .map(|r| (r.step, get(r)))
                .filter(|p| p.1.is_finite())
                .collect();
            c.draw_series(LineSeries::new(pts, BLUE.stroke_width(1)))
                .map_err(err)?;
        }
    }
    root.present().map_err(err)
}
