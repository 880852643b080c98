//! The report's charts, drawn as SVG with `plotters`.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use super::{Entry, Trace};
use crate::clock::{Phase, PhaseSpan};
use crate::sensor::Origin;

const FONT: &str = "sans-serif";
const WIDTH: u32 = 1200;

/// One chart written into the report's folder.
pub struct Chart {
    pub title: String,
    pub caption: String,
    /// File name inside the report's folder.
    pub file: String,
}

/// Makes `bytes` (a TrueType font) the charts' font.
pub fn register_font(bytes: Vec<u8>) -> Result<()> {
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    for style in [FontStyle::Normal, FontStyle::Bold] {
        plotters::style::register_font(FONT, style, bytes)
            .map_err(|_| anyhow!("not a TrueType font"))?;
    }
    Ok(())
}

fn origin_color(origin: Option<Origin>) -> RGBColor {
    match origin {
        Some(Origin::Simulated) => RGBColor(230, 120, 20),
        Some(Origin::Nominal) => RGBColor(140, 140, 140),
        Some(Origin::Partial) => RGBColor(120, 170, 210),
        _ => RGBColor(31, 100, 180),
    }
}

fn origin_name(origin: Option<Origin>) -> &'static str {
    origin.unwrap_or(Origin::Measured).watts()
}

/// One bar of a bar chart.
struct Bar {
    label: String,
    value: f64,
    interval: Option<(f64, f64)>,
    origin: Option<Origin>,
    text: String,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// What a legend item shows beside its text.
#[derive(Clone, Copy)]
enum Swatch {
    Fill(RGBAColor),
    Line(RGBColor),
}

const LEGEND_ROW: i32 = 26;

/// Where each legend item goes, flowing left to right in rows below a chart; and the rows.
fn legend_layout(items: &[(String, Swatch)]) -> (Vec<(i32, i32)>, i32) {
    let (mut x, mut y, mut at) = (30, 8, Vec::new());
    for (text, _) in items {
        let width = 40 + text.chars().count() as i32 * 9;
        if x > 30 && x + width > WIDTH as i32 - 20 {
            x = 30;
            y += LEGEND_ROW;
        }
        at.push((x, y));
        x += width + 20;
    }
    let rows = if items.is_empty() {
        0
    } else {
        y / LEGEND_ROW + 1
    };
    (at, rows)
}

fn legend_height(items: &[(String, Swatch)]) -> u32 {
    (legend_layout(items).1 * LEGEND_ROW + 16) as u32
}

fn draw_legend(area: &Area, items: &[(String, Swatch)]) -> Result<()> {
    let (at, _) = legend_layout(items);
    let style = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for ((text, swatch), (x, y)) in items.iter().zip(at) {
        let y = y + LEGEND_ROW / 2;
        match *swatch {
            Swatch::Fill(color) => area.draw(&Rectangle::new(
                [(x, y - 8), (x + 24, y + 8)],
                color.filled(),
            ))?,
            Swatch::Line(color) => area.draw(&PathElement::new(
                vec![(x, y), (x + 24, y)],
                color.stroke_width(3),
            ))?,
        }
        area.draw(&Text::new(text.clone(), (x + 32, y), style.clone()))?;
    }
    Ok(())
}

/// An axis value with no more digits than it needs.
fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let text = format!("{v:.4}");
        text.trim_end_matches('0').to_string()
    }
}

/// The coordinates of a bar chart: a linear or log value axis, one row per bar.
type BarCoord<X> = Cartesian2d<X, RangedCoordf64>;

fn draw_bars<X>(
    root: &Area,
    title: &str,
    x: X,
    x_desc: &str,
    bars: &[Bar],
    references: &[(String, f64)],
) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let n = bars.len();
    let widest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(10);
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 24))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size((widest as u32 * 8 + 20).min(WIDTH / 2))
        .build_cartesian_2d(x, 0.0..n as f64)?;
    // Entry 1 at the top; row i spans [n - 1 - i, n - i].
    let row = |i: usize| (n - 1 - i) as f64;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_label_formatter(&|v| tick(*v))
        .light_line_style(WHITE)
        .x_desc(x_desc)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()?;
    let x_lo = chart.x_range().start;
    draw_row_labels(root, &chart, bars, &row)?;
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let mut r = Rectangle::new(
            [(x_lo, row(i)), (b.value, row(i) + 1.0)],
            origin_color(b.origin).filled(),
        );
        r.set_margin(10, 10, 0, 0);
        r
    }))?;
    draw_intervals(&mut chart, bars, &row)?;
    let text_style =
        TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let end_of = |b: &Bar| b.interval.map_or(b.value, |(_, hi)| hi.max(b.value));
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        EmptyElement::at((end_of(b), row(i) + 0.5))
            + Text::new(b.text.clone(), (8, 0), text_style.clone())
    }))?;
    draw_references(&mut chart, references, n)?;
    Ok(())
}

