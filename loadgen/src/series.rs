//! Per-second time series of a long run (`--mode churn`): what each second measured, the
//! raw CSV (`--series`), and the "RSS flat after warm-up" check: the least-squares slope of
//! RSS over the second half of the run and its max - min spread there.

use std::fmt::Write as _;
use std::path::Path;

/// One second of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Sample {
    /// Seconds since the run started (end of this sample's second).
    pub t: f64,
    /// Round trips (reliable messages echoed and checked) completed in this second.
    pub msgs: u64,
    /// p99 RTT of this second's round trips, microseconds (0: none completed).
    pub p99_us: u64,
    /// Connections that completed their handshake in this second.
    pub connects: u64,
    /// Connections open (connected, exchanging) at the end of the second.
    pub open: u64,
    /// Server process resident set, KiB.
    pub server_rss_kib: u64,
    /// This (client) process's resident set, KiB.
    pub process_rss_kib: u64,
    /// Server CPU in this second, seconds (1.0: one core busy).
    pub server_cpu: f64,
}

/// The CSV header of [`to_csv`].
pub(crate) const CSV_HEADER: &str =
    "t_s,msgs_per_s,p99_rtt_us,connects_per_s,open,server_rss_kib,process_rss_kib,server_cpu";

/// The samples as CSV, one line per second, with [`CSV_HEADER`].
pub(crate) fn to_csv(samples: &[Sample]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for s in samples {
        let _ = writeln!(
            out,
            "{:.3},{},{},{},{},{},{},{:.3}",
            s.t,
            s.msgs,
            s.p99_us,
            s.connects,
            s.open,
            s.server_rss_kib,
            s.process_rss_kib,
            s.server_cpu
        );
    }
    out
}

/// Writes [`to_csv`] to `path`.
pub(crate) fn write_csv(path: &Path, samples: &[Sample]) -> std::io::Result<()> {
    std::fs::write(path, to_csv(samples))
}

/// Least-squares slope of `y` over `x` (units of y per unit of x); 0 for fewer than two
/// points or no spread in x.
pub(crate) fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

/// Growth a flat RSS may show over the second half: this fraction of its mean there...
pub(crate) const FLAT_FRACTION: f64 = 0.05;
/// ... or this many KiB, whichever is larger (allocator noise on a small heap).
pub(crate) const FLAT_FLOOR_KIB: f64 = 2048.0;

/// The RSS of one process over the second half of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RssTrend {
    /// Least-squares slope, KiB per minute.
    pub slope_kib_per_min: f64,
    /// Max - min, KiB.
    pub spread_kib: u64,
    /// Mean, KiB.
    pub mean_kib: f64,
    /// Length of the half, minutes.
    pub minutes: f64,
}

