//! Single-instance behaviour: defaults, numbering, framing, Nagle, send-buffer limits,
//! segmentation and exact retransmission, receiver policies, and decode robustness.

use std::time::Duration;

use proptest::prelude::*;

use super::support::{T0, build, connected_with, reliable_ranges, resend_by_timeouts};
use crate::proto::snp::{AckRequest, SendError, Snp, SnpConfig, SnpError, send_flags};
use crate::wire::frame::{FixedRefs, Frame, FrameDecoder, PacketEncoder, write_reliable_header};
use crate::wire::packet::{MAX_PLAINTEXT_SEND, MAX_RELIABLE_SEGMENT};

fn connected() -> Snp {
    connected_with(SnpConfig::default())
}

#[test]
fn defaults_and_flags_match_gns() {
    let c = SnpConfig::default();
    assert_eq!(c.nagle, Duration::from_micros(5000));
    assert_eq!(
        (c.send_buffer_size, c.recv_buffer_size),
        (524_288, 1_048_576)
    );
    assert_eq!((c.send_rate_min, c.send_rate_max), (262_144, 262_144));
    assert_eq!(
        (c.recv_buffer_messages, c.recv_max_message_size),
        (1000, 524_288)
    );
    assert_eq!(
        (c.recv_max_segments_per_packet, c.mtu_packet_size),
        (1300, 1300)
    );
    assert_eq!(
        [
            send_flags::UNRELIABLE,
            send_flags::NO_NAGLE,
            send_flags::NO_DELAY,
            send_flags::RELIABLE,
            send_flags::USE_CURRENT_THREAD
        ],
        [0, 1, 4, 8, 16]
    );
}

#[test]
fn first_packet_is_number_2_with_stop_waiting_and_ack_only() {
    let mut s = connected();
    assert!(!s.wants_to_send(T0));
    assert!(build(&mut s, T0, false).is_none());
    let (p, bytes) = build(&mut s, T0, true).expect("forced");
    assert_eq!(p.packet_number, 2);
    assert!(!p.reliable);
    // 2-byte stop_waiting + 5-byte block-less ack: GNS's minimum data packet (§4.1).
    assert_eq!(bytes.len(), 7);
    assert_eq!(bytes[2], 0x98);
}

#[test]
fn message_numbers_are_per_lane_and_shared_by_both_kinds() {
    let mut s = connected();
    s.configure_lanes(&[0, 0], &[1, 1]).expect("lanes");
    assert_eq!(s.send_message(T0, 0, 0, vec![1]), Ok(1));
    assert_eq!(s.send_message(T0, 0, send_flags::RELIABLE, vec![2]), Ok(2));
    assert_eq!(s.send_message(T0, 1, send_flags::RELIABLE, vec![3]), Ok(1));
    assert_eq!(
        s.send_message(T0, 2, 0, vec![]),
        Err(SendError::InvalidParam)
    );
    assert_eq!(
        s.send_message(T0, 0, 0, vec![0; 512 * 1024 + 1]),
        Err(SendError::InvalidParam)
    );
}

