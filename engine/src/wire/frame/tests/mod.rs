//! Unit tests for the frame codecs: known encodings and every error variant; property tests
//! (round trips, totality, truthful acks) are in `props`.
#![allow(
    clippy::unwrap_used,
    clippy::single_range_in_vec_init,
    reason = "a failed unwrap is a failed test; ack ranges are lists of ranges"
)]

use super::*;

pub(super) fn refs() -> FixedRefs {
    FixedRefs {
        next_packet_number: 100,
        message_number: 10,
        stream_pos: 1000,
    }
}

pub(super) fn decode_all<'a>(
    buf: &'a [u8],
    pn: u64,
    r: &FixedRefs,
) -> Result<Vec<Frame<'a>>, FrameError> {
    FrameDecoder::new(buf, pn, r).collect()
}

fn decode_err(buf: &[u8]) -> FrameError {
    decode_all(buf, 100, &refs()).unwrap_err()
}

#[test]
fn type_byte_dispatch() {
    for b in 0..=255u8 {
        let reserved = matches!(b, 0x60..=0x7f | 0x84..=0x87 | 0xa0..=0xff);
        assert_eq!(FrameType::classify(b).is_err(), reserved, "{b:#x}");
        if reserved {
            assert_eq!(decode_err(&[b]), FrameError::ReservedFrameType(b));
        }
    }
    assert_eq!(FrameType::classify(0x5f), Ok(FrameType::Reliable));
    assert_eq!(FrameType::classify(0x83), Ok(FrameType::StopWaiting));
    assert_eq!(FrameType::classify(0x8f), Ok(FrameType::SelectLane));
    assert_eq!(FrameType::classify(0x9f), Ok(FrameType::Ack));
}

#[test]
fn stop_waiting_widths_and_errors() {
    let cases: [(&[u8], u64, u8); 4] = [
        (&[0x80, 0x05], 5, 1),
        (&[0x81, 0x34, 0x12], 0x1234, 2),
        (&[0x82, 0x56, 0x34, 0x12], 0x12_3456, 3),
        (&[0x83, 1, 0, 0, 0, 0, 0, 0, 0], 1, 8),
    ];
    for (bytes, value, width) in cases {
        let f = decode_all(bytes, 1 << 30, &refs()).unwrap();
        let Frame::StopWaiting(sw) = f[0] else {
            panic!()
        };
        assert_eq!(
            (sw.value, sw.width_bytes, sw.min_packet_to_ack),
            (value, width, (1 << 30) - value - 1)
        );
        let mut out = Vec::new();
        PacketEncoder::new(&mut out).frame(&f[0]).unwrap();
        assert_eq!(out, bytes);
    }
    // X = N - 1 gives minimum 0 (GNS's first packet: N = 2, X = 1); X = N reaches below 0.
    assert!(decode_all(&[0x80, 1], 2, &refs()).is_ok());
    assert_eq!(
        decode_all(&[0x80, 2], 2, &refs()),
        Err(FrameError::BadStopWaiting)
    );
    assert_eq!(decode_err(&[0x81, 1]), FrameError::Truncated);
    // Encoder: smallest width.
    let mut out = Vec::new();
    let mut enc = PacketEncoder::new(&mut out);
    assert_eq!(enc.stop_waiting(0x1_0002, 1).unwrap().width_bytes, 3);
    assert_eq!(enc.stop_waiting(5, 5), Err(EncodeError::StopWaiting));
    assert_eq!(out, [0x82, 0x00, 0x00, 0x01]);
}

