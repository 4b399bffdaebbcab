//! The report of one load client: one line, `RESULT key=value ...`, that a parent process
//! parses and merges (several client processes share one load).
//!
//! Keys, all numeric: `connections connected reliable size msgs secs msgs_per_sec mb_per_sec
//! p50_us p99_us p999_us max_us sent received lost dup reordered corrupt late`, then optionally
//! `hist=V:C,V:C,...`: the round-trip histogram's recorded values (microseconds) and counts,
//! so merged percentiles are exact to the histogram's precision. `msgs`, `secs`, the rates and
//! the percentiles cover the measured interval only; the counters cover the whole run.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use super::tally::Counts;

/// Why a `RESULT` line did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line does not start with `RESULT `.
    #[error("not a RESULT line")]
    NotResult,
    /// A `key=value` pair is malformed or its value is not a number.
    #[error("bad field {0:?}")]
    BadField(String),
    /// A required key is missing.
    #[error("missing key {0}")]
    Missing(&'static str),
}

/// Round trips are recorded from 1 µs to 60 s, three significant digits.
#[must_use]
pub fn new_histogram() -> Histogram<u64> {
    // invariant: constant bounds that hdrhistogram accepts (low >= 1, high >= 2 * low,
    // sigfig <= 5).
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// What one load client (or several, merged) measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Connections asked for.
    pub connections: u64,
    /// Connections that reached Connected.
    pub connected: u64,
    /// Reliable messages (else unreliable).
    pub reliable: bool,
    /// Payload bytes per message.
    pub size: u64,
    /// Echoes received intact in the measured interval.
    pub msgs: u64,
    /// Length of the measured interval, seconds.
    pub secs: f64,
    /// `msgs / secs`.
    pub msgs_per_sec: f64,
    /// Payload megabytes (10^6) per second, one way.
    pub mb_per_sec: f64,
    /// Round-trip percentiles and maximum, microseconds.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Maximum.
    pub max_us: u64,
    /// Counters over the whole run.
    pub counts: Counts,
    /// The round-trip histogram, when the line carried one.
    pub rtt: Option<Histogram<u64>>,
}

impl LoadResult {
    /// A result from the measured interval's figures and histogram.
    #[must_use]
    pub fn new(
        (connections, connected): (u64, u64),
        (reliable, size): (bool, u64),
        (msgs, secs): (u64, f64),
        counts: Counts,
        rtt: Histogram<u64>,
    ) -> Self {
        let rate = if secs > 0.0 { msgs as f64 / secs } else { 0.0 };
        let mut r = LoadResult {
            connections,
            connected,
            reliable,
            size,
            msgs,
            secs,
            msgs_per_sec: rate,
            mb_per_sec: rate * size as f64 / 1e6,
            p50_us: 0,
            p99_us: 0,
            p999_us: 0,
            max_us: 0,
            counts,
            rtt: None,
        };
        r.set_rtt(rtt);
        r
    }

    fn set_rtt(&mut self, h: Histogram<u64>) {
        if !h.is_empty() {
            self.p50_us = h.value_at_quantile(0.5);
            self.p99_us = h.value_at_quantile(0.99);
            self.p999_us = h.value_at_quantile(0.999);
            self.max_us = h.max();
        }
        self.rtt = Some(h);
    }