/// Each bar's label, right-aligned left of the value axis.
fn draw_row_labels<X: Ranged<ValueType = f64>>(
    root: &Area,
    chart: &ChartContext<SVGBackend, BarCoord<X>>,
    bars: &[Bar],
    row: &dyn Fn(usize) -> f64,
) -> Result<()> {
    let x_lo = chart.x_range().start;
    let label_style =
        TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, b) in bars.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(x_lo, row(i) + 0.5));
        root.draw(&Text::new(
            b.label.clone(),
            (x - 10, y),
            label_style.clone(),
        ))?;
    }
    Ok(())
}

/// The error bar of each bar that has a confidence interval.
fn draw_intervals<X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<SVGBackend, BarCoord<X>>,
    bars: &[Bar],
    row: &dyn Fn(usize) -> f64,
) -> Result<()> {
    let black = BLACK.stroke_width(2);
    for (i, b) in bars.iter().enumerate() {
        if let Some((lo, hi)) = b.interval {
            let y = row(i) + 0.5;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(lo, y), (hi, y)],
                black,
            )))?;
            for end in [lo, hi] {
                chart.draw_series(std::iter::once(
                    EmptyElement::at((end, y)) + PathElement::new(vec![(0, -9), (0, 9)], black),
                ))?;
            }
        }
    }
    Ok(())
}

/// A vertical line across all `n` rows at each reference value.
fn draw_references<X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<SVGBackend, BarCoord<X>>,
    references: &[(String, f64)],
    n: usize,
) -> Result<()> {
    for (k, (_, value)) in references.iter().enumerate() {
        let style = REF_COLORS[k % REF_COLORS.len()].stroke_width(2);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(*value, 0.0), (*value, n as f64)],
            style,
        )))?;
    }
    Ok(())
}

const REF_COLORS: [RGBColor; 3] = [
    RGBColor(200, 30, 30),
    RGBColor(120, 40, 160),
    RGBColor(20, 140, 90),
];

/// A bar chart of `bars` into `dir/file`, on a linear or a log scale, its legend below.
fn bar_chart(
    dir: &Path,
    file: &str,
    title: &str,
    x_desc: &str,
    bars: &[Bar],
    log: bool,
    references: &[(String, f64)],
) -> Result<()> {
    let path = dir.join(file);
    let mut items: Vec<(String, Swatch)> = Vec::new();
    for b in bars {
        let name = origin_name(b.origin).to_string();
        if !items.iter().any(|(t, _)| *t == name) {
            items.push((name, Swatch::Fill(origin_color(b.origin).to_rgba())));
        }
    }
    if bars.iter().any(|b| b.interval.is_some()) {
        items.push(("95 % confidence interval".into(), Swatch::Line(BLACK)));
    }
    for (k, (label, _)) in references.iter().enumerate() {
        items.push((
            label.clone(),
            Swatch::Line(REF_COLORS[k % REF_COLORS.len()]),
        ));
    }
    let legend = legend_height(&items);
    let height = 150 + 60 * bars.len() as u32 + legend;
    let whole = SVGBackend::new(&path, (WIDTH, height)).into_drawing_area();
    whole.fill(&WHITE)?;
    let (root, below) = whole.split_vertically(height - legend);
    draw_legend(&below, &items)?;
    let top = bars
        .iter()
        .map(|b| b.interval.map_or(b.value, |(_, hi)| hi.max(b.value)))
        .chain(references.iter().map(|r| r.1))
        .fold(0.0_f64, f64::max);
    if log {
        let bottom = bars.iter().map(|b| b.value).fold(f64::INFINITY, f64::min);
        let lo = 10f64.powf((bottom / 2.0).log10().floor());
        let hi = 10f64.powf((top * 3.0).log10().ceil());
        draw_bars(&root, title, (lo..hi).log_scale(), x_desc, bars, references)?;
    } else {
        draw_bars(&root, title, 0.0..top * 1.2, x_desc, bars, references)?;
    }
    whole.present()?;
    Ok(())
}

