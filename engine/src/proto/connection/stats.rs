//! The connection's end-to-end stats reports (spec §4.13, [`crate::proto::quality`]): counts
//! fed from the message layer, reports built for outgoing packets, the fate of the packet that
//! carried one, and the peer's reports taken from incoming packets.

use super::{Connection, State};
use crate::proto::quality::{Counts, Inputs, Need, Quality, RemoteStats};
use crate::time::Timestamp;
use crate::wire::proto::ConnectionQuality;

/// Received packets after which a connection starts its quality bookkeeping.
const ACTIVE_AFTER_PACKETS: u64 = 5;

impl Connection {
    fn quality_counts(&self) -> Counts {
        let r = self.snp.recv_counts();
        let c = self.snp.counters();
        Counts {
            recv: r.packets + c.duplicates,
            // An out-of-order arrival fills a number first counted as skipped (GNS undoes
            // the drop the same way).
            dropped: r.skipped.saturating_sub(r.out_of_order),
            weird: r.out_of_order + c.duplicates,
            sent: c.packets_sent,
        }
    }

    /// Closes a quality interval that has run its length (called before a received packet
    /// counts, and on timers); starts the bookkeeping once the link carries traffic.
    #[inline]
    pub(super) fn quality_tick(&mut self, now: Timestamp) {
        // Per received packet: a comparison or two, inline, unless there is work.
        let work = match &self.quality {
            Some(q) => q.interval_over(now),
            None => self.snp.recv_counts().packets > ACTIVE_AFTER_PACKETS,
        };
        if work {
            self.quality_tick_work(now);
        }
    }

    #[inline(never)]
    fn quality_tick_work(&mut self, now: Timestamp) {
        let c = self.quality_counts();
        let dead = self.timers.timeouts_in_a_row >= 2;
        match &mut self.quality {
            Some(q) => q.roll(now, c, dead),
            // `quality_tick` saw the traffic; a connection already closing starts nothing.
            None if matches!(self.state, State::Connected | State::Linger) => {
                self.quality = Some(Box::new(Quality::new(now, c)));
            }
            None => {}
        }
    }

    /// The peer's report, from a packet that decrypted and was processed.
    pub(super) fn quality_receive(&mut self, now: Timestamp, report: ConnectionQuality) {
        let c = self.quality_counts();
        self.quality
            .get_or_insert_with(|| Box::new(Quality::new(now, c)))
            .receive(now, report);
    }

    /// Hands the fate of the packet that carried our last report (if now known) to the
    /// bookkeeping.
    #[inline]
    pub(super) fn quality_fate(&mut self, now: Timestamp) {
        if let Some(acked) = self.snp.take_watch_outcome() {
            let c = self.quality_counts();
            if let Some(q) = &mut self.quality {
                q.on_fate(now, acked, c);
            }
        }
    }

    /// Which reports the next packet should carry (inline: per packet, one or two comparisons
    /// unless a report may be ready).
    #[inline]
    pub(super) fn quality_need(&mut self, now: Timestamp) -> Need {
        if !self.quality.as_ref().is_some_and(|q| q.may_need(now)) {
            return Need::default();
        }
        let c = self.quality_counts();
        self.quality
            .as_mut()
            .map_or(Need::default(), |q| q.need(now, c))
    }

    /// When a report falls due (it then sends a packet of its own).
    pub(super) fn quality_due_at(&self) -> Option<Timestamp> {
        // Only where a packet can go out, or the timer would fire and find nothing to do.
        let can_send = self.keys.is_some()
            && self.remote_id.is_some()
            && !(self.p2p && self.route == super::Route::None);
        self.quality
            .as_ref()
            .filter(|_| can_send)
            .and_then(|q| q.next_due())
    }

    /// The stats blob (`CMsgSteamSockets_UDP_Stats`) carrying `need`'s reports, in at most
    /// `room` bytes, and what it carries; `immediate` asks for an immediate ack (a report
    /// implies ACK_REQUEST_E2E). Lifetime stats are left out when they do not fit (GNS trims
    /// the same way); `None` when even the rest does not (a tiny `MTU_PacketSize`): the report
    /// is then skipped as if sent and acked, so a due one cannot ask for packets forever.
    pub(super) fn quality_blob(
        &mut self,
        now: Timestamp,
        need: Need,
        immediate: bool,
        room: usize,
    ) -> Option<(Vec<u8>, Need)> {
        let c = self.quality_counts();
        let x = Inputs {
            rates: self.snp.rates(now),
            ping_ms: self.snp.ping().smoothed_ms(),
            counters: *self.snp.counters(),
            out_of_order: self.snp.recv_counts().out_of_order,
        };
        let q = self.quality.as_mut()?;
        let built = q.blob(need, now, c, &x, immediate, room);
        if built.is_none() {
            q.skip(now, c);
        }
        built
    }

    /// A packet carrying `need`'s reports went out as `packet_number`.
    pub(super) fn quality_sent(&mut self, need: Need, packet_number: u64) {
        if let Some(q) = &mut self.quality {
            q.on_sent(need);
            self.snp.watch_packet(packet_number);
        }
    }

    /// Local quality (this side's receive quality over the last 5 s interval) and remote
    /// quality (the same, from the peer's last report); −1 when unknown.
    pub fn quality(&self) -> (f32, f32) {
        self.quality
            .as_ref()
            .map_or((-1.0, -1.0), |q| (q.local(), q.remote()))
    }

    /// The peer's latest stats reports, if any came.
    pub fn remote_stats(&self) -> Option<&RemoteStats> {
        self.quality.as_ref().and_then(|q| q.remote_stats())
    }
}
