//! What the many-connection harness ([`super::Many`]) measures: per-connection goodput over an
//! interval, Jain's fairness index, and the sender's and bottleneck's counters.

use std::time::Duration;

use super::BottleneckStats;
use crate::time::Timestamp;

/// Per-connection delivered bytes at one instant, for goodput over an interval.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When it was taken.
    pub at: Timestamp,
    /// Cumulative delivered payload bytes per connection.
    pub delivered: Vec<u64>,
}

/// Goodput of an interval between two [`Snapshot`]s.
#[derive(Debug, Clone)]
pub struct Goodput {
    /// Length of the interval.
    pub interval: Duration,
    /// Delivered payload bytes per second, per connection.
    pub per_connection: Vec<f64>,
    /// Delivered payload bytes of all connections over bottleneck capacity, 0.0..=1.0.
    pub link_fraction: f64,
    /// Jain's fairness index over `per_connection`.
    pub jain: f64,
}

/// Jain's fairness index, (Σx)² / (n·Σx²): 1.0 when all are equal, 1/n when one has all.
/// 1.0 for an empty or all-zero input.
pub fn jain_index(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let sum_sq: f64 = xs.iter().map(|x| x * x).sum();
    if sum_sq == 0.0 {
        return 1.0;
    }
    sum * sum / (xs.len() as f64 * sum_sq)
}

/// Sender, network and bottleneck figures of a run so far.
#[derive(Debug, Clone, Copy)]
pub struct ManyCounters {
    /// Packets the server's connections built.
    pub packets_sent: u64,
    /// Reliable segments the server sent again.
    pub retransmitted_segments: u64,
    /// Server RTO expiries that declared packets lost.
    pub packets_timed_out: u64,
    /// The bottleneck's counters.
    pub bottleneck: BottleneckStats,
    /// Datagrams that reached an endpoint.
    pub datagrams_delivered: u64,
    /// Reliable messages queued by the server.
    pub messages_sent: u64,
    /// Reliable messages delivered intact and in order.
    pub messages_delivered: u64,
    /// Reliable-delivery violations (corrupt, duplicate, out of order).
    pub reliable_errors: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_index_bounds() {
        assert_eq!(jain_index(&[5.0; 8]), 1.0);
        assert!((jain_index(&[1.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
        assert_eq!(jain_index(&[]), 1.0);
    }
}
