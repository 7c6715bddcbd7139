//! `bench --plot FILE.svg`: throughput and latency per variant, drawn with
//! plotters' SVG backend.
//!
//! Owns: the chart layout. It may not compute results.

use std::path::Path;

use plotters::prelude::*;

use super::error::CliError;
use super::report::{BenchReport, Latency};

const SIZE: (u32, u32) = (1000, 420);
const COLORS: [RGBColor; 3] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
];

/// Draws two panels into `path`: ops/s per variant (bars) and p50/p95/p99
/// latency per variant (log scale).
pub fn draw(report: &BenchReport, path: &Path) -> Result<(), CliError> {
    render(report, path).map_err(|error| CliError::Plot {
        path: path.to_path_buf(),
        message: error.to_string(),
    })
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Picks one percentile out of a variant's latencies.
type Percentile = fn(&Latency) -> f64;

fn render(report: &BenchReport, path: &Path) -> DrawResult {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    throughput(report, &left)?;
    latency(report, &right)?;
    root.present()?;
    Ok(())
}

fn names(report: &BenchReport) -> Vec<String> {
    report.variants.iter().map(|v| v.name.clone()).collect()
}

fn throughput(
    report: &BenchReport,
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
) -> DrawResult {
    let names = names(report);
    let count = u32::try_from(names.len()).unwrap_or(u32::MAX).max(1);
    let top = report
        .variants
        .iter()
        .map(|v| v.ops_per_sec)
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption("Throughput (ops/s, higher is better)", ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d((0..count - 1).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|x| segment_name(&names, x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    chart.draw_series(
        Histogram::vertical(&chart)
            .style(COLORS[0].filled())
            .margin(20)
            .data(
                report
                    .variants
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (u32::try_from(i).unwrap_or(u32::MAX), v.ops_per_sec)),
            ),
    )?;
    Ok(())
}

fn latency(
    report: &BenchReport,
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
) -> DrawResult {
    let names = names(report);
    let count = u32::try_from(names.len()).unwrap_or(u32::MAX).max(1);
    let values = report
        .variants
        .iter()
        .flat_map(|v| [v.latency_us.p50, v.latency_us.p95, v.latency_us.p99]);
    let (low, high) = values.fold((f64::MAX, 0.0_f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (low, high) = if high > 0.0 {
        ((low / 2.0).max(0.01), high * 2.0)
    } else {
        (0.1, 10.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption("Latency per operation (µs, log scale)", ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d((0..count - 1).into_segmented(), (low..high).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|x| segment_name(&names, x))
        .y_label_formatter(&|y| format!("{y}"))
        .draw()?;
    let series: [(&str, Percentile); 3] =
        [("p50", |l| l.p50), ("p95", |l| l.p95), ("p99", |l| l.p99)];
    for ((label, pick), color) in series.into_iter().zip(COLORS) {
        let points: Vec<_> = report
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                (SegmentValue::CenterOf(i), pick(&v.latency_us).max(low))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn segment_name(names: &[String], x: &SegmentValue<u32>) -> String {
    match x {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => usize::try_from(*i)
            .ok()
            .and_then(|i| names.get(i))
            .cloned()
            .unwrap_or_default(),
        SegmentValue::Last => String::new(),
    }
}