fn phase_style(phase: Phase) -> (&'static str, RGBColor) {
    match phase {
        Phase::IdleBaseline => ("idle baseline", RGBColor(150, 150, 150)),
        Phase::Warmup => ("warm-up", RGBColor(240, 170, 40)),
        Phase::Settle => ("settle", RGBColor(100, 160, 230)),
        Phase::Timed => ("timed run", RGBColor(60, 180, 90)),
    }
}

/// The end of phase `p`, if it ended (a killed run leaves its last one open).
fn ended(p: &PhaseSpan) -> Option<f64> {
    Some(p.end).filter(|end| end.is_finite())
}

fn power_chart(path: &Path, title: &str, trace: &Trace) -> Result<()> {
    let mut items: Vec<(String, Swatch)> = Vec::new();
    for p in &trace.phases {
        let (name, color) = phase_style(p.phase);
        if !items.iter().any(|(t, _)| t == name) {
            items.push((name.into(), Swatch::Fill(color.mix(0.3))));
        }
    }
    let color = origin_color(trace.origin);
    items.push((format!("watts: {}", trace.label), Swatch::Line(color)));
    let legend = legend_height(&items);
    let whole = SVGBackend::new(path, (WIDTH, 560 + legend)).into_drawing_area();
    whole.fill(&WHITE)?;
    let (root, below) = whole.split_vertically(560);
    draw_legend(&below, &items)?;
    let t_max = trace
        .points
        .iter()
        .map(|p| p.0)
        .chain(trace.phases.iter().filter_map(ended))
        .fold(0.0_f64, f64::max)
        .max(1e-3);
    let w_max = trace
        .points
        .iter()
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(1e-3)
        * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..t_max * 1.02, 0.0..w_max)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .x_desc("run time, s")
        .y_desc("power, W")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()?;
    for p in &trace.phases {
        if let Some(end) = ended(p) {
            let fill = phase_style(p.phase).1.mix(0.3).filled();
            chart.draw_series(std::iter::once(Rectangle::new(
                [(p.start, 0.0), (end, w_max)],
                fill,
            )))?;
        }
    }
    let timed: Vec<_> = trace
        .phases
        .iter()
        .filter(|p| p.phase == Phase::Timed)
        .collect();
    if timed.len() > 1 {
        let style = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Top));
        chart.draw_series(timed.iter().map(|p| {
            Text::new(
                format!("b{} r{}", p.backend.unwrap_or(0), p.repetition.unwrap_or(1)),
                (p.start, w_max),
                style.clone(),
            )
        }))?;
    }
    let step = trace.points.len() / 20_000 + 1;
    chart.draw_series(LineSeries::new(
        trace.points.iter().step_by(step).copied(),
        color.stroke_width(1),
    ))?;
    whole.present()?;
    Ok(())
}

/// Draws every chart of the report into `dir`.
pub fn draw_all(
    dir: &Path,
    entries: &[Entry],
    traces: &[Trace],
    implied: &[(String, String, f64)],
) -> Result<Vec<Chart>> {
    let mut charts = Vec::new();
    fps_charts(dir, entries, &mut charts)?;
    timed_run_chart(dir, entries, &mut charts)?;
    per_joule_chart(dir, entries, implied, &mut charts)?;
    power_charts(dir, traces, &mut charts)?;
    Ok(charts)
}

/// One bar per entry that has a positive, finite `value`, labelled with `digits` and `unit`.
fn bars_of(
    entries: &[Entry],
    value: &dyn Fn(&Entry) -> Option<f64>,
    digits: usize,
    unit: &str,
) -> Vec<Bar> {
    entries
        .iter()
        .filter_map(|e| {
            value(e).filter(|v| *v > 0.0 && v.is_finite()).map(|v| Bar {
                label: format!("{}. {}", e.number, e.label),
                value: v,
                interval: None,
                origin: e.origin,
                text: format!("{v:.digits$} {unit}"),
            })
        })
        .collect::<Vec<Bar>>()
}

/// A caption's sentence on the entries a chart's `bars` leave out, if any.
fn left_out(entries: &[Entry], bars: &[Bar]) -> String {
    let missing = entries.len() - bars.len();
    if missing == 0 {
        String::new()
    } else {
        format!(" {missing} entries without this figure are left out.")
    }
}

