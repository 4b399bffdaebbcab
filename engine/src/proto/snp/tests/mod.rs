//! Tests of the SNP layer: unit tests of single-instance behaviour, scenario tests of two
//! instances talking through the seeded network simulator, and a decode fuzz property.

mod coalesce;
mod harness;
mod idle;
mod join;
mod scenarios;
mod unit;

/// Helpers the single-instance test files share.
mod support {
    use crate::proto::snp::{BuiltPacket, Snp, SnpConfig};
    use crate::time::Timestamp;
    use crate::wire::frame::{FixedRefs, Frame, FrameDecoder};
    use crate::wire::packet::MAX_PLAINTEXT_SEND;

    /// The tests' start time.
    pub(super) const T0: Timestamp = Timestamp::from_micros(1_000_000);

    /// A connected instance with `config`.
    pub(super) fn connected_with(config: SnpConfig) -> Snp {
        let mut s = Snp::new(T0, config);
        s.set_connected(T0, true);
        s
    }

    /// The next packet (plaintext), if the instance wants to (or must, with `force`) send.
    pub(super) fn build(
        s: &mut Snp,
        now: Timestamp,
        force: bool,
    ) -> Option<(BuiltPacket, Vec<u8>)> {
        let mut out = Vec::new();
        let p = s.build_packet(now, &mut out, MAX_PLAINTEXT_SEND, 23, force)?;
        Some((p, out))
    }

    /// One expiry of the retransmission timer: when, and the packets it let out.
    pub(super) type Expiry = (Timestamp, Vec<(BuiltPacket, Vec<u8>)>);

    /// With no ack ever coming back, drives the retransmission timer `expiries` times from
    /// `now` and returns each expiry's time and the packets it let out. Each expiry resends
    /// what was unacked for a whole timeout, and the next comes a doubled timeout later.
    pub(super) fn resend_by_timeouts(
        s: &mut Snp,
        mut now: Timestamp,
        expiries: usize,
    ) -> Vec<Expiry> {
        let mut out = Vec::new();
        for _ in 0..expiries {
            let Some(at) = s.next_timeout(now) else {
                break;
            };
            now = now.max(at);
            s.handle_timeout(now);
            let mut packets = Vec::new();
            while let Some(p) = build(s, now, false) {
                packets.push(p);
            }
            out.push((now, packets));
        }
        out
    }

    /// (lane, stream range) of every reliable segment in a packet.
    pub(super) fn reliable_ranges(plaintext: &[u8], pkt: u64) -> Vec<(u8, std::ops::Range<u64>)> {
        FrameDecoder::new(plaintext, pkt, &FixedRefs::default())
            .filter_map(|f| match f.expect("own packets decode") {
                Frame::Reliable(r) => Some((r.lane, r.stream_pos..r.stream_end())),
                _ => None,
            })
            .collect()
    }
}
