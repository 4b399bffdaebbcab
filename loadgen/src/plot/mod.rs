//! `--plot FILE.png`: a run's time series as one PNG, three panels stacked over a shared time
//! axis: throughput (round trips/s and connects/s), p99 RTT (ms) and RSS (MiB, the server's
//! and this process's).
//!
//! ```text
//!  title
//!  ┌ throughput ─────────────── legend ┐
//!  ├ p99 RTT ──────────────────────────┤
//!  └ RSS ──────────────────────────────┘   x: seconds
//! ```
//! Lines and grids come from `plotters`' bitmap backend; labels from [`font`] (`plotters`
//! draws no text without its font features).

mod font;

use std::path::Path;

use anyhow::{Context as _, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::series::Sample;

/// Image size, pixels.
const SIZE: (u32, u32) = (1200, 960);
/// Label scale (font pixels per image pixel).
const SCALE: i32 = 2;
/// Space left of each panel for the y tick labels, pixels.
const LEFT: i32 = 90;
/// Space right of each panel.
const RIGHT: i32 = 24;
/// Space above each panel for its title and legend.
const TOP: i32 = 30;
/// Space below each panel for the x tick labels.
const BOTTOM: i32 = 26;
/// Height of the title strip.
const HEAD: u32 = 40;
/// Height of the strip under the panels (the time axis's name).
const FOOT: u32 = 24;

type Root<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// One line of a panel.
struct Line {
    label: &'static str,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

/// Writes the three-panel PNG of `samples` to `path`, `title` on top.
pub(crate) fn write(path: &Path, title: &str, samples: &[Sample]) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
    text(&root, title, (12, 12), &BLACK)?;
    let t_end = samples.last().map_or(1.0, |s| s.t).max(1.0);
    let line = |label, color, f: &dyn Fn(&Sample) -> f64| Line {
        label,
        color,
        points: samples.iter().map(|s| (s.t, f(s))).collect(),
    };
    let panels: [(&str, Vec<Line>); 3] = [
        (
            "THROUGHPUT (PER SECOND)",
            vec![
                line("ROUND TRIPS/S", BLUE, &|s| s.msgs as f64),
                line("CONNECTS/S", RED, &|s| s.connects as f64),
            ],
        ),
        (
            "P99 RTT (MS, PER SECOND)",
            vec![line("P99 RTT", MAGENTA, &|s| s.p99_us as f64 / 1000.0)],
        ),
        (
            "RSS (MIB)",
            vec![
                line("SERVER", BLUE, &|s| s.server_rss_kib as f64 / 1024.0),
                line("CLIENT PROCESS", RGBColor(0, 150, 0), &|s| {
                    s.process_rss_kib as f64 / 1024.0
                }),
            ],
        ),
    ];
    let h = (SIZE.1 - HEAD - FOOT) / 3;
    for (i, (name, lines)) in panels.iter().enumerate() {
        let top = HEAD + h * i as u32;
        let area = root.clone().shrink((0, top), (SIZE.0, h));
        panel(&root, &area, (top as i32, h as i32), name, lines, t_end)?;
    }
    let label = "TIME (S)";
    let x = (SIZE.0 as i32 - font::width(label) * SCALE) / 2;
    text(&root, label, (x, SIZE.1 as i32 - 20), &BLACK)?;
    root.present()
        .map_err(|e| anyhow!("plot: {e}"))
        .with_context(|| format!("writing {}", path.display()))
}

/// Draws one panel into `area` (rows `top..top + h` of `root`).
fn panel(
    root: &Root<'_>,
    area: &Root<'_>,
    (top, h): (i32, i32),
    name: &str,
    lines: &[Line],
    t_end: f64,
) -> anyhow::Result<()> {
    let e = |e: DrawingAreaErrorKind<_>| anyhow!("plot: {e}");
    let y_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let (y_step, y_top) = ticks(y_max);
    let (x_step, _) = ticks(t_end);
    let mut chart = ChartBuilder::on(area)
        .margin_left(LEFT)
        .margin_right(RIGHT)
        .margin_top(TOP)
        .margin_bottom(BOTTOM)
        .build_cartesian_2d(0.0..t_end, 0.0..y_top)
        .map_err(|e| anyhow!("plot: {e}"))?;
    let grid = RGBColor(220, 220, 220);
    let mut y = 0.0;
    while y <= y_top + y_step / 2.0 {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, y), (t_end, y)],
                grid,
            )))
            .map_err(|e| anyhow!("plot: {e}"))?;
        let (px, py) = chart.backend_coord(&(0.0, y));
        let label = number(y);
        let w = font::width(&label) * SCALE;
        text(root, &label, (px - w - 8, py - font::H * SCALE / 2), &BLACK)?;
        y += y_step;
    }
    let mut x = 0.0;
    while x <= t_end + 1e-9 {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, y_top)],
                grid,
            )))
            .map_err(|e| anyhow!("plot: {e}"))?;
        let (px, py) = chart.backend_coord(&(x, 0.0));
        let label = number(x);
        let w = font::width(&label) * SCALE;
        text(root, &label, (px - w / 2, py + 6), &BLACK)?;
        x += x_step;
    }
    for l in lines {
        chart
            .draw_series(LineSeries::new(
                l.points.iter().copied().filter(|p| p.1.is_finite()),
                l.color.stroke_width(2),
            ))
            .map_err(|e| anyhow!("plot: {e}"))?;
    }
    let (x0, y0) = chart.backend_coord(&(0.0, y_top));
    let (x1, y1) = chart.backend_coord(&(t_end, 0.0));
    root.draw(&Rectangle::new([(x0, y0), (x1, y1)], BLACK))
        .map_err(e)?;
    text(root, name, (LEFT, top + 8), &BLACK)?;
    // Legend, right-aligned above the panel.
    let mut lx = SIZE.0 as i32 - RIGHT;
    for l in lines.iter().rev() {
        lx -= font::width(l.label) * SCALE;
        text(root, l.label, (lx, top + 8), &l.color)?;
        lx -= 30;
        root.draw(&Rectangle::new(
            [(lx, top + 13), (lx + 22, top + 17)],
            l.color.filled(),
        ))
        .map_err(e)?;
        lx -= 24;
    }
    let _ = h;
    Ok(())
}