impl RssTrend {
    /// Over the samples of the second half (by time) of `samples`, with `rss` picking the
    /// process; `None` with fewer than two samples there.
    pub(crate) fn second_half(samples: &[Sample], rss: impl Fn(&Sample) -> u64) -> Option<Self> {
        let end = samples.last()?.t;
        let half: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| s.t >= end / 2.0)
            .map(|s| (s.t, rss(s) as f64))
            .collect();
        if half.len() < 2 {
            return None;
        }
        let (lo, hi) = half.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
        Some(RssTrend {
            slope_kib_per_min: slope(&half) * 60.0,
            spread_kib: (hi - lo) as u64,
            mean_kib: half.iter().map(|p| p.1).sum::<f64>() / half.len() as f64,
            minutes: (half[half.len() - 1].0 - half[0].0) / 60.0,
        })
    }

    /// Growth the slope projects over the half, KiB.
    pub(crate) fn growth_kib(&self) -> f64 {
        self.slope_kib_per_min * self.minutes
    }

    /// The growth a flat RSS may show over the half, KiB.
    pub(crate) fn allowance_kib(&self) -> f64 {
        (self.mean_kib * FLAT_FRACTION).max(FLAT_FLOOR_KIB)
    }

    /// Flat: the projected growth stays within [`RssTrend::allowance_kib`].
    pub(crate) fn flat(&self) -> bool {
        self.growth_kib() <= self.allowance_kib()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, rss: u64) -> Sample {
        Sample {
            t,
            server_rss_kib: rss,
            process_rss_kib: 2 * rss,
            ..Sample::default()
        }
    }

    #[test]
    fn slope_of_a_line_is_exact() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 3.0 * f64::from(i) + 7.0))
            .collect();
        assert!((slope(&pts) - 3.0).abs() < 1e-12);
        assert_eq!(slope(&[(1.0, 5.0)]), 0.0);
        assert_eq!(slope(&[(1.0, 5.0), (1.0, 9.0)]), 0.0);
    }

    #[test]
    fn slope_of_noise_around_a_constant_is_zero() {
        // Symmetric noise: +d, -d alternating around 100.
        let pts: Vec<(f64, f64)> = (0..20)
            .map(|i| (f64::from(i), if i % 2 == 0 { 104.0 } else { 96.0 }))
            .collect();
        assert!(slope(&pts).abs() < 0.5);
    }

    #[test]
    fn second_half_ignores_the_warm_up() {
        // 0..60 s: RSS climbs 1000 KiB/s (warm-up), then flat at 60,000 KiB until 120 s.
        let samples: Vec<Sample> = (1..=120u32)
            .map(|i| sample(f64::from(i), 1000 * u64::from(i.min(60))))
            .collect();
        let server = RssTrend::second_half(&samples, |s| s.server_rss_kib).expect("trend");
        assert!(server.slope_kib_per_min.abs() < 1e-6, "{server:?}");
        assert_eq!(server.spread_kib, 0);
        assert!((server.mean_kib - 60_000.0).abs() < 1e-6);
        assert!((server.minutes - 1.0).abs() < 1e-9);
        assert!(server.flat());
        let process = RssTrend::second_half(&samples, |s| s.process_rss_kib).expect("trend");
        assert!((process.mean_kib - 120_000.0).abs() < 1e-6);
    }

    #[test]
    fn a_leak_is_not_flat() {
        // 100 KiB/s for 10 minutes: 6,000 KiB per minute, 30,000 KiB over the second half.
        let samples: Vec<Sample> = (1..=600u32)
            .map(|i| sample(f64::from(i), 50_000 + 100 * u64::from(i)))
            .collect();
        let t = RssTrend::second_half(&samples, |s| s.server_rss_kib).expect("trend");
        assert!((t.slope_kib_per_min - 6000.0).abs() < 1e-6, "{t:?}");
        assert_eq!(t.spread_kib, 100 * 300);
        assert!(t.growth_kib() > t.allowance_kib());
        assert!(!t.flat());
        // A small drift within the allowance is flat: 2 KiB/s on ~80 MiB.
        let samples: Vec<Sample> = (1..=600u32)
            .map(|i| sample(f64::from(i), 80_000 + 2 * u64::from(i)))
            .collect();
        let t = RssTrend::second_half(&samples, |s| s.server_rss_kib).expect("trend");
        assert!(t.flat(), "{t:?}");
    }

    #[test]
    fn too_short_has_no_trend() {
        assert!(RssTrend::second_half(&[], |s| s.server_rss_kib).is_none());
        assert!(RssTrend::second_half(&[sample(1.0, 5)], |s| s.server_rss_kib).is_none());
    }

    #[test]
    fn csv_has_a_header_and_a_line_per_sample() {
        let csv = to_csv(&[
            Sample {
                t: 1.0,
                msgs: 10,
                p99_us: 250,
                connects: 3,
                open: 40,
                server_rss_kib: 9000,
                process_rss_kib: 12000,
                server_cpu: 0.5,
            },
            sample(2.0, 9100),
        ]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines[1], "1.000,10,250,3,40,9000,12000,0.500");
        assert_eq!(lines[0].split(',').count(), lines[2].split(',').count());
    }
}
