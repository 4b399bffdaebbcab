//! Reliable coalescing (`SnpConfig::coalesce_reliable`): consecutive small reliable messages
//! of a lane share one segment, and a lost coalesced segment is resent as exactly that range.

use std::time::Duration;

use super::support::{T0, build, connected_with, reliable_ranges, resend_by_timeouts};
use crate::proto::snp::{AckRequest, Snp, SnpConfig, send_flags};
use crate::wire::frame::{FixedRefs, Frame, FrameDecoder};

/// A reliable 32-byte message is a 2-byte header + payload in the stream.
const FRAMED: u64 = 34;

fn snp(coalesce: bool) -> Snp {
    connected_with(SnpConfig {
        coalesce_reliable: coalesce,
        ..SnpConfig::default()
    })
}

fn payload(i: u64) -> Vec<u8> {
    let mut v = vec![i as u8; 32];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v
}

/// Queues messages `from..to` (32 bytes each), the last one NoNagle so all may go.
fn queue(s: &mut Snp, from: u64, to: u64) {
    for i in from..to {
        let flags = send_flags::RELIABLE | if i + 1 == to { send_flags::NO_NAGLE } else { 0 };
        s.send_message(T0, 0, flags, payload(i)).expect("queued");
    }
}

#[test]
fn thirty_small_reliable_messages_make_one_segment() {
    let mut s = snp(true);
    queue(&mut s, 0, 30);
    let (p, bytes) = build(&mut s, T0, false).expect("sent");
    assert_eq!(
        reliable_ranges(&bytes, p.packet_number),
        vec![(0, 1..1 + 30 * FRAMED)]
    );
    assert!(build(&mut s, T0, false).is_none_or(|(p, _)| !p.reliable));
}

#[test]
fn without_coalescing_each_message_is_its_own_segment_as_in_gns() {
    let mut s = snp(false);
    queue(&mut s, 0, 30);
    let (p, bytes) = build(&mut s, T0, false).expect("sent");
    let want: Vec<_> = (0..30)
        .map(|i| (0u8, 1 + i * FRAMED..1 + (i + 1) * FRAMED))
        .collect();
    assert_eq!(reliable_ranges(&bytes, p.packet_number), want);
}

#[test]
fn a_lost_coalesced_segment_is_resent_exactly_and_delivered_once_in_order() {
    let mut tx = snp(true);
    let mut rx = snp(true);
    queue(&mut tx, 0, 30);
    let (p1, lost_bytes) = build(&mut tx, T0, false).expect("first packet");
    let first = reliable_ranges(&lost_bytes, p1.packet_number);
    assert_eq!(first, vec![(0, 1..1 + 30 * FRAMED)]);
    // Thirty more arrive (after a stream gap: nothing can be delivered yet).
    let now = T0 + Duration::from_millis(1);
    queue(&mut tx, 30, 60);
    let (p2, b2) = build(&mut tx, now, false).expect("second packet");
    let second = reliable_ranges(&b2, p2.packet_number);
    assert_eq!(second, vec![(0, 1 + 30 * FRAMED..1 + 60 * FRAMED)]);
    rx.receive_packet(now, p2.packet_number, &b2, AckRequest::None)
        .expect("decodes");
    assert!(rx.poll_message().is_none(), "stream gap: nothing yet");
    // Unacked, both time out (the first at the first expiry, both at the second, a doubled
    // timeout later): each comes back with its exact range (across 30 message buffers each),
    // the one that arrived as a duplicate range.
    let mut again = Vec::new();
    for (at, packets) in resend_by_timeouts(&mut tx, now, 2) {
        for (p, bytes) in packets {
            again.extend(reliable_ranges(&bytes, p.packet_number));
            // Delivered twice: the duplicate must not produce messages again.
            for _ in 0..2 {
                rx.receive_packet(at, p.packet_number, &bytes, AckRequest::None)
                    .expect("decodes");
            }
        }
    }
    assert_eq!(again, [first.clone(), first, second].concat());
    assert_eq!(tx.counters().retransmitted_segments, 3);
    let got: Vec<(u64, Vec<u8>)> = std::iter::from_fn(|| rx.poll_message())
        .map(|m| (m.msg_num, m.data))
        .collect();
    let want: Vec<(u64, Vec<u8>)> = (0..60).map(|i| (i + 1, payload(i))).collect();
    assert_eq!(got, want);
}

/// After a gap, an ack first stops before the gap (GNS tolerates reordering: a gap is only
/// NACKed once it is old enough), then, once the gap is reportable, names the newest packet
/// with the gap as a NACK block. (A draft of the retransmit test above took the first
/// behaviour for a bug; this pins both down.)
#[test]
fn ack_after_a_gap_names_the_newest_packet_once_the_gap_is_reportable() {
    let mut tx = snp(true);
    let mut rx = snp(true);
    let mut sent = Vec::new();
    for i in 0..3u64 {
        queue(&mut tx, i, i + 1);
        let (p, out) = build(&mut tx, T0, false).expect("a packet");
        sent.push((p.packet_number, out));
    }
    // Deliver the first and the third: the second is lost.
    for k in [0usize, 2] {
        let (num, ref data) = sent[k];
        rx.receive_packet(T0, num, data, AckRequest::Immediate)
            .expect("valid");
    }
    let ack_at = |rx: &mut Snp, after: Duration| {
        let (_, out) = build(rx, T0 + after, true).expect("forced ack");
        let acks: Vec<_> = FrameDecoder::new(&out, 2, &FixedRefs::default())
            .filter_map(|f| match f.expect("decodes") {
                Frame::Ack(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(acks.len(), 1, "one ack frame");
        (u64::from(acks[0].latest_wire), acks[0].block_count)
    };
    assert_eq!(
        ack_at(&mut rx, Duration::from_millis(1)),
        (sent[0].0 & 0xffff, 0),
        "a fresh gap is not NACKed yet"
    );
    let (latest, blocks) = ack_at(&mut rx, Duration::from_millis(200));
    assert_eq!(latest, sent[2].0 & 0xffff, "the newest packet received");
    assert!(blocks >= 1, "the lost packet is NACKed");
}