#[test]
fn ack_spec_example_and_forms() {
    // §4.9: latest 40, blocks (2,1) (7,1) (2,1) (3,2).
    let bytes = [0x9c, 40, 0, 0x10, 0x00, 0x21, 0x71, 0x21, 0x32];
    let r = FixedRefs {
        next_packet_number: 45,
        ..refs()
    };
    let f = decode_all(&bytes, 100, &r).unwrap();
    let Frame::Ack(a) = &f[0] else { panic!() };
    assert_eq!(
        (a.latest, a.delay, a.delay_usec(), a.block_count),
        (40, 16, Some(512), 4)
    );
    let blocks: Vec<_> = a.blocks().map(|b| (b.acked, b.nacked)).collect();
    assert_eq!(
        blocks,
        [
            (39..41, 38..39),
            (31..38, 30..31),
            (28..30, 27..28),
            (24..27, 22..24)
        ]
    );
    assert_eq!(a.implicitly_acked_below, 22);
    let mut out = Vec::new();
    PacketEncoder::new(&mut out).frame(&f[0]).unwrap();
    assert_eq!(out, bytes);

    // 32-bit latest, explicit count, varint extensions (ack 20 = 4 | 2<<3, nack 9 = 1 | 1<<3).
    let bytes = [0x97, 0x00, 0x00, 0x01, 0x00, 0xff, 0xff, 1, 0xc9, 2, 1];
    let r = FixedRefs {
        next_packet_number: 0x1_0005,
        ..refs()
    };
    let f = decode_all(&bytes, 100, &r).unwrap();
    let Frame::Ack(a) = &f[0] else { panic!() };
    assert!(a.latest_32bit && a.explicit_count);
    assert_eq!((a.latest, a.delay_usec()), (0x1_0000, None));
    let b: Vec<_> = a.blocks().collect();
    assert_eq!((b[0].counts.ack, b[0].counts.nack), (20, 9));
    assert_eq!(
        (b[0].acked.clone(), b[0].nacked.clone()),
        (0xffed..0x1_0001, 0xffe4..0xffed)
    );
    let mut out = Vec::new();
    PacketEncoder::new(&mut out).frame(&f[0]).unwrap();
    assert_eq!(out, bytes);

    assert_eq!(ack_delay_from_usec(5056), 158);
    assert_eq!(ack_delay_from_usec(0xfffe << 5), 0xfffe);
    assert_eq!(ack_delay_from_usec(0xffff << 5), ACK_DELAY_NO_TIMING);
}

#[test]
fn ack_errors() {
    // Upper part 100001 (varint a1 8d 06).
    assert_eq!(
        decode_err(&[0x99, 50, 0, 0, 0, 0x80, 0xa1, 0x8d, 0x06]),
        FrameError::AckCountTooLarge
    );
    // 100000 is fine as a count, but 800000 packets below latest 50 underflow.
    assert_eq!(
        decode_err(&[0x99, 50, 0, 0, 0, 0x80, 0xa0, 0x8d, 0x06]),
        FrameError::AckRangeUnderflow
    );
    assert_eq!(
        decode_err(&[0x99, 2, 0, 0, 0, 0x04]),
        FrameError::AckRangeUnderflow
    );
    // A 16-bit latest that expands below zero.
    let r = FixedRefs {
        next_packet_number: 2,
        ..refs()
    };
    assert_eq!(
        decode_all(&[0x98, 0xff, 0xff, 0, 0], 2, &r),
        Err(FrameError::AckRangeUnderflow)
    );
    assert_eq!(decode_err(&[0x9f, 1, 0, 0, 0]), FrameError::Truncated);
    assert_eq!(decode_err(&[0x99, 9, 0, 0, 0, 0x80]), FrameError::Truncated);
    assert_eq!(
        decode_err(&[
            0x99, 9, 0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
        ]),
        FrameError::VarintOverflow
    );
}

#[test]
fn lanes_reset_contexts() {
    let mut out = Vec::new();
    let mut enc = PacketEncoder::new(&mut out);
    enc.unreliable(0, 11, 0, true, b"a", false).unwrap();
    enc.unreliable(0, 12, 0, true, b"b", false).unwrap();
    enc.unreliable(7, 11, 0, true, b"c", false).unwrap();
    enc.unreliable(8, 11, 3, false, b"d", false).unwrap();
    enc.select_lane(0).unwrap();
    enc.unreliable(0, 13, 0, true, b"e", true).unwrap();
    assert_eq!(
        enc.unreliable(0, 14, 0, true, b"f", false),
        Err(EncodeError::PacketClosed)
    );
    let expect: &[u8] = &[
        0x30, 11, 0, 0, 0, 1, b'a', // absolute u32
        0x20, 1, b'b', // implied +1
        0x8e, 0x30, 11, 0, 0, 0, 1, b'c', // lane 7
        0x8f, 8, 0x18, 11, 0, 0, 0, 3, 1, b'd', // lane 8: varint, offset present
        0x8f, 0, 0x37, 13, 0, 0, 0, b'e', // lane 0 again, to end of packet
    ];
    assert_eq!(out, expect);
    let f = decode_all(&out, 100, &refs()).unwrap();
    let lanes: Vec<_> = f
        .iter()
        .filter_map(|f| match f {
            Frame::Unreliable(s) => Some((s.lane, s.msg_num)),
            _ => None,
        })
        .collect();
    assert_eq!(lanes, [(0, 11), (0, 12), (7, 11), (8, 11), (0, 13)]);
    assert_eq!(decode_err(&[0x8f, 0x80, 0x02]), FrameError::LaneOutOfRange);
    assert_eq!(decode_err(&[0x8f]), FrameError::Truncated);
}

