//! Data packets in and out (spec §1.3, §3.5, §3.6): header, packet-number expansion, replay
//! window, AEAD, and the hand-off to SNP; and `poll_transmit`, which sends queued control
//! datagrams first, then sealed SNP packets.

use super::{Connection, Role, State};
use crate::crypto::{CommitOutcome, PacketCipher};
use crate::proto::end_reason;
use crate::proto::quality::Need;
use crate::proto::snp::AckRequest;
use crate::time::Timestamp;
use crate::wire::header::DataHeader;
use crate::wire::packet::{DATA_HEADER_LEN, MAX_ENCRYPTED_PAYLOAD_SEND, MAX_UDP_PAYLOAD};
use crate::wire::proto::UdpStats;

/// The AEAD tag's length, for sizing a stats report before the cipher is at hand (the NULL
/// cipher's is shorter, which only leaves more room).
const TAG_LEN: usize = 16;
/// Plaintext room a packet keeps for acks and data beside a stats report.
const REPORT_MIN_PLAINTEXT: usize = 64;

/// Stats blobs carrying just ACK_REQUEST flags (`CMsgSteamSockets_UDP_Stats{flags}`).
const BLOB_E2E: [u8; 2] = [0x18, UdpStats::ACK_REQUEST_E2E as u8];
const BLOB_IMMEDIATE: [u8; 2] = [
    0x18,
    (UdpStats::ACK_REQUEST_E2E | UdpStats::ACK_REQUEST_IMMEDIATE) as u8,
];

impl Connection {
    /// A data datagram whose header names this connection. Decrypts in place. Returns whether
    /// it authenticated (the endpoint may then follow the peer to a new address).
    pub fn handle_data(&mut self, now: Timestamp, datagram: &mut [u8]) -> bool {
        self.receive_data(now, datagram).is_some()
    }

    fn receive_data(&mut self, now: Timestamp, datagram: &mut [u8]) -> Option<()> {
        match self.state {
            State::Connected | State::Linger | State::FindingRoute => {}
            State::ClosedByPeer => {
                self.queue_no_connection();
                return None;
            }
            State::FinWait if self.closed_by_peer_first => {
                self.queue_no_connection();
                return None;
            }
            State::FinWait | State::ProblemDetectedLocally => {
                self.queue_connection_closed();
                return None;
            }
            // While connecting a ConnectOK may have been lost: data is ignored (GNS).
            State::Connecting | State::Dead => {
                super::count(&mut self.drops.wrong_state);
                return None;
            }
        }
        let Ok((hdr, start)) = DataHeader::decode(datagram) else {
            super::count(&mut self.drops.bad_header);
            return None;
        };
        let (ack_request, report) = match hdr.decode_stats() {
            Some(Ok(stats)) => {
                let flags = stats.flags.unwrap_or(0);
                let request = if flags & UdpStats::ACK_REQUEST_IMMEDIATE != 0 {
                    AckRequest::Immediate
                } else if flags & UdpStats::ACK_REQUEST_E2E != 0 || stats.stats.is_some() {
                    AckRequest::E2e
                } else {
                    AckRequest::None
                };
                (request, stats.stats)
            }
            _ => (AckRequest::None, None),
        };
        let Some(pn) = self.replay.expand(hdr.packet_number) else {
            super::count(&mut self.drops.replayed);
            return None;
        };
        if !self.replay.check(pn).is_acceptable() {
            super::count(&mut self.drops.replayed);
            return None;
        }
        let Some(cipher) = self.keys.as_mut().and_then(|k| k.recv(now)) else {
            super::count(&mut self.drops.wrong_state);
            return None;
        };
        let Ok(plaintext) = cipher.open_in_place(pn, &mut datagram[start..]) else {
            super::count(&mut self.drops.auth_failed);
            return None;
        };
        match self.replay.commit(pn) {
            CommitOutcome::Recorded => {}
            CommitOutcome::Lurch { .. } => {
                self.problem(now, end_reason::MISC_GENERIC, "Pkt number lurch");
                return None;
            }
            CommitOutcome::Rejected(_) => {
                super::count(&mut self.drops.replayed);
                return None;
            }
        }
        self.timers.received(now);
        if matches!(self.role, Role::AcceptedUdp(_)) {
            // Data sealed with the session keys: the client has our ConnectOK, so a repeated
            // ConnectRequest can only be stale or replayed. The encoded reply (~200 bytes a
            // connection) goes (issue 16: memory per idle connection).
            self.role = Role::Established;
        }
        if self.state == State::FindingRoute {
            // GNS: the first packet that decrypts confirms the route end to end.
            self.set_state(now, State::Connected);
        }
        self.quality_tick(now);
        if let Err(e) = self.snp.receive_packet(now, pn, plaintext, ack_request) {
            self.problem(now, end_reason::MISC_INTERNAL_ERROR, &e.to_string());
            return None;
        }
        self.quality_fate(now);
        if let Some(report) = report {
            // GNS takes a report only from a packet that decrypted and was processed.
            self.quality_receive(now, report);
        }
        if self.state == State::Linger {
            // A lingering connection is closed to the application: received data is dropped.
            while self.snp.poll_message().is_some() {}
            // This packet may have acked the last reliable data.
            self.finish_linger(now);
        }
        Some(())
    }