    /// Whether the run passed: every connection connected, something was echoed, and for
    /// reliable messages nothing was lost, duplicated, reordered or corrupted.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.connected == self.connections
            && self.msgs > 0
            && (!self.reliable || self.counts.is_clean())
            && self.counts.corrupt == 0
    }

    /// The `RESULT ...` line (without a newline); `with_hist` appends the histogram.
    #[must_use]
    pub fn to_line(&self, with_hist: bool) -> String {
        let c = &self.counts;
        let mut s = format!(
            "RESULT connections={} connected={} reliable={} size={} msgs={} secs={:.3} \
             msgs_per_sec={:.0} mb_per_sec={:.3} p50_us={} p99_us={} p999_us={} max_us={} \
             sent={} received={} lost={} dup={} reordered={} corrupt={} late={}",
            self.connections,
            self.connected,
            u8::from(self.reliable),
            self.size,
            self.msgs,
            self.secs,
            self.msgs_per_sec,
            self.mb_per_sec,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            c.sent,
            c.received,
            c.lost,
            c.dup,
            c.reordered,
            c.corrupt,
            c.late
        );
        if let Some(h) = self.rtt.as_ref().filter(|_| with_hist) {
            s.push_str(" hist=");
            for (i, v) in h.iter_recorded().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(s, "{sep}{}:{}", v.value_iterated_to(), v.count_at_value());
            }
        }
        s
    }

    /// Parses a line written by [`LoadResult::to_line`].
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let rest = line
            .trim()
            .strip_prefix("RESULT ")
            .ok_or(ParseError::NotResult)?;
        let mut kv = std::collections::HashMap::new();
        let mut hist = None;
        for field in rest.split_whitespace() {
            let bad = || ParseError::BadField(field.to_owned());
            let (k, v) = field.split_once('=').ok_or_else(bad)?;
            if k == "hist" {
                hist = Some(parse_hist(v).ok_or_else(bad)?);
            } else {
                kv.insert(k, v.parse::<f64>().map_err(|_| bad())?);
            }
        }
        let f = |k: &'static str| kv.get(k).copied().ok_or(ParseError::Missing(k));
        // Counters are written as integers; f64 holds them exactly below 2^53.
        let n = |k: &'static str| f(k).map(|v| v as u64);
        let mut r = LoadResult {
            connections: n("connections")?,
            connected: n("connected")?,
            reliable: n("reliable")? == 1,
            size: n("size")?,
            msgs: n("msgs")?,
            secs: f("secs")?,
            msgs_per_sec: f("msgs_per_sec")?,
            mb_per_sec: f("mb_per_sec")?,
            p50_us: n("p50_us")?,
            p99_us: n("p99_us")?,
            p999_us: n("p999_us")?,
            max_us: n("max_us")?,
            counts: Counts {
                sent: n("sent")?,
                received: n("received")?,
                lost: n("lost")?,
                dup: n("dup")?,
                reordered: n("reordered")?,
                corrupt: n("corrupt")?,
                late: n("late")?,
            },
            rtt: None,
        };
        if let Some(h) = hist {
            r.set_rtt(h);
        }
        Ok(r)
    }

    /// Merges the results of client processes that ran side by side: counts and rates add
    /// up, the interval is the longest, and the percentiles come from the merged histograms
    /// (or, if a result carried none, are the worst of the parts: an upper bound).
    #[must_use]
    pub fn merge(parts: &[LoadResult]) -> Option<LoadResult> {
        let (first, rest) = parts.split_first()?;
        let mut m = first.clone();
        for p in rest {
            m.connections += p.connections;
            m.connected += p.connected;
            m.msgs += p.msgs;
            m.secs = m.secs.max(p.secs);
            m.msgs_per_sec += p.msgs_per_sec;
            m.mb_per_sec += p.mb_per_sec;
            m.counts += p.counts;
            m.p50_us = m.p50_us.max(p.p50_us);
            m.p99_us = m.p99_us.max(p.p99_us);
            m.p999_us = m.p999_us.max(p.p999_us);
            m.max_us = m.max_us.max(p.max_us);
            m.rtt = match (m.rtt.take(), &p.rtt) {
                (Some(mut a), Some(b)) => a.add(b).is_ok().then_some(a),
                _ => None,
            };
        }
        if let Some(h) = m.rtt.take() {
            m.set_rtt(h);
        }
        Some(m)
    }
}

fn parse_hist(v: &str) -> Option<Histogram<u64>> {
    let mut h = new_histogram();
    for pair in v.split(',').filter(|p| !p.is_empty()) {
        let (value, count) = pair.split_once(':')?;
        let (value, count) = (value.parse::<u64>().ok()?, count.parse::<u64>().ok()?);
        h.record_n(value.clamp(1, 60_000_000), count).ok()?;
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(values: &[u64], msgs: u64) -> LoadResult {
        let mut h = new_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        let counts = Counts {
            sent: msgs,
            received: msgs,
            ..Counts::default()
        };
        LoadResult::new((4, 4), (true, 32), (msgs, 2.0), counts, h)
    }

    #[test]
    fn a_line_parses_back_with_its_histogram() {
        let r = sample(&[100, 200, 300, 5000], 4);
        let line = r.to_line(true);
        assert!(line.starts_with("RESULT connections=4 connected=4 reliable=1 size=32 msgs=4"));
        let back = LoadResult::parse(&line).unwrap();
        assert_eq!(
            (back.msgs, back.p50_us, back.max_us),
            (4, r.p50_us, r.max_us)
        );
        assert_eq!(back.counts, r.counts);
        assert!(back.passed());
        let no_hist = LoadResult::parse(&r.to_line(false)).unwrap();
        assert!(no_hist.rtt.is_none());
        assert_eq!(no_hist.p99_us, r.p99_us);
    }

    #[test]
    fn merged_parts_add_up_and_take_percentiles_from_both_histograms() {
        let a = sample(&[100; 10], 10);
        let b = sample(&[1000; 10], 10);
        let m = LoadResult::merge(&[
            LoadResult::parse(&a.to_line(true)).unwrap(),
            LoadResult::parse(&b.to_line(true)).unwrap(),
        ])
        .unwrap();
        assert_eq!((m.connections, m.msgs, m.counts.sent), (8, 20, 20));
        assert!((m.msgs_per_sec - 10.0).abs() < 1e-9);
        assert_eq!(m.p50_us, 100);
        assert!(m.max_us >= 1000);
    }

    #[test]
    fn loss_or_a_missing_connection_fails_a_reliable_run() {
        let mut r = sample(&[100], 1);
        r.counts.lost = 1;
        assert!(!r.passed());
        let mut r = sample(&[100], 1);
        r.connected = 3;
        assert!(!r.passed());
        assert_eq!(
            LoadResult::parse("RESULT msgs=1").unwrap_err(),
            ParseError::Missing("connections")
        );
        assert_eq!(
            LoadResult::parse("DONE").unwrap_err(),
            ParseError::NotResult
        );
    }
}