#[test]
fn reliable_header_delta_counts_from_the_previous_reliable_message() {
    // Spec §4.6 example: unreliable #1, then a 17-byte reliable #2 → header `51 02`.
    let mut s = connected();
    s.send_message(T0, 0, 0, vec![9; 4]).expect("queued");
    s.send_message(
        T0,
        0,
        send_flags::RELIABLE | send_flags::NO_NAGLE,
        vec![7; 17],
    )
    .expect("queued");
    let (p, bytes) = build(&mut s, T0, false).expect("no-nagle goes now");
    assert!(p.reliable);
    let rel: Vec<_> = FrameDecoder::new(&bytes, 2, &FixedRefs::default())
        .filter_map(|f| match f.expect("decodes") {
            Frame::Reliable(r) => Some(r.data.to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(rel.len(), 1);
    assert_eq!(&rel[0][..2], &[0x51, 0x02]);
    assert_eq!(rel[0].len(), 19);
}

#[test]
fn nagle_holds_a_small_message_until_it_expires_or_is_flushed() {
    let mut s = connected();
    s.send_message(T0, 0, 0, vec![1; 10]).expect("queued");
    assert!(!s.wants_to_send(T0));
    assert_eq!(s.next_timeout(T0), Some(T0 + Duration::from_millis(5)));
    assert!(!s.wants_to_send(T0 + Duration::from_micros(4999)));
    assert!(s.wants_to_send(T0 + Duration::from_millis(5)));

    let mut s = connected();
    s.send_message(T0, 0, 0, vec![1; 10]).expect("queued");
    s.flush(T0);
    assert!(s.wants_to_send(T0));

    let mut s = connected();
    s.send_message(T0, 0, send_flags::RELIABLE, vec![1; 10])
        .expect("queued");
    s.send_message(T0, 0, send_flags::NO_NAGLE, vec![2; 10])
        .expect("queued");
    assert!(s.wants_to_send(T0), "NoNagle clears earlier timers too");
    let (_, bytes) = build(&mut s, T0, false).expect("sent");
    assert!(bytes.len() > 7 + 20);
}

#[test]
fn send_buffer_limit_returns_limit_exceeded() {
    let mut s = connected();
    s.send_message(T0, 0, send_flags::RELIABLE, vec![0; 512 * 1024])
        .expect("one max-size message fits an empty buffer");
    assert_eq!(
        s.send_message(T0, 0, send_flags::RELIABLE, vec![0; 1]),
        Err(SendError::LimitExceeded)
    );
    assert_eq!(
        s.send_message(T0, 0, 0, vec![0; 1]),
        Err(SendError::LimitExceeded)
    );
}

#[test]
fn no_delay_is_ignored_when_it_cannot_go_at_once() {
    let mut s = Snp::new(T0, SnpConfig::default());
    assert_eq!(
        s.send_message(T0, 0, send_flags::NO_DELAY, vec![1]),
        Err(SendError::Ignored),
        "not connected"
    );
    s.send_message(T0, 0, send_flags::RELIABLE, vec![1])
        .expect("messages queue while connecting");
    s.set_connected(T0, true);
    assert_eq!(
        s.send_message(T0, 0, send_flags::NO_DELAY, vec![1]),
        Err(SendError::Ignored),
        "data queued ahead"
    );
    let mut s = connected();
    assert!(s.send_message(T0, 0, send_flags::NO_DELAY, vec![1]).is_ok());
    assert!(s.wants_to_send(T0));
}

#[test]
fn large_unreliable_messages_are_sent_reliably() {
    let mut s = connected();
    s.send_message(T0, 0, send_flags::NO_NAGLE, vec![5; 16_501])
        .expect("queued");
    let (p, _) = build(&mut s, T0, false).expect("sent");
    assert!(p.reliable);
    let mut s = connected();
    s.send_message(T0, 0, send_flags::NO_NAGLE, vec![5; 16_500])
        .expect("queued");
    let (p, _) = build(&mut s, T0, false).expect("sent");
    assert!(!p.reliable);
}

#[test]
fn reliable_segments_are_bounded_and_retransmitted_with_the_same_ranges() {
    let cfg = SnpConfig {
        send_rate_min: 100_000_000,
        send_rate_max: 100_000_000,
        ..SnpConfig::default()
    };
    let mut s = Snp::new(T0, cfg);
    s.set_connected(T0, true);
    s.send_message(
        T0,
        0,
        send_flags::RELIABLE | send_flags::NO_NAGLE,
        vec![3; 5000],
    )
    .expect("queued");
    let mut first = Vec::new();
    let mut now = T0;
    while let Some((p, bytes)) = build(&mut s, now, false) {
        first.extend(reliable_ranges(&bytes, p.packet_number));
        now = now + Duration::from_micros(100);
    }
    assert!(
        first
            .iter()
            .all(|(_, r)| r.end - r.start <= MAX_RELIABLE_SEGMENT as u64)
    );
    assert_eq!(first.first().map(|(_, r)| r.start), Some(1));
    assert_eq!(first.last().map(|(_, r)| r.end), Some(1 + 5003));
    assert!(s.reliable_pending());
    // No ack: the first expiry (1 s, no ping yet) declares lost what was unacked for a whole
    // timeout (the first packet); the next, a doubled timeout later, the rest (and the first
    // one's retransmission). Every range comes back exactly, none re-cut.
    let rounds = resend_by_timeouts(&mut s, now, 2);
    assert_eq!(rounds.len(), 2);
    assert_eq!(rounds[0].0, T0 + Duration::from_secs(1));
    assert_eq!(rounds[1].0, T0 + Duration::from_secs(3), "backed off");
    let mut again = Vec::new();
    for (_, packets) in &rounds {
        for (p, bytes) in packets {
            assert!(p.packet_number > 5);
            again.extend(reliable_ranges(bytes, p.packet_number));
        }
    }
    let resent = again.len() as u64;
    again.sort_by_key(|(_, r)| r.start);
    again.dedup();
    assert_eq!(again, first);
    assert_eq!(s.counters().retransmitted_segments, resent);
}

#[test]
fn packet_acking_a_packet_never_sent_is_ignored_and_left_unacked() {
    let mut s = connected();
    let mut out = Vec::new();
    let mut enc = PacketEncoder::new(&mut out);
    enc.stop_waiting(2, 0).expect("sw");
    enc.ack(50, 0, &[]).expect("ack");
    enc.unreliable(0, 1, 0, true, b"hi", true).expect("seg");
    let r = s
        .receive_packet(T0, 2, &out, AckRequest::None)
        .expect("not fatal");
    assert!(!r.acked);
    assert_eq!(r.new_messages, 0);
    assert!(s.poll_message().is_none());
}

#[test]
fn reliable_messages_held_in_the_stream_for_queue_room_come_out_as_the_queue_drains() {
    let mut rx = connected_with(SnpConfig {
        recv_buffer_messages: 2,
        ..SnpConfig::default()
    });
    let mut tx = connected_with(SnpConfig {
        send_rate_min: 100_000_000,
        send_rate_max: 100_000_000,
        ..SnpConfig::default()
    });
    for n in 1..=5u8 {
        tx.send_message(
            T0,
            0,
            send_flags::RELIABLE | send_flags::NO_NAGLE,
            vec![n; 10],
        )
        .expect("q");
    }
    let (p, bytes) = build(&mut tx, T0, false).expect("one packet holds all five");
    let r = rx
        .receive_packet(T0, p.packet_number, &bytes, AckRequest::None)
        .expect("decodes");
    // The stream took the segment; the queue holds two, the rest wait in the stream.
    assert_eq!(r.new_messages, 2);
    let got: Vec<u8> = std::iter::from_fn(|| rx.poll_message())
        .map(|m| m.data[0])
        .collect();
    assert_eq!(
        got,
        vec![1, 2, 3, 4, 5],
        "each take lets the next one through"
    );
}

#[test]
fn full_receive_queue_leaves_the_packet_unacked() {
    let mut s = connected_with(SnpConfig {
        recv_buffer_messages: 2,
        ..SnpConfig::default()
    });
    let mut out = Vec::new();
    let mut enc = PacketEncoder::new(&mut out);
    for n in 1..=3 {
        enc.unreliable(0, n, 0, true, b"x", false).expect("seg");
    }
    let r = s.receive_packet(T0, 2, &out, AckRequest::None).expect("ok");
    assert!(!r.acked);
    assert_eq!(r.new_messages, 2);
    assert!(s.next_timeout(T0).is_some(), "a re-ack is scheduled");
    // Once polled, the next packet is ingested and acked; packet 2 stays a gap (NACKed).
    assert!(s.poll_message().is_some());
    assert!(s.poll_message().is_some());
    let mut out = Vec::new();
    PacketEncoder::new(&mut out)
        .unreliable(0, 4, 0, true, b"y", true)
        .expect("seg");
    let r = s.receive_packet(T0, 3, &out, AckRequest::None).expect("ok");
    assert!(r.acked && !r.duplicate);
    let r = s.receive_packet(T0, 3, &out, AckRequest::None).expect("ok");
    assert!(r.duplicate);
}

fn reliable_packet(header_delta: u64, size: u64) -> Vec<u8> {
    let mut stream = Vec::new();
    write_reliable_header(&mut stream, header_delta, size);
    let mut out = Vec::new();
    PacketEncoder::new(&mut out)
        .reliable(0, 1, &stream, true)
        .expect("seg");
    out
}

#[test]
fn insane_reliable_headers_kill_the_connection() {
    let mut s = connected();
    assert_eq!(
        s.receive_packet(T0, 2, &reliable_packet(2_000_000, 1), AckRequest::None),
        Err(SnpError::ReliableHeaderInsane { lane: 0 })
    );
    let mut s = connected();
    assert_eq!(
        s.receive_packet(T0, 2, &reliable_packet(20_000, 1), AckRequest::None),
        Err(SnpError::ReliableHeaderInsane { lane: 0 })
    );
    let mut s = connected();
    assert_eq!(
        s.receive_packet(T0, 2, &reliable_packet(1, 600_000), AckRequest::None),
        Err(SnpError::MessageTooLarge {
            lane: 0,
            size: 600_000
        })
    );
}

#[test]
fn garbage_frame_byte_is_a_decode_error() {
    let mut s = connected();
    assert!(matches!(
        s.receive_packet(T0, 2, &[0xff], AckRequest::None),
        Err(SnpError::Decode(_))
    ));
}

#[test]
fn immediate_ack_request_makes_an_ack_due_now() {
    let mut s = connected();
    let r = s
        .receive_packet(T0, 2, &[], AckRequest::Immediate)
        .expect("ok");
    assert!(r.acked);
    assert!(s.wants_to_send(T0));
}

proptest! {
    #[test]
    fn arbitrary_plaintexts_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..1400),
        pkt in 2u64..100,
    ) {
        let mut s = connected();
        let _ = s.receive_packet(T0, pkt, &bytes, AckRequest::None);
        let _ = s.build_packet(T0, &mut Vec::new(), MAX_PLAINTEXT_SEND, 23, true);
        while s.poll_message().is_some() {}
    }

    #[test]
    fn truncated_valid_packets_never_panic(cut in 0usize..1232, seed in any::<u8>()) {
        let mut tx = connected();
        tx.configure_lanes(&[0, 0, 0], &[1, 2, 3]).expect("lanes");
        for lane in 0..3u8 {
            tx.send_message(T0, lane, send_flags::RELIABLE, vec![seed; 300]).expect("q");
            tx.send_message(T0, lane, send_flags::NO_NAGLE, vec![seed; 200]).expect("q");
        }
        let (p, bytes) = build(&mut tx, T0, false).expect("sent");
        let cut = cut.min(bytes.len());
        let mut rx = connected();
        let full = rx.receive_packet(T0, p.packet_number, &bytes, AckRequest::None);
        prop_assert!(full.is_ok());
        let mut rx = connected();
        let _ = rx.receive_packet(T0, p.packet_number, &bytes[..cut], AckRequest::None);
    }
}

#[test]
fn a_segment_that_does_not_fit_is_started_only_with_16_bytes_of_room() {
    let mut s = connected();
    s.send_message(
        T0,
        0,
        send_flags::RELIABLE | send_flags::NO_NAGLE,
        vec![1; 100],
    )
    .expect("queued");
    // 7 bytes of stop_waiting + ack, 8 of segment header: 10 bytes of room is a sliver.
    let mut out = Vec::new();
    let p = s
        .build_packet(T0, &mut out, 7 + 8 + 10, 23, false)
        .expect("ack-only");
    assert!(!p.reliable && out.len() == 7);
    let mut out = Vec::new();
    let p = s
        .build_packet(T0, &mut out, 7 + 8 + 16, 23, false)
        .expect("sent");
    assert!(p.reliable);
    assert_eq!(reliable_ranges(&out, p.packet_number), vec![(0, 1..17)]);
}

#[test]
fn segment_size_follows_the_mtu() {
    let cfg = SnpConfig {
        mtu_packet_size: 600,
        send_rate_min: 100_000_000,
        send_rate_max: 100_000_000,
        ..SnpConfig::default()
    };
    let mut s = Snp::new(T0, cfg);
    s.set_connected(T0, true);
    s.send_message(
        T0,
        0,
        send_flags::RELIABLE | send_flags::NO_NAGLE,
        vec![1; 3000],
    )
    .expect("queued");
    let mut n = 0;
    let mut now = T0;
    while let Some((p, bytes)) = build(&mut s, now, false) {
        for (_, r) in reliable_ranges(&bytes, p.packet_number) {
            assert!(r.end - r.start <= 437);
            n += 1;
        }
        now = now + Duration::from_micros(100);
    }
    assert!(n >= 7, "{n} segments");
}

#[test]
fn status_reports_pending_and_unacked_bytes() {
    let mut s = connected();
    s.configure_lanes(&[0, 0], &[1, 1]).expect("lanes");
    s.send_message(T0, 0, send_flags::RELIABLE, vec![1; 100])
        .expect("q");
    s.send_message(T0, 1, send_flags::UNRELIABLE, vec![1; 50])
        .expect("q");
    let st = s.status(T0);
    assert_eq!(st.pending_reliable, 102);
    assert_eq!(st.pending_unreliable, 50);
    assert_eq!(st.lanes.len(), 2);
    assert_eq!(st.lanes[0].pending_reliable, 102);
    assert_eq!(st.lanes[1].pending_unreliable, 50);
    assert_eq!(st.ping_ms, -1);
    assert_eq!(st.send_rate_bytes_per_sec, 262_144);
    s.flush(T0);
    build(&mut s, T0, false).expect("sent");
    let st = s.status(T0);
    assert_eq!((st.pending_reliable, st.pending_unreliable), (0, 0));
    assert_eq!(st.sent_unacked_reliable, 102);
    assert!(s.reliable_pending());
    let mut idle = Snp::new(T0, SnpConfig::default());
    assert_eq!(idle.status(T0).queue_time_usec, i64::MAX);
}

#[test]
fn small_mtu_reliable_segments_never_push_the_unreliable_number_backwards() {
    // With 37-byte segments one reliable message makes many segments in a packet, each
    // bumping the in-packet unreliable number (§4.4); the next unreliable message must then
    // start a new packet instead of being encoded with a negative delta.
    let cfg = SnpConfig {
        mtu_packet_size: 200,
        send_rate_min: 100_000_000,
        send_rate_max: 100_000_000,
        ..SnpConfig::default()
    };
    let mut tx = Snp::new(T0, cfg);
    tx.set_connected(T0, true);
    let mut rx = connected();
    tx.send_message(T0, 0, send_flags::NO_NAGLE, vec![1; 5])
        .expect("q");
    tx.send_message(T0, 0, send_flags::RELIABLE, vec![2; 300])
        .expect("q");
    tx.send_message(T0, 0, send_flags::NO_NAGLE, vec![3; 5])
        .expect("q");
    let mut now = T0;
    while let Some((p, bytes)) = build(&mut tx, now, false) {
        rx.receive_packet(now, p.packet_number, &bytes, AckRequest::None)
            .expect("decodes");
        now = now + Duration::from_micros(100);
    }
    let got: Vec<(u64, bool, usize)> = std::iter::from_fn(|| rx.poll_message())
        .map(|m| (m.msg_num, m.reliable, m.data.len()))
        .collect();
    assert_eq!(got, vec![(1, false, 5), (2, true, 300), (3, false, 5)]);
}

#[test]
fn unreliable_messages_older_than_the_max_age_are_dropped_unsent_and_counted() {
    // 1 KiB/s: the first message overdraws the bucket, the rest wait.
    let cfg = SnpConfig {
        send_rate_min: 1024,
        send_rate_max: 1024,
        unreliable_max_age: Some(Duration::from_millis(50)),
        ..SnpConfig::default()
    };
    let mut s = connected_with(cfg);
    for i in 0..5u8 {
        s.send_message(T0, 0, send_flags::NO_NAGLE, vec![i; 1000])
            .expect("queued");
    }
    // A reliable message queued later must not be affected.
    let later = T0 + Duration::from_millis(40);
    s.send_message(
        later,
        0,
        send_flags::RELIABLE | send_flags::NO_NAGLE,
        vec![9; 10],
    )
    .expect("queued");
    let (p, bytes) = build(&mut s, T0, false).expect("first goes at once");
    let unreliable = |bytes: &[u8], pkt| -> Vec<u64> {
        FrameDecoder::new(bytes, pkt, &FixedRefs::default())
            .filter_map(|f| match f {
                Ok(Frame::Unreliable(u)) => Some(u.msg_num),
                _ => None,
            })
            .collect()
    };
    // Message 1 whole and the start of message 2 fill the packet.
    let started = unreliable(&bytes, p.packet_number);
    assert_eq!(started, vec![1, 2]);
    assert_eq!(s.counters().unreliable_expired, 0);
    // The bucket refills after ~1 s; by then the three unstarted ones are too old. The one
    // already on its way is finished (its first fragment is out).
    let mut now = T0 + Duration::from_secs(2);
    let mut rest = Vec::new();
    let mut reliable = 0;
    while let Some((p, bytes)) = build(&mut s, now, false) {
        rest.extend(unreliable(&bytes, p.packet_number));
        reliable += reliable_ranges(&bytes, p.packet_number).len();
        now = now + Duration::from_secs(2);
    }
    assert_eq!(rest, vec![2]);
    assert_eq!(reliable, 1);
    assert_eq!(s.counters().unreliable_expired, 3);
    assert_eq!(s.status(now).pending_unreliable, 0);
}

#[test]
fn without_a_max_age_queued_unreliable_messages_wait_for_the_rate() {
    let cfg = SnpConfig {
        send_rate_min: 1024,
        send_rate_max: 1024,
        ..SnpConfig::default()
    };
    let mut s = connected_with(cfg);
    for i in 0..3u8 {
        s.send_message(T0, 0, send_flags::NO_NAGLE, vec![i; 1000])
            .expect("queued");
    }
    build(&mut s, T0, false).expect("first goes at once");
    build(&mut s, T0 + Duration::from_secs(2), false).expect("second after the refill");
    assert_eq!(s.counters().unreliable_expired, 0);
    assert!(s.status(T0 + Duration::from_secs(2)).pending_unreliable > 0);
}