    /// Appends the next datagram to send to `out` (so a runtime can build a whole send batch
    /// in one buffer without copying) and returns its length; `None` (with `out` unchanged)
    /// when nothing is due.
    pub fn poll_transmit(&mut self, now: Timestamp, out: &mut Vec<u8>) -> Option<usize> {
        let start = out.len();
        let sent = self.write_datagram(now, out);
        if sent.is_none() {
            out.truncate(start);
        }
        sent
    }

    fn write_datagram(&mut self, now: Timestamp, out: &mut Vec<u8>) -> Option<usize> {
        let start = out.len();
        if self.p2p && self.route == super::Route::None {
            // No route yet: nowhere to send (a P2P close goes by signal).
            self.control_out.clear();
            return None;
        }
        if let Some(d) = self.control_out.pop_front() {
            out.extend_from_slice(&d);
            return Some(d.len());
        }
        let routing = self.state == State::FindingRoute && self.timers.force_ack_request.is_some();
        if !matches!(self.state, State::Connected | State::Linger) && !routing {
            return None;
        }
        let remote_id = self.remote_id?;
        let forced = self.timers.force_ack_request;
        let tracer =
            now.saturating_since(self.timers.last_ping_request) > super::timers::TRACER_INTERVAL;
        // Stats reports: "due" ones send a packet of their own, "ready" ones ride along.
        let need = self.quality_need(now);
        if forced.is_none() && !need.is_due() && !self.snp.wants_to_send(now) {
            return None;
        }
        // The congestion window needs timely acks: GNS receivers hold them up to 50 ms
        // (none at all for unreliable-only packets) unless asked.
        let cc_request = forced.is_none() && self.snp.ack_request_due();
        let mtu = self.config.mtu_packet_size.min(MAX_UDP_PAYLOAD);
        let mut need = need;
        let report_blob = if need.is_empty() {
            None
        } else {
            let immediate = forced == Some(true) || cc_request;
            // Whatever else the packet carries keeps `REPORT_MIN_PLAINTEXT` bytes.
            let room = mtu.saturating_sub(DATA_HEADER_LEN + 2 + TAG_LEN + REPORT_MIN_PLAINTEXT);
            let built = self.quality_blob(now, need, immediate, room);
            need = built.as_ref().map_or(Need::default(), |(_, n)| *n);
            built.map(|(blob, _)| blob)
        };
        let blob: Option<&[u8]> = match forced {
            _ if report_blob.is_some() => report_blob.as_deref(),
            Some(true) => Some(&BLOB_IMMEDIATE),
            Some(false) => Some(&BLOB_E2E),
            None if cc_request => Some(&BLOB_IMMEDIATE),
            None if tracer => Some(&BLOB_E2E),
            None => None,
        };
        let mut header = DataHeader::new(remote_id, 0);
        header.stats_blob = blob;
        header.encode(out);
        // Absolute offset where the ciphertext starts; `header_bytes` is the header's size.
        let header_len = out.len();
        let header_bytes = header_len - start;
        let cipher = self.keys.as_mut()?.send(now)?;
        let tag = cipher.tag_len();
        let reserve = MAX_UDP_PAYLOAD - MAX_ENCRYPTED_PAYLOAD_SEND;
        let max_plaintext = (mtu - reserve - tag).min(mtu - header_bytes - tag);
        let built = self.snp.build_packet(
            now,
            out,
            max_plaintext,
            header_bytes + tag,
            forced.is_some() || need.is_due(),
        )?;
        DataHeader::set_packet_number(&mut out[start..], built.packet_number as u16);
        out.reserve(tag);
        if cipher
            .seal_in_place(built.packet_number, out, header_len)
            .is_err()
        {
            return None;
        }
        if !need.is_empty() {
            self.quality_sent(need, built.packet_number);
        }
        let ping = self.snp.ping().smoothed();
        if cc_request {
            self.snp.on_ack_requested();
        }
        if blob.is_some() {
            self.timers.force_ack_request = None;
            self.timers.last_ping_request = now;
            self.timers.expect_reply(now, ping, forced != Some(true));
        } else if built.reliable {
            self.timers.expect_reply(now, ping, false);
        }
        Some(out.len() - start)
    }
}
