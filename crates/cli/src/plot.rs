//! `--plot`: a grouped bar chart, one panel per suite: each method's value (a ratio
//! to the suite's baseline: std or raw hyper for `dio bench`, DataFusion's default
//! store for `dio bench query`) per workload.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::Row;

/// One panel of the chart: bars grouped by workload, one colour per method.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    pub(crate) title: String,
    pub(crate) y_desc: String,
    /// Draw a line at 1.0 (the baseline's value).
    pub(crate) baseline: bool,
    /// `(workload, method, value)`.
    pub(crate) bars: Vec<(String, String, f64)>,
}

/// `dio bench`'s panels: throughput as a ratio to each suite's baseline.
pub(crate) fn throughput_panels(rows: &[Row]) -> Vec<Panel> {
    let mut suites: Vec<_> = rows.iter().map(|r| r.suite).collect();
    suites.dedup();
    suites
        .into_iter()
        .map(|suite| {
            let rows: Vec<&Row> = rows.iter().filter(|r| r.suite == suite).collect();
            let base = rows.iter().find_map(|r| r.baseline.clone());
            let y_desc = match &base {
                Some(b) => format!("throughput / {b}"),
                None => "GiB/s".into(),
            };
            Panel {
                title: format!("{suite:?}: median throughput ({y_desc})"),
                y_desc,
                baseline: base.is_some(),
                bars: rows
                    .iter()
                    .map(|r| {
                        let value = r
                            .ratio_to_baseline
                            .unwrap_or(r.throughput_bytes_per_sec / (1u64 << 30) as f64);
                        (r.workload.clone(), r.method.clone(), value)
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Whether a chart can be drawn to `path`: a `.svg` or `.png` file, and a font to
/// lay its text out with, at a place it can be written to. Checked before a run,
/// so that none of them costs the whole run.
pub(crate) fn check_path(path: &Path) -> Result<(), String> {
    let format = path.extension().and_then(|e| e.to_str());
    if !matches!(format, Some("svg" | "png")) {
        return Err(format!(
            "--plot {}: use a .svg or .png file",
            path.display()
        ));
    }
    register_font()?;
    crate::check_writable("--plot", path, false)
}

/// Draws `panels` to `path`, `.svg` or `.png` (text is laid out with a system
/// TrueType font, DejaVu or Liberation Sans).
pub(crate) fn draw(panels: &[Panel], path: &Path) -> Result<(), String> {
    let size = (1400, 420 * panels.len().max(1) as u32);
    // A `.svg` or `.png` file, and a font for both backends to lay text out with.
    check_path(path)?;
    if path.extension().and_then(|e| e.to_str()) == Some("svg") {
        render(SVGBackend::new(path, size).into_drawing_area(), panels)
    } else {
        render(BitMapBackend::new(path, size).into_drawing_area(), panels)
    }
}

fn register_font() -> Result<(), String> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(load_font).clone()
}

fn load_font() -> Result<(), String> {
    const CANDIDATES: [&str; 4] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    let bytes = CANDIDATES
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or("--plot needs a TrueType font: install fonts-dejavu-core (Debian) or Liberation")?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(bytes.into_boxed_slice()),
    )
    .map_err(|_| "the system font could not be loaded".to_owned())
}

fn render<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, panels: &[Panel]) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw the chart: {e}");
    root.fill(&WHITE).map_err(err)?;
    for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
        let mut workloads: Vec<&str> = Vec::new();
        let mut methods: Vec<&str> = Vec::new();
        for (w, m, _) in &panel.bars {
            if !workloads.contains(&w.as_str()) {
                workloads.push(w);
            }
            if !methods.contains(&m.as_str()) {
                methods.push(m);
            }
        }
        let top = panel.bars.iter().map(|b| b.2).fold(0.0_f64, f64::max) * 1.15;
        let n = workloads.len() as f64;
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..n - 0.5, 0.0..top.max(0.1))
            .map_err(err)?;
        let names = workloads.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(workloads.len())
            .x_label_formatter(&move |x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    names
                        .get(i as usize)
                        .map_or(String::new(), |s| (*s).to_owned())
                } else {
                    String::new()
                }
            })
            .x_label_style(("sans-serif", 12))
            .y_desc(panel.y_desc.as_str())
            .draw()
            .map_err(err)?;
        let width = 0.8 / methods.len() as f64;
        for (mi, method) in methods.iter().enumerate() {
            let color = Palette99::pick(mi).to_rgba();
            let bars = panel
                .bars
                .iter()
                .filter(|b| b.1 == *method)
                .map(|(w, _, v)| {
                    let wi = workloads.iter().position(|x| x == w).unwrap_or(0) as f64;
                    let x0 = wi - 0.4 + mi as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.9, *v)], color.filled())
                });
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(*method)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        if panel.baseline {
            chart
                .draw_series(LineSeries::new(
                    [(-0.5, 1.0), (n - 0.5, 1.0)],
                    BLACK.mix(0.4),
                ))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}
