//! The text report of `GetDetailedConnectionStatus` (spec §5.6). GNS's format is informal; ours
//! keeps its shape: an end-to-end line, then link stats, rates, queues and counters.

use std::fmt::Write as _;

use super::{Connection, State};
use crate::time::Timestamp;

impl Connection {
    /// A human-readable status report for debugging.
    pub fn detailed_status(&mut self, now: Timestamp) -> String {
        let st = self.status(now);
        let counters = *self.snp.counters();
        let drops = self.drops;
        let mut s = String::new();
        let e2e = match self.state {
            State::Connecting => "connecting".to_owned(),
            State::FindingRoute => "finding route".to_owned(),
            State::Connected => "connected".to_owned(),
            State::Linger => "closing (linger)".to_owned(),
            State::ClosedByPeer => {
                format!(
                    "closed by remote host, reason code {} ({})",
                    self.end_reason, self.end_debug
                )
            }
            State::ProblemDetectedLocally => {
                format!(
                    "problem detected locally, reason code {} ({})",
                    self.end_reason, self.end_debug
                )
            }
            State::FinWait | State::Dead => {
                format!(
                    "closed, reason code {} ({})",
                    self.end_reason, self.end_debug
                )
            }
        };
        // Writing to a String cannot fail.
        let _ = writeln!(s, "End-to-end connection: {e2e}");
        let _ = writeln!(
            s,
            "  Local id {:#010x}, remote id {}",
            self.local_id,
            self.remote_id.map_or("?".into(), |r| format!("{r:#010x}"))
        );
        let _ = writeln!(
            s,
            "  Remote address {}, identity {}",
            self.peer,
            self.remote_identity
                .as_ref()
                .map_or("?".into(), ToString::to_string)
        );
        let _ = writeln!(
            s,
            "  Ping {} ms, quality local {}, remote {} (last 5 s interval; -1 unknown)",
            st.ping_ms,
            percent(st.quality_local),
            percent(st.quality_remote)
        );
        self.write_remote_stats(&mut s, now);
        let _ = writeln!(
            s,
            "  Sent {:.1} pkts/s {:.1} KB/s; recv {:.1} pkts/s {:.1} KB/s",
            st.out_packets_per_sec,
            st.out_bytes_per_sec / 1024.0,
            st.in_packets_per_sec,
            st.in_bytes_per_sec / 1024.0
        );
        let _ = writeln!(
            s,
            "  Send rate {} B/s; pending reliable {} B, unreliable {} B, sent unacked {} B; queue time {} us",
            st.send_rate_bytes_per_sec,
            st.pending_reliable,
            st.pending_unreliable,
            st.sent_unacked_reliable,
            st.queue_time_usec
        );
        let rc = self.snp.recovery_counters();
        let rtt = self.snp.rtt();
        let _ = writeln!(
            s,
            "  Congestion: {}; window {} B, in flight {} B; srtt {} us, rttvar {} us, rto {} us; {} lost, {} spurious, {} timeouts, {} reductions, {} unreliable expired",
            if self.snp.fixed_rate() {
                "fixed rate (SendRateMin = SendRateMax)"
            } else {
                "CUBIC"
            },
            self.snp.congestion_window(),
            self.snp.bytes_in_flight(),
            rtt.smoothed().map_or(-1, |d| d.as_micros() as i64),
            rtt.var().as_micros(),
            self.snp.rto().as_micros(),
            rc.packets_lost,
            rc.spurious_losses,
            rc.rto_expiries,
            rc.congestion_events,
            counters.unreliable_expired
        );
        for (i, lane) in st.lanes.iter().enumerate() {
            let _ = writeln!(
                s,
                "  Lane {i}: pending reliable {} B, unreliable {} B, sent unacked {} B, queue time {} us",
                lane.pending_reliable,
                lane.pending_unreliable,
                lane.sent_unacked_reliable,
                lane.queue_time_usec
            );
        }
        let _ = writeln!(
            s,
            "  Lifetime: {} pkts / {} B sent, {} pkts / {} B recv, {} segments retransmitted, {} duplicates, {} messages recv",
            counters.packets_sent,
            counters.bytes_sent,
            counters.packets_recv,
            counters.bytes_recv,
            counters.retransmitted_segments,
            counters.duplicates,
            counters.messages_received
        );
        let rx = self.snp.recv_counts();
        let _ = writeln!(
            s,
            "  Receive: {} data pkts, {} left unacked (no room), {} numbers skipped, {} out of order",
            rx.packets, rx.left_unacked, rx.skipped, rx.out_of_order
        );
        let _ = writeln!(
            s,
            "  Dropped: {} bad header, {} replayed, {} failed auth, {} wrong state, {} control ignored",
            drops.bad_header,
            drops.replayed,
            drops.auth_failed,
            drops.wrong_state,
            drops.control_ignored
        );
        s
    }

    /// The peer's last stats reports, as GNS prints them ("... received from remote host Ns
    /// ago").
    fn write_remote_stats(&self, s: &mut String, now: Timestamp) {
        let Some(r) = self.remote_stats() else {
            let _ = writeln!(s, "  No stats received from remote host");
            return;
        };
        if let Some((i, at)) = &r.instantaneous {
            let _ = writeln!(
                s,
                "  Rate stats received from remote host {:.1}s ago: sent {:.1} pkts/s {:.1} KB/s, recv {:.1} pkts/s {:.1} KB/s, ping {} ms, dropped {}%, weird {}%",
                now.saturating_since(*at).as_secs_f32(),
                f64::from(i.out_packets_per_sec_x10.unwrap_or(0)) / 10.0,
                f64::from(i.out_bytes_per_sec.unwrap_or(0)) / 1024.0,
                f64::from(i.in_packets_per_sec_x10.unwrap_or(0)) / 10.0,
                f64::from(i.in_bytes_per_sec.unwrap_or(0)) / 1024.0,
                i.ping_ms.map_or(-1, i64::from),
                i.packets_dropped_pct.map_or(-1, i64::from),
                i.packets_weird_sequence_pct.map_or(-1, i64::from)
            );
        }
        if let Some((l, at)) = &r.lifetime {
            let _ = writeln!(
                s,
                "  Lifetime stats received from remote host {:.1}s ago: {}s connected, {} pkts / {} KB sent, {} pkts / {} KB recv, {} dropped, {} out of order, {} duplicates",
                now.saturating_since(*at).as_secs_f32(),
                l.connected_seconds.unwrap_or(0),
                l.packets_sent.unwrap_or(0),
                l.kb_sent.unwrap_or(0),
                l.packets_recv.unwrap_or(0),
                l.kb_recv.unwrap_or(0),
                l.packets_recv_dropped.unwrap_or(0),
                l.packets_recv_out_of_order.unwrap_or(0),
                l.packets_recv_duplicate.unwrap_or(0)
            );
        }
    }
}

/// A quality fraction as a percentage, or -1 when unknown.
fn percent(q: f32) -> String {
    if q < 0.0 {
        "-1".to_owned()
    } else {
        format!("{:.1}%", q * 100.0)
    }
}
