//! `--plot`: a grouped bar chart, one panel per suite: each method's throughput as
//! a ratio to the suite's baseline (std, or raw hyper for S3), per workload.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::Row;

/// Draws `rows` to `path`, `.svg` or `.png` (text is laid out with a system
/// TrueType font, DejaVu or Liberation Sans).
pub(crate) fn draw(rows: &[Row], path: &Path) -> Result<(), String> {
    let mut suites: Vec<_> = rows.iter().map(|r| r.suite).collect();
    suites.dedup();
    let size = (1400, 420 * suites.len().max(1) as u32);
    let format = path.extension().and_then(|e| e.to_str());
    if !matches!(format, Some("svg" | "png")) {
        return Err(format!(
            "--plot {}: use a .svg or .png file",
            path.display()
        ));
    }
    // Both backends lay text out with the font's metrics.
    register_font()?;
    if format == Some("svg") {
        render(SVGBackend::new(path, size).into_drawing_area(), rows)
    } else {
        render(BitMapBackend::new(path, size).into_drawing_area(), rows)
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

fn render<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, rows: &[Row]) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw the chart: {e}");
    root.fill(&WHITE).map_err(err)?;
    let mut suites: Vec<_> = rows.iter().map(|r| r.suite).collect();
    suites.dedup();
    for (area, suite) in root.split_evenly((suites.len(), 1)).iter().zip(&suites) {
        let rows: Vec<&Row> = rows.iter().filter(|r| r.suite == *suite).collect();
        let mut workloads: Vec<&str> = Vec::new();
        let mut methods: Vec<&str> = Vec::new();
        for r in &rows {
            if !workloads.contains(&r.workload.as_str()) {
                workloads.push(&r.workload);
            }
            if !methods.contains(&r.method.as_str()) {
                methods.push(&r.method);
            }
        }
        let value = |r: &Row| {
            r.ratio_to_baseline
                .unwrap_or(r.throughput_bytes_per_sec / (1u64 << 30) as f64)
        };
        let base = rows.iter().find_map(|r| r.baseline.clone());
        let y_desc = match &base {
            Some(b) => format!("throughput / {b}"),
            None => "GiB/s".into(),
        };
        let top = rows.iter().map(|r| value(r)).fold(0.0_f64, f64::max) * 1.15;
        let n = workloads.len() as f64;
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{suite:?}: median throughput ({y_desc})"),
                ("sans-serif", 22),
            )
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
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        let width = 0.8 / methods.len() as f64;
        for (mi, method) in methods.iter().enumerate() {
            let color = Palette99::pick(mi).to_rgba();
            let bars = rows.iter().filter(|r| r.method == *method).map(|r| {
                let wi = workloads.iter().position(|w| *w == r.workload).unwrap_or(0) as f64;
                let x0 = wi - 0.4 + mi as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.9, value(r))], color.filled())
            });
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(*method)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        if base.is_some() {
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