#[test]
fn reliable_segments_bump_the_unreliable_number() {
    // §4.4 Rule: unreliable 5, reliable, reliable, then implied +1 is 8.
    let mut out = Vec::new();
    let mut enc = PacketEncoder::new(&mut out);
    enc.unreliable(0, 5, 0, true, b"u", false).unwrap();
    enc.reliable(0, 1000, b"r1", false).unwrap();
    enc.reliable(0, 1002, b"r2", false).unwrap();
    enc.reliable(0, 1010, b"r3", false).unwrap();
    enc.reliable(0, 1013 + 0x100, b"r4", false).unwrap();
    enc.reliable(0, 0x1_0000_0000, b"r5", false).unwrap();
    enc.unreliable(0, 11, 0, true, b"v", false).unwrap();
    enc.unreliable(0, 20, 0, true, b"w", true).unwrap();
    let r = FixedRefs {
        message_number: 4,
        stream_pos: 1000,
        ..refs()
    };
    let f = decode_all(&out, 100, &r).unwrap();
    let got: Vec<(u64, &str)> = f
        .iter()
        .map(|f| match f {
            Frame::Unreliable(s) => (
                s.msg_num,
                match s.msg_num_encoding {
                    MsgNumEncoding::ImpliedPlusOne => "+1",
                    MsgNumEncoding::DeltaVarint => "delta",
                    _ => "abs",
                },
            ),
            Frame::Reliable(s) => (
                s.stream_pos,
                match s.stream_pos_encoding {
                    StreamPosEncoding::Contiguous => "contig",
                    StreamPosEncoding::DeltaU8 => "u8",
                    StreamPosEncoding::DeltaU16 => "u16",
                    StreamPosEncoding::DeltaU32 => "u32",
                    _ => "abs",
                },
            ),
            _ => panic!(),
        })
        .collect();
    let expect: [(u64, &str); 8] = [
        (5, "abs"),
        (1000, "abs"),
        (1002, "contig"),
        (1010, "u8"),
        (1269, "u16"),
        (0x1_0000_0000, "u32"),
        (11, "+1"),
        (20, "delta"),
    ];
    assert_eq!(got, expect);
}

#[test]
fn segment_errors_and_sizes() {
    assert_eq!(decode_err(&[0x05, 1, 0]), FrameError::ReservedSizeCode);
    assert_eq!(decode_err(&[0x46, 1, 0, 0]), FrameError::ReservedSizeCode);
    assert_eq!(
        decode_err(&[0x58, 0, 0, 0, 0, 0, 0, 0]),
        FrameError::ReservedStreamPosEncoding
    );
    let zero = FixedRefs {
        message_number: 0,
        stream_pos: 0,
        ..refs()
    };
    assert_eq!(
        decode_all(&[0x07, 0, 0], 100, &zero),
        Err(FrameError::MessageNumberNotPositive)
    );
    assert_eq!(
        decode_all(&[0x47, 0, 0, 0], 100, &zero),
        Err(FrameError::StreamPositionNotPositive)
    );
    assert_eq!(
        decode_err(&[0x30, 1, 0, 0, 0, 5, b'a']),
        FrameError::Truncated
    );
    assert_eq!(decode_err(&[0x18, 1, 0]), FrameError::Truncated);
    // Explicit size 1279 and the to-end code.
    let data = vec![7u8; 1279];
    let mut out = Vec::new();
    let mut enc = PacketEncoder::new(&mut out);
    enc.reliable(0, 1000, &data, false).unwrap();
    assert_eq!(
        enc.reliable(0, 3000, &[0; 1280], false),
        Err(EncodeError::SizeTooLarge)
    );
    enc.reliable(0, 3000, &[0; 2000], true).unwrap();
    assert_eq!(out[..8], [0x54, 0xe8, 0x03, 0, 0, 0, 0, 0xff]);
    let f = decode_all(&out, 100, &refs()).unwrap();
    let Frame::Reliable(last) = &f[1] else {
        panic!()
    };
    assert!(last.size_to_end && last.data.len() == 2000 && last.stream_pos == 3000);
    // A first position far ahead inside the current 24-bit block stays ahead (GNS wraps
    // forward only), where a symmetric "nearest" would have gone below zero.
    let fresh = FixedRefs {
        stream_pos: 1,
        ..refs()
    };
    let f = decode_all(&[0x47, 0xf0, 0xff, 0xff, b'x'], 100, &fresh).unwrap();
    let Frame::Reliable(far) = &f[0] else {
        panic!()
    };
    assert_eq!(far.stream_pos, 0xff_fff0);
    // A u64 message number cannot be bumped past the top.
    let top = FixedRefs {
        message_number: u64::MAX - 1,
        ..refs()
    };
    let buf = [0x30, 0xff, 0xff, 0xff, 0xff, 0, 0x40, 0xe8, 0x03, 0, 0];
    let got = decode_all(&buf, 100, &top);
    assert_eq!(got, Err(FrameError::MessageNumberNotPositive));
}