/// Frames per second, on a linear and on a log scale.
fn fps_charts(dir: &Path, entries: &[Entry], charts: &mut Vec<Chart>) -> Result<()> {
    let fps = bars_of(entries, &|e| e.row.fps, 1, "FPS");
    if !fps.is_empty() {
        for (log, file, title) in [
            (false, "fps-linear.svg", "Frames per second (linear scale)"),
            (true, "fps-log.svg", "Frames per second (log scale)"),
        ] {
            bar_chart(
                dir,
                file,
                title,
                "classifications per second (FPS)",
                &fps,
                log,
                &[],
            )?;
            charts.push(Chart {
                title: title.into(),
                caption: format!(
                    "Timed classifications per second of each entry{}, higher is better.{}",
                    if log { " on a logarithmic axis, so that entries orders of magnitude apart stay readable" } else { "" },
                    left_out(entries, &fps)
                ),
                file: file.into(),
            });
        }
    }
    Ok(())
}

/// How long each entry's timed run took.
fn timed_run_chart(dir: &Path, entries: &[Entry], charts: &mut Vec<Chart>) -> Result<()> {
    let time = bars_of(entries, &|e| e.timed_seconds(), 2, "s");
    if !time.is_empty() {
        let file = "timed-run.svg";
        let title = "Time of the timed runs";
        bar_chart(
            dir,
            file,
            title,
            "seconds per timed run (runs / FPS)",
            &time,
            false,
            &[],
        )?;
        charts.push(Chart {
            title: title.into(),
            caption: format!(
                "How long one timed run of each entry took (its timed classifications, runs / FPS; \
                 the mean over repetitions), lower is better.{}",
                left_out(entries, &time)
            ),
            file: file.into(),
        });
    }
    Ok(())
}

/// Inferences per joule with their confidence intervals, and a line per nameplate reference.
fn per_joule_chart(
    dir: &Path,
    entries: &[Entry],
    implied: &[(String, String, f64)],
    charts: &mut Vec<Chart>,
) -> Result<()> {
    let mut per_joule = bars_of(entries, &|e| e.row.inferences_per_joule, 2, "inf/J");
    if !per_joule.is_empty() {
        add_per_joule_intervals(entries, &mut per_joule);
        let references = nameplate_references(implied);
        let file = "inferences-per-joule.svg";
        let title = "Inferences per joule";
        bar_chart(
            dir,
            file,
            title,
            "inferences per joule (gross)",
            &per_joule,
            false,
            &references,
        )?;
        charts.push(Chart {
            title: title.into(),
            caption: format!(
                "Classifications per joule the rail delivered during the timed run, higher is \
                 better; error bars are the 95 % confidence interval of the mean over \
                 repetitions (entries of one repetition have none).{}{}",
                if references.is_empty() {
                    String::new()
                } else {
                    " Vertical lines: inferences per joule implied by a published latency and a \
                     nameplate wattage (analysis/references.csv), nominal on both counts."
                        .into()
                },
                left_out(entries, &per_joule)
            ),
            file: file.into(),
        });
    }
    Ok(())
}

/// Gives each per-joule bar its entry's confidence interval (bars are the entries with a
/// figure, in order).
fn add_per_joule_intervals(entries: &[Entry], per_joule: &mut [Bar]) {
    let mut k = 0;
    for e in entries {
        if e.row
            .inferences_per_joule
            .is_some_and(|v| v > 0.0 && v.is_finite())
        {
            if let (Some(lo), Some(hi)) = (
                e.row.inferences_per_joule_ci_low,
                e.row.inferences_per_joule_ci_high,
            ) {
                per_joule[k].interval = Some((lo.max(0.0), hi));
            }
            k += 1;
        }
    }
}

/// The per-joule chart's reference lines: a device's published latency at its nameplate watts.
fn nameplate_references(implied: &[(String, String, f64)]) -> Vec<(String, f64)> {
    implied
        .iter()
        .map(|(_, device, v)| {
            (
                format!("{device} at its nameplate watts: {v:.0} inf/J (nominal, not measured)"),
                *v,
            )
        })
        .collect()
}

/// One power-over-time chart per trace that has readings.
fn power_charts(dir: &Path, traces: &[Trace], charts: &mut Vec<Chart>) -> Result<()> {
    for trace in traces.iter().filter(|t| !t.points.is_empty()) {
        let file = format!("power-run{}-sensor{}.svg", trace.folder, trace.sensor_index);
        let title = format!(
            "Power, run {} sensor {}: {}",
            trace.folder, trace.sensor_index, trace.label
        );
        power_chart(&dir.join(&file), &title, trace)?;
        charts.push(Chart {
            title,
            caption: "Every fresh reading of the sensor against the run clock, with the \
                      protocol's phases shaded (bN rM: backend N, repetition M)."
                .into(),
            file,
        });
    }
    Ok(())
}
