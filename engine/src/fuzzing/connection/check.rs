//! The invariants the stateful target checks after every step and at the end of a run (see
//! the parent module's docs).

use super::*;
use crate::proto::rtt::MAX_RTO;

impl Harness {
    pub(super) fn after_step(&mut self) {
        self.pump();
        if self.m.auto_poll {
            self.m.drain_all(&mut self.p);
        }
        self.check();
    }

    /// The memory bounds and, in strict runs, how a connection may end.
    pub(super) fn check(&mut self) {
        // Which sides ended on a timeout of their own (then told their peer so).
        let timed_out = [false, true].map(|server| {
            let id = self.m.ids[side(server)];
            ep(&mut self.p, server).connection(id).is_some_and(|c| {
                c.state() == State::ProblemDetectedLocally
                    && c.info().end_reason == end_reason::MISC_TIMEOUT
            })
        });
        for server in [false, true] {
            let s = side(server);
            let id = self.m.ids[s];
            let lim = self.m.limits[s];
            let Some(c) = ep(&mut self.p, server).connection(id) else {
                continue;
            };
            let h = c.snp().held();
            assert!(
                h.send_unsent <= lim.send_buffer + FRAMING_SLACK,
                "side {s}: {} unsent bytes, send buffer at most {}",
                h.send_unsent,
                lim.send_buffer
            );
            assert!(
                h.send_retry + h.send_in_flight <= h.send_retained,
                "side {s}: send accounting: {h:?}"
            );
            let r = h.recv;
            assert!(
                r.reassembly_max <= MAX_BUFFERED_SEGMENTS,
                "side {s}: {} reassembly fragments on one lane",
                r.reassembly_max
            );
            assert!(
                r.stream_max <= lim.recv_buffer,
                "side {s}: a receive stream holds {} bytes, limit {}",
                r.stream_max,
                lim.recv_buffer
            );
            assert!(
                r.queue_bytes as u64 <= lim.recv_buffer,
                "side {s}: receive queue holds {} bytes, limit {}",
                r.queue_bytes,
                lim.recv_buffer
            );
            assert!(
                r.queue_messages <= lim.recv_messages,
                "side {s}: receive queue holds {} messages, limit {}",
                r.queue_messages,
                lim.recv_messages
            );
            assert!(
                r.packet_gaps <= MAX_TRACKED_GAPS,
                "side {s}: {} packet gaps tracked",
                r.packet_gaps
            );
            assert!(r.lanes <= 256, "side {s}: {} receive lanes", r.lanes);
            if self.m.strict {
                let info = c.info();
                let ended = matches!(
                    c.state(),
                    State::ClosedByPeer | State::ProblemDetectedLocally
                );
                // Over a corrupting link the peer's ConnectionClosed may arrive with its reason
                // altered (5003 -> 5001 is one bit): what counts is that the peer timed out.
                let told_by_timed_out_peer =
                    self.m.link_corrupts && c.state() == State::ClosedByPeer && timed_out[1 - s];
                assert!(
                    !ended
                        || told_by_timed_out_peer
                        || matches!(
                            info.end_reason,
                            end_reason::MISC_TIMEOUT
                                | end_reason::REMOTE_TIMEOUT
                                | end_reason::MISC_PEER_SENT_NO_CONNECTION
                        ),
                    "side {s}: connection ended in {:?} with reason {} ({}) though nothing but \
                     a timeout should end it",
                    c.state(),
                    info.end_reason,
                    info.end_debug
                );
            }
        }
    }

    pub(super) fn connected(&self) -> bool {
        let up = |e: &Endpoint, id| {
            e.connection(id)
                .is_some_and(|c| c.state() == State::Connected)
        };
        up(&self.p.client, self.m.ids[0]) && up(&self.p.server, self.m.ids[1])
    }

    /// Liveness: on a clean link with the default send rate and receive limits at least the
    /// defaults, everything owed arrives and the senders release their buffers.
    pub(super) fn finish(&mut self) {
        if !self.connected() {
            return;
        }
        for server in [false, true] {
            // Receive limits the fuzzer lowered may leave a message with nowhere to go (GNS
            // too: the sender retries until the application raises them).
            self.update_snp(server, |c| {
                let d = SnpConfig::default();
                c.send_rate_min = d.send_rate_min;
                c.send_rate_max = d.send_rate_max;
                c.recv_buffer_size = c.recv_buffer_size.max(d.recv_buffer_size);
                c.recv_buffer_messages = c.recv_buffer_messages.max(d.recv_buffer_messages);
                c.recv_max_message_size = c.recv_max_message_size.max(d.recv_max_message_size);
            });
        }
        let clean = LinkConditions::with_delay(self.link.delay);
        let (ca, sa) = (self.p.client_addr, self.p.server_addr);
        self.p.net.set_link(ca, sa, clean.clone());
        self.p.net.set_link(sa, ca, clean);
        self.m.auto_poll = true;
        // Time to move the most a run may queue at the default rate, plus RTO backoff.
        let limit = self.p.now + Duration::from_secs(30);
        self.settle(Duration::ZERO, 1);
        let m = &mut self.m;
        let delivered = self.p.run_until(limit, 2_000_000, |p| {
            m.drain_all(p);
            m.sent[0].reliable_owed() == 0 && m.sent[1].reliable_owed() == 0
        });
        if !self.connected() {
            // A timeout (or, outside strict runs, anything else) ended it meanwhile.
            return;
        }
        assert!(
            delivered,
            "reliable messages still owed after 30 s on a clean link: client {}, server {}",
            self.m.sent[0].reliable_owed(),
            self.m.sent[1].reliable_owed()
        );
        // The last acks, then nothing reliable may be held. An ack lost before the link turned
        // clean is answered only by the sender's retransmission timeout, which earlier losses
        // may have backed off to its cap: so wait up to that long, not a fixed couple of
        // seconds (a campaign finding: 1026 bytes held 2 s after delivery, released at 3.5 s).
        let limit = self.p.now + MAX_RTO + Duration::from_secs(2);
        let m = &mut self.m;
        let ids = m.ids;
        self.p.run_until(limit, 2_000_000, |p| {
            m.drain_all(p);
            [false, true].into_iter().all(|server| {
                ep(p, server)
                    .connection(ids[side(server)])
                    .is_none_or(released)
            })
        });
        for server in [false, true] {
            if let Some(c) = ep(&mut self.p, server).connection(ids[side(server)]) {
                assert!(
                    released(c),
                    "side {}: everything was delivered but the sender still holds {:?}",
                    side(server),
                    c.snp().held()
                );
            }
        }
    }
}

/// Whether a connection holds nothing reliable (or can no longer be expected to).
fn released(c: &crate::proto::connection::Connection) -> bool {
    let h = c.snp().held();
    c.state() != State::Connected
        || (!c.snp().reliable_pending()
            && h.send_retained == 0
            && h.send_retry == 0
            && h.send_in_flight == 0)
}