/// Draws `s` with its top-left corner at `(x, y)` (pixels of `root`).
fn text(root: &Root<'_>, s: &str, (x, y): (i32, i32), color: &RGBColor) -> anyhow::Result<()> {
    for (px, py) in font::pixels(s) {
        let (ax, ay) = (x + px * SCALE, y + py * SCALE);
        root.draw(&Rectangle::new(
            [(ax, ay), (ax + SCALE - 1, ay + SCALE - 1)],
            color.filled(),
        ))
        .map_err(|e| anyhow!("plot: {e}"))?;
    }
    Ok(())
}

/// A tick step of 1, 2 or 5 times a power of ten giving about five intervals up to `max`, and
/// the axis top (a multiple of the step at or above `max`; one step for a zero `max`).
pub(crate) fn ticks(max: f64) -> (f64, f64) {
    if max.is_nan() || max <= 0.0 {
        return (1.0, 1.0);
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|f| f * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let top = ((max / step) - 1e-9).ceil().max(1.0) * step;
    (step, top)
}

/// A tick label: `1.5M`, `20K`, `250`, `0.5`.
pub(crate) fn number(v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}K", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        trim(format!("{v:.3}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_one_two_five() {
        assert_eq!(ticks(0.0), (1.0, 1.0));
        assert_eq!(ticks(100.0), (20.0, 100.0));
        assert_eq!(ticks(101.0), (50.0, 150.0));
        assert_eq!(ticks(7.3), (2.0, 8.0));
        let (s, t) = ticks(123_456.0);
        assert_eq!(s, 50_000.0);
        assert_eq!(t, 150_000.0);
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(250.0), "250");
        assert_eq!(number(20_000.0), "20K");
        assert_eq!(number(1_500_000.0), "1.5M");
    }

    #[test]
    fn a_plot_renders_to_a_png() {
        let samples: Vec<Sample> = (1..=30u32)
            .map(|i| Sample {
                t: f64::from(i),
                msgs: 1000 + 10 * u64::from(i),
                p99_us: 500 + 20 * u64::from(i % 5),
                connects: 50,
                open: 40,
                server_rss_kib: 20_000 + u64::from(i),
                process_rss_kib: 30_000,
                server_cpu: 0.5,
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("loadgen-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("p.png");
        write(&path, "TEST PLOT", &samples).expect("plot");
        let bytes = std::fs::read(&path).expect("png");
        assert_eq!(&bytes[1..4], b"PNG");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
