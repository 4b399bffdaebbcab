//! Property tests: arbitrary input never panics the decoder, encoder output (exact and
//! GNS-style) decodes back to what was encoded, and receiver acks are truthful.
#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test]: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::super::*;
use super::{decode_all, refs};

/// One step of a random packet, with its encoding choice.
#[derive(Debug, Clone)]
enum Op {
    StopWaiting {
        value: u64,
        width: u8,
    },
    Ack {
        blocks: Vec<(u64, u64)>,
        latest_32bit: bool,
        explicit: bool,
        delay: u16,
    },
    Lane(u8),
    Unrel {
        enc: u8,
        delta: u64,
        offset: u64,
        offset_present: bool,
        eom: bool,
        len: usize,
    },
    Rel {
        enc: u8,
        delta: u64,
        len: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<u64>(), prop::sample::select(vec![1u8, 2, 3, 8])).prop_map(|(value, w)| {
            let value = if w == 8 {
                value
            } else {
                value & ((1 << (8 * u32::from(w))) - 1)
            };
            Op::StopWaiting {
                value: value % (1 << 62),
                width: w,
            }
        }),
        (
            prop::collection::vec((0u64..2000, 0u64..2000), 0..12),
            any::<bool>(),
            any::<bool>(),
            any::<u16>()
        )
            .prop_map(|(blocks, latest_32bit, explicit, delay)| Op::Ack {
                blocks,
                latest_32bit,
                explicit,
                delay
            }),
        any::<u8>().prop_map(Op::Lane),
        (
            0u8..4,
            0u64..300,
            0u64..100_000,
            any::<bool>(),
            any::<bool>(),
            0usize..40
        )
            .prop_map(|(enc, delta, offset, offset_present, eom, len)| Op::Unrel {
                enc,
                delta,
                offset,
                offset_present,
                eom,
                len
            }),
        (0u8..7, 0u64..70_000, 0usize..40).prop_map(|(enc, delta, len)| Op::Rel {
            enc,
            delta,
            len
        }),
    ]
}