#[test]
fn encoder_errors() {
    let mut out = Vec::new();
    let mut enc = PacketEncoder::new(&mut out);
    assert_eq!(
        enc.unreliable(0, 0, 0, true, b"", false),
        Err(EncodeError::MessageNumber)
    );
    enc.unreliable(0, 5, 0, true, b"", false).unwrap();
    assert_eq!(
        enc.unreliable(0, 4, 0, true, b"", false),
        Err(EncodeError::MessageNumber)
    );
    assert_eq!(
        enc.reliable(0, 0, b"", false),
        Err(EncodeError::StreamPosition)
    );
    enc.reliable(0, 100, b"abc", false).unwrap();
    assert_eq!(
        enc.reliable(0, 102, b"", false),
        Err(EncodeError::StreamPosition)
    );
    assert_eq!(
        enc.reliable(0, 104 + (1 << 32), b"", false),
        Err(EncodeError::EncodingNotAllowed)
    );
    let seg = ReliableSegment {
        lane: 0,
        stream_pos: 200,
        stream_pos_encoding: StreamPosEncoding::Absolute48,
        size_to_end: false,
        data: b"",
    };
    assert_eq!(
        enc.frame(&Frame::Reliable(seg)),
        Err(EncodeError::EncodingNotAllowed)
    );
    let big = AckBlockCounts {
        ack: 8 * (ACK_COUNT_UPPER_MAX + 1),
        nack: 1,
    };
    assert_eq!(enc.ack(1 << 40, 0, &[big]), Err(EncodeError::AckBlocks));
    assert_eq!(
        enc.ack_for_gaps(10, &[5..7, 6..8], 0, 100),
        Err(EncodeError::AckBlocks)
    );
    assert_eq!(
        enc.ack_for_gaps(10, &[5..11], 0, 100),
        Err(EncodeError::AckBlocks)
    );
    assert_eq!(
        enc.ack_for_gaps(10, &[5..7], 0, 4),
        Err(EncodeError::AckBudget)
    );
    assert_eq!(
        enc.ack_for_gaps(10, &[0..7], 0, 5),
        Err(EncodeError::AckBudget)
    );
}

#[test]
fn ack_for_gaps_lowers_latest() {
    let mut out = Vec::new();
    let mut enc = PacketEncoder::new(&mut out);
    // Room for one block only: the newest gap [8,9) is dropped, latest becomes 7.
    assert_eq!(enc.ack_for_gaps(10, &[3..5, 8..9], 7, 6), Ok(7));
    assert_eq!(out, [0x99, 7, 0, 7, 0, 0x32]);
}

#[test]
fn reliable_message_headers() {
    let h = |b: &[u8]| decode_reliable_header(b);
    assert_eq!(
        h(&[0x07]),
        Ok(Some(ReliableHeader {
            msg_num_delta: 1,
            size: 7,
            header_len: 1
        }))
    );
    assert_eq!(
        h(&[0x51, 0x02, 0xaa]),
        Ok(Some(ReliableHeader {
            msg_num_delta: 2,
            size: 17,
            header_len: 2
        }))
    );
    assert_eq!(
        h(&[0x76, 0x83, 0x01, 0x05]),
        Ok(Some(ReliableHeader {
            msg_num_delta: 131,
            size: (5 << 5) | 0x16,
            header_len: 4
        }))
    );
    assert_eq!(h(&[]), Ok(None));
    assert_eq!(h(&[0x40]), Ok(None));
    assert_eq!(h(&[0x60, 0x02, 0x80]), Ok(None));
    assert_eq!(h(&[0x80]), Err(FrameError::ReliableHeaderHighBit));
    assert_eq!(
        h(&[
            0x40, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
        ]),
        Err(FrameError::VarintOverflow)
    );
    let mut over = vec![
        0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    assert_eq!(h(&over), Err(FrameError::VarintOverflow));
    over.clear();
    assert_eq!(write_reliable_header(&mut over, 131, (5 << 5) | 0x16), 4);
    assert_eq!(over, [0x76, 0x83, 0x01, 0x05]);
    assert_eq!(reliable_header_len(131, (5 << 5) | 0x16), 4);
}

mod props;