const MSG_ENCS: [MsgNumEncoding; 4] = [
    MsgNumEncoding::AbsoluteU16,
    MsgNumEncoding::AbsoluteU32,
    MsgNumEncoding::DeltaVarint,
    MsgNumEncoding::ImpliedPlusOne,
];
const POS_ENCS: [StreamPosEncoding; 7] = [
    StreamPosEncoding::Absolute24,
    StreamPosEncoding::Absolute32,
    StreamPosEncoding::Absolute48,
    StreamPosEncoding::Contiguous,
    StreamPosEncoding::DeltaU8,
    StreamPosEncoding::DeltaU16,
    StreamPosEncoding::DeltaU32,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..200), pn: u64, next: u64, m: u64, s: u64) {
        let r = FixedRefs { next_packet_number: next, message_number: m, stream_pos: s };
        for f in FrameDecoder::new(&buf, pn, &r).flatten() {
            if let Frame::Ack(a) = f {
                prop_assert!(a.blocks().count() == usize::from(a.block_count));
            }
        }
        let _ = decode_reliable_header(&buf);
    }

    /// Random frames with random (possibly illegal) encodings: whatever the encoder accepts
    /// decodes back to exactly the same frames.
    #[test]
    fn packet_round_trip_exact(ops in prop::collection::vec(op(), 0..24), last_to_end: bool) {
        let data = [0xabu8; 64];
        let pn = 1u64 << 62;
        let latest = 1u64 << 40;
        let r = FixedRefs { next_packet_number: latest + 1, message_number: 1 << 35, stream_pos: 1 << 45 };
        let mut out = Vec::new();
        let mut enc = PacketEncoder::new(&mut out);
        // Shadow context, independent of the codec's: (current msg, previous stream end).
        let (mut cur, mut prev_end): (Option<u64>, Option<u64>) = (None, None);
        let mut lane = 0u8;
        let mut expect: Vec<Op> = Vec::new();
        let n = ops.len();
        for (i, o) in ops.into_iter().enumerate() {
            let to_end = last_to_end && i + 1 == n;
            let ok = match &o {
                Op::StopWaiting { value, width } => {
                    let sw = StopWaiting { value: *value, width_bytes: *width, min_packet_to_ack: pn - value - 1 };
                    enc.frame(&Frame::StopWaiting(sw)).is_ok()
                }
                Op::Ack { blocks, latest_32bit, explicit, delay } => {
                    let counts: Vec<_> = blocks.iter().map(|&(ack, nack)| AckBlockCounts { ack, nack }).collect();
                    enc.ack_exact(latest, *latest_32bit, *delay, &counts, *explicit).is_ok()
                }
                Op::Lane(l) => {
                    enc.select_lane(*l).unwrap();
                    lane = *l;
                    cur = None;
                    prev_end = None;
                    true
                }
                Op::Unrel { enc: e, delta, offset, offset_present, eom, len } => {
                    let e = MSG_ENCS[usize::from(*e)];
                    let msg_num = match (e, cur) {
                        (MsgNumEncoding::AbsoluteU16 | MsgNumEncoding::AbsoluteU32, _) => r.message_number + delta,
                        (MsgNumEncoding::ImpliedPlusOne, Some(c)) => c + 1,
                        (_, c) => c.unwrap_or(0) + delta,
                    };
                    let seg = UnreliableSegment { lane, msg_num, msg_num_encoding: e, offset: *offset, offset_present: *offset_present || *offset > 0, end_of_message: *eom, size_to_end: to_end, data: &data[..*len] };
                    let ok = enc.frame(&Frame::Unreliable(seg)).is_ok();
                    if ok { cur = Some(msg_num); }
                    ok
                }
                Op::Rel { enc: e, delta, len } => {
                    let e = POS_ENCS[usize::from(*e)];
                    let pos = match e {
                        StreamPosEncoding::Absolute24 | StreamPosEncoding::Absolute32 | StreamPosEncoding::Absolute48 => r.stream_pos + delta,
                        StreamPosEncoding::Contiguous => prev_end.unwrap_or(1),
                        StreamPosEncoding::DeltaU8 => prev_end.unwrap_or(1) + delta % 0x100,
                        _ => prev_end.unwrap_or(1) + delta,
                    };
                    let seg = ReliableSegment { lane, stream_pos: pos, stream_pos_encoding: e, size_to_end: to_end, data: &data[..*len] };
                    let ok = enc.frame(&Frame::Reliable(seg)).is_ok();
                    if ok {
                        prev_end = Some(pos + *len as u64);
                        cur = cur.map(|c| c + 1);
                    }
                    ok
                }
            };
            if ok { expect.push(o); }
        }
        let frames = decode_all(&out, pn, &r).unwrap();
        prop_assert_eq!(frames.len(), expect.len());
        let mut again = Vec::new();
        let mut enc2 = PacketEncoder::new(&mut again);
        for f in &frames { enc2.frame(f).unwrap(); }
        prop_assert_eq!(&again, &out);
        for (f, o) in frames.iter().zip(&expect) {
            match (f, o) {
                (Frame::StopWaiting(sw), Op::StopWaiting { value, width }) => {
                    prop_assert_eq!((sw.value, sw.width_bytes), (*value, *width));
                }
                (Frame::Ack(a), Op::Ack { blocks, latest_32bit, explicit, delay }) => {
                    prop_assert_eq!(a.latest, latest);
                    prop_assert_eq!((a.latest_32bit, a.delay), (*latest_32bit, *delay));
                    prop_assert_eq!(a.explicit_count, *explicit || blocks.len() > 6);
                    let got: Vec<_> = a.blocks().map(|b| (b.counts.ack, b.counts.nack)).collect();
                    prop_assert_eq!(&got, blocks);
                    let sum: u64 = blocks.iter().map(|(x, y)| x + y).sum();
                    prop_assert_eq!(a.implicitly_acked_below, latest + 1 - sum);
                }
                (Frame::SelectLane { lane }, Op::Lane(l)) => prop_assert_eq!(lane, l),
                (Frame::Unreliable(s), Op::Unrel { enc: e, offset, eom, len, .. }) => {
                    prop_assert_eq!(s.msg_num_encoding, MSG_ENCS[usize::from(*e)]);
                    prop_assert_eq!((s.offset, s.end_of_message, s.data.len()), (*offset, *eom, *len));
                }
                (Frame::Reliable(s), Op::Rel { enc: e, len, .. }) => {
                    prop_assert_eq!(s.stream_pos_encoding, POS_ENCS[usize::from(*e)]);
                    prop_assert_eq!(s.data.len(), *len);
                }
                _ => prop_assert!(false, "frame kind mismatch {:?} vs {:?}", f, o),
            }
        }
    }

    /// GNS-style encoding of semantic values (lanes, increasing numbers) decodes to them.
    #[test]
    fn packet_round_trip_gns_style(segs in prop::collection::vec((0u8..4, any::<bool>(), 1u64..4, 0u64..600, 0usize..30), 0..20)) {
        let data = [0x5au8; 32];
        let r = FixedRefs { next_packet_number: 10, message_number: 1000, stream_pos: 5000 };
        let mut out = Vec::new();
        let mut enc = PacketEncoder::new(&mut out);
        let mut msg = [1000u64; 4];
        let mut pos = [5000u64; 4];
        let mut expect = Vec::new();
        let n = segs.len();
        for (i, (lane, reliable, dm, dp, len)) in segs.into_iter().enumerate() {
            let l = usize::from(lane);
            let last = i + 1 == n;
            if reliable {
                pos[l] += dp;
                enc.reliable(lane, pos[l], &data[..len], last).unwrap();
                expect.push((lane, true, pos[l], len));
                pos[l] += len as u64;
                // A reliable message consumed a number on this lane too.
                msg[l] += 1;
            } else {
                msg[l] += dm;
                enc.unreliable(lane, msg[l], dp, dm == 1, &data[..len], last).unwrap();
                expect.push((lane, false, msg[l], len));
            }
        }
        let got: Vec<_> = decode_all(&out, 10, &r).unwrap().into_iter().filter_map(|f| match f {
            Frame::Unreliable(s) => Some((s.lane, false, s.msg_num, s.data.len())),
            Frame::Reliable(s) => Some((s.lane, true, s.stream_pos, s.data.len())),
            _ => None,
        }).collect();
        prop_assert_eq!(got, expect);
    }

    /// The receiver's ack describes exactly its received set within the budget.
    #[test]
    fn ack_for_gaps_is_truthful(runs in prop::collection::vec((1u64..40, 1u64..40), 0..300), tail in 1u64..40, budget in 5usize..400, base in 1u64..100_000) {
        // Received: runs of (received, missing) from `base`, then `tail` received.
        let mut received = BTreeSet::new();
        let mut gaps = Vec::new();
        let mut p = base;
        for (got, miss) in &runs {
            received.extend(p..p + got);
            p += got;
            gaps.push(p..p + miss);
            p += miss;
        }
        received.extend(p..p + tail);
        let latest = p + tail - 1;
        let mut out = Vec::new();
        let written = PacketEncoder::new(&mut out).ack_for_gaps(latest, &gaps, 3, budget).unwrap();
        prop_assert!(out.len() <= budget);
        prop_assert!(received.contains(&written));
        let r = FixedRefs { next_packet_number: latest + 1, ..refs() };
        let frames = decode_all(&out, 1, &r).unwrap();
        let Frame::Ack(a) = &frames[0] else { panic!() };
        prop_assert_eq!(a.latest, written);
        // Sender's min-waiting is `base`: every packet in [base, latest] must match.
        let mut acked = BTreeSet::new();
        let mut nacked = BTreeSet::new();
        for b in a.blocks() {
            acked.extend(b.acked);
            nacked.extend(b.nacked);
        }
        acked.extend(base..a.implicitly_acked_below.max(base));
        for q in base..=written {
            prop_assert_eq!(acked.contains(&q), received.contains(&q), "packet {}", q);
            prop_assert_eq!(nacked.contains(&q), !received.contains(&q), "packet {}", q);
        }
        let acks = runs.iter().skip(1).map(|r| r.0).chain([tail]);
        let full = 5 + usize::from(gaps.len() > 6) + runs.iter().zip(acks).map(|((_, m), a)| 1 + usize::from(a > 7) + usize::from(*m > 7)).sum::<usize>();
        if budget >= full && gaps.len() <= ACK_MAX_BLOCKS {
            prop_assert_eq!(written, latest);
        }
    }
}
