//! SNP frames and packet numbers against the captured transcripts (spec §2.6, §4; vectors README
//! steps 4 and 6): expand every wire packet number, decode every plaintext frame by frame and
//! compare each field, and re-encode GNS's packets from decoded values byte for byte.

use std::collections::HashMap;

use serde_json::Value;
use sockworks_engine::wire::frame::{
    AckBlockCounts, FixedRefs, Frame, FrameDecoder, MsgNumEncoding, PacketEncoder,
    StreamPosEncoding, decode_reliable_header,
};
use sockworks_engine::wire::pktnum::expand_packet_number;

use crate::support;

/// Receiver-side state for one direction, enough to reassemble these short transcripts.
#[derive(Default)]
struct Direction {
    max_received: u64,
    highest_msg: u64,
    /// Reliable stream bytes from position 1.
    stream: Vec<u8>,
    consumed: u64,
    last_reliable_msg: u64,
}

fn msg_enc(e: MsgNumEncoding) -> &'static str {
    match e {
        MsgNumEncoding::AbsoluteU16 => "absolute_u16",
        MsgNumEncoding::AbsoluteU32 => "absolute_u32",
        MsgNumEncoding::DeltaVarint => "delta_varint",
        MsgNumEncoding::ImpliedPlusOne => "implied_plus_1",
    }
}

fn pos_enc(e: StreamPosEncoding) -> &'static str {
    match e {
        StreamPosEncoding::Absolute24 => "absolute_24bit",
        StreamPosEncoding::Absolute32 => "absolute_32bit",
        StreamPosEncoding::Absolute48 => "absolute_48bit",
        StreamPosEncoding::Contiguous => "contiguous",
        StreamPosEncoding::DeltaU8 => "delta_u8",
        StreamPosEncoding::DeltaU16 => "delta_u16",
        StreamPosEncoding::DeltaU32 => "delta_u32",
    }
}

fn size_enc(to_end: bool) -> &'static str {
    if to_end {
        "to_end_of_packet"
    } else {
        "explicit"
    }
}

fn range(v: &Value) -> std::ops::Range<u64> {
    support::int(&v[0])..support::int(&v[1])
}

/// A reassembled reliable message: (stream_pos, header bytes, delta, msg_num, payload).
type Completed = (u64, Vec<u8>, u64, u64, Vec<u8>);

/// Appends reliable bytes to the direction's stream and returns the messages now complete.
fn reassemble(d: &mut Direction, pos: u64, data: &[u8]) -> Vec<Completed> {
    let at = usize::try_from(pos - 1).unwrap();
    if d.stream.len() < at + data.len() {
        d.stream.resize(at + data.len(), 0);
    }
    d.stream[at..at + data.len()].copy_from_slice(data);
    let mut done = Vec::new();
    loop {
        let start = usize::try_from(d.consumed).unwrap();
        let rest = &d.stream[start..];
        let Some(h) = decode_reliable_header(rest).unwrap() else {
            break;
        };
        let total = h.header_len + usize::try_from(h.size).unwrap();
        if rest.len() < total {
            break;
        }
        d.last_reliable_msg += h.msg_num_delta;
        done.push((
            d.consumed + 1,
            rest[..h.header_len].to_vec(),
            h.msg_num_delta,
            d.last_reliable_msg,
            rest[h.header_len..total].to_vec(),
        ));
        d.consumed += total as u64;
    }
    done
}

#[test]
fn transcripts_packet_numbers_frames_and_reencoding() {
    let mut frames_checked = 0;
    let mut gns_packets_reencoded = 0;
    for (file, v) in support::all() {
        let mut dirs: HashMap<String, Direction> = HashMap::new();
        for d in ["c2s", "s2c"] {
            dirs.insert(
                d.into(),
                Direction {
                    max_received: 1,
                    ..Default::default()
                },
            );
        }
        for dg in support::datagrams(&v)
            .iter()
            .filter(|d| d["kind"] == "data")
        {
            let ctx = format!("{file} datagram {}", dg["index"]);
            let dir = dg["dir"].as_str().unwrap().to_string();
            let other = if dir == "c2s" { "s2c" } else { "c2s" };
            // Our next packet number is one past the highest the other direction has used.
            let next_packet_number = dirs[other].max_received + 1;
            let d = dirs.get_mut(&dir).unwrap();

            // §2.6: expand the 16-bit wire number.
            let wire = u16::try_from(support::int(&dg["header"]["packet_number_wire"])).unwrap();
            let pn = expand_packet_number(wire, d.max_received).unwrap();
            assert_eq!(pn, support::int(&dg["packet_number"]), "{ctx}");
            d.max_received = d.max_received.max(pn);

            let plain = support::hex(&dg["plaintext_hex"]);
            assert_eq!(
                plain.len() as u64,
                support::int(&dg["plaintext_len"]),
                "{ctx}"
            );
            let refs = FixedRefs {
                next_packet_number,
                message_number: d.highest_msg,
                stream_pos: d.consumed + 1,
            };
            let mut dec = FrameDecoder::new(&plain, pn, &refs);
            let mut decoded = Vec::new();
            let expected = dg["frames"].as_array().unwrap();
            for (i, want) in expected.iter().enumerate() {
                let fctx = format!("{ctx} frame {i}");
                let off = dec.offset();
                assert_eq!(off as u64, support::int(&want["offset"]), "{fctx}");
                assert_eq!(
                    u64::from(dec.lane()),
                    support::int(&want["lane_context"]),
                    "{fctx}"
                );
                let f = dec
                    .next()
                    .unwrap_or_else(|| panic!("{fctx}: missing"))
                    .unwrap();
                assert_eq!(
                    plain[off..dec.offset()],
                    support::hex(&want["raw_hex"]),
                    "{fctx}"
                );
                check_frame(&f, want, pn, d, &fctx);
                decoded.push(f);
                frames_checked += 1;
            }
            assert!(dec.next().is_none(), "{ctx}: extra frames");

            // Exact re-encoding of any packet from its decoded frames.
            let mut out = Vec::new();
            let mut enc = PacketEncoder::new(&mut out);
            for f in &decoded {
                enc.frame(f).unwrap();
            }
            assert_eq!(out, plain, "{ctx}: exact re-encode");

            // GNS's own choices, from decoded values only.
            if dg["sender"] == "gns" {
                assert_eq!(
                    gns_reencode(&decoded, pn),
                    plain,
                    "{ctx}: GNS-style re-encode"
                );
                gns_packets_reencoded += 1;
            }
        }
    }
    assert_eq!(frames_checked, 26);
    assert_eq!(gns_packets_reencoded, 5);
}

fn gns_reencode(frames: &[Frame<'_>], pn: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = PacketEncoder::new(&mut out);
    let last = frames.len() - 1;
    for (i, f) in frames.iter().enumerate() {
        match f {
            Frame::StopWaiting(sw) => {
                enc.stop_waiting(pn, sw.min_packet_to_ack).unwrap();
            }
            Frame::Ack(a) => {
                let blocks: Vec<AckBlockCounts> = a.blocks().map(|b| b.counts).collect();
                enc.ack(a.latest, a.delay, &blocks).unwrap();
            }
            Frame::SelectLane { lane } => enc.select_lane(*lane).unwrap(),
            Frame::Unreliable(s) => enc
                .unreliable(
                    s.lane,
                    s.msg_num,
                    s.offset,
                    s.end_of_message,
                    s.data,
                    i == last,
                )
                .unwrap(),
            Frame::Reliable(s) => enc
                .reliable(s.lane, s.stream_pos, s.data, i == last)
                .unwrap(),
        }
    }
    // An ack from the receiver's gap view gives the same bytes when nothing is missing.
    for f in frames {
        if let Frame::Ack(a) = f {
            let mut alt = Vec::new();
            let latest = PacketEncoder::new(&mut alt)
                .ack_for_gaps(a.latest, &[], a.delay, 1200)
                .unwrap();
            assert_eq!(latest, a.latest);
            assert_eq!(alt, a_bytes(&out, a.latest, a.delay));
        }
    }
    out
}

/// The 5-byte block-less ack GNS writes for `latest` and `delay`, checked to be inside `packet`.
fn a_bytes(packet: &[u8], latest: u64, delay: u16) -> Vec<u8> {
    let mut b = vec![0x98];
    b.extend_from_slice(&(latest as u16).to_le_bytes());
    b.extend_from_slice(&delay.to_le_bytes());
    assert!(packet.windows(5).any(|w| w == b.as_slice()));
    b
}

fn check_frame(f: &Frame<'_>, want: &Value, pn: u64, d: &mut Direction, ctx: &str) {
    let int = |k: &str| support::int(&want[k]);
    match f {
        Frame::StopWaiting(sw) => {
            assert_eq!(want["type"], "stop_waiting", "{ctx}");
            assert_eq!(u64::from(sw.width_bytes) * 8, int("width_bits"), "{ctx}");
            assert_eq!(sw.value, int("value"), "{ctx}");
            assert_eq!(sw.min_packet_to_ack, int("min_packet_to_ack"), "{ctx}");
            assert_eq!(sw.min_packet_to_ack, pn - sw.value - 1, "{ctx}");
        }
        Frame::Ack(a) => {
            assert_eq!(want["type"], "ack", "{ctx}");
            let bits = if a.latest_32bit { 32 } else { 16 };
            assert_eq!(bits, int("latest_width_bits"), "{ctx}");
            assert_eq!(
                u64::from(a.latest_wire),
                int("latest_received_wire"),
                "{ctx}"
            );
            assert_eq!(a.latest, int("latest_received"), "{ctx}");
            assert_eq!(u64::from(a.delay), int("delay_raw"), "{ctx}");
            assert_eq!(a.delay_usec(), want["delay_usec"].as_u64(), "{ctx}");
            assert_eq!(
                Value::Bool(a.explicit_count),
                want["block_count_explicit"],
                "{ctx}"
            );
            let blocks: Vec<_> = a.blocks().collect();
            let want_blocks = want["blocks"].as_array().unwrap();
            assert_eq!(blocks.len(), want_blocks.len(), "{ctx}");
            assert_eq!(usize::from(a.block_count), blocks.len(), "{ctx}");
            for (b, w) in blocks.iter().zip(want_blocks) {
                assert_eq!(b.counts.ack, support::int(&w["ack_count"]), "{ctx}");
                assert_eq!(b.counts.nack, support::int(&w["nack_count"]), "{ctx}");
                assert_eq!(b.acked, range(&w["acked"]), "{ctx}");
                assert_eq!(b.nacked, range(&w["nacked"]), "{ctx}");
            }
            assert_eq!(
                a.implicitly_acked_below,
                int("implicitly_acked_below"),
                "{ctx}"
            );
        }
        Frame::SelectLane { lane } => {
            assert_eq!(want["type"], "select_lane", "{ctx}");
            assert_eq!(u64::from(*lane), int("lane"), "{ctx}");
        }
        Frame::Unreliable(s) => {
            assert_eq!(want["type"], "unreliable_segment", "{ctx}");
            assert_eq!(
                msg_enc(s.msg_num_encoding),
                want["msg_num_encoding"],
                "{ctx}"
            );
            if matches!(
                s.msg_num_encoding,
                MsgNumEncoding::AbsoluteU16 | MsgNumEncoding::AbsoluteU32
            ) {
                let mask = if s.msg_num_encoding == MsgNumEncoding::AbsoluteU16 {
                    0xffff
                } else {
                    0xffff_ffff
                };
                assert_eq!(s.msg_num & mask, int("msg_num_wire"), "{ctx}");
            }
            assert_eq!(s.msg_num, int("msg_num"), "{ctx}");
            assert_eq!(
                Value::Bool(s.offset_present),
                want["offset_present"],
                "{ctx}"
            );
            assert_eq!(s.offset, int("msg_offset"), "{ctx}");
            assert_eq!(
                Value::Bool(s.end_of_message),
                want["end_of_message"],
                "{ctx}"
            );
            assert_eq!(size_enc(s.size_to_end), want["size_encoding"], "{ctx}");
            assert_eq!(s.data.len() as u64, int("size"), "{ctx}");
            assert_eq!(s.data, support::hex(&want["data_hex"]), "{ctx}");
            if let Some(text) = want["data_text"].as_str() {
                assert_eq!(s.data, text.as_bytes(), "{ctx}");
            }
            d.highest_msg = d.highest_msg.max(s.msg_num);
        }
        Frame::Reliable(s) => {
            assert_eq!(want["type"], "reliable_segment", "{ctx}");
            assert_eq!(
                pos_enc(s.stream_pos_encoding),
                want["stream_pos_encoding"],
                "{ctx}"
            );
            if let Some(w) = want["stream_pos_wire"].as_u64() {
                assert_eq!(s.stream_pos & 0xffff_ffff_ffff, w, "{ctx}");
            }
            assert_eq!(s.stream_pos, int("stream_pos"), "{ctx}");
            assert_eq!(s.stream_end(), int("stream_end"), "{ctx}");
            assert_eq!(size_enc(s.size_to_end), want["size_encoding"], "{ctx}");
            assert_eq!(s.data.len() as u64, int("size"), "{ctx}");
            assert_eq!(s.data, support::hex(&want["data_hex"]), "{ctx}");
            let done = reassemble(d, s.stream_pos, s.data);
            let want_done = want["messages_completed"].as_array().unwrap();
            assert_eq!(done.len(), want_done.len(), "{ctx}");
            for ((pos, header, delta, num, payload), w) in done.iter().zip(want_done) {
                assert_eq!(*pos, support::int(&w["stream_pos"]), "{ctx}");
                assert_eq!(*header, support::hex(&w["header_hex"]), "{ctx}");
                assert_eq!(*delta, support::int(&w["msg_num_delta"]), "{ctx}");
                assert_eq!(*num, support::int(&w["msg_num"]), "{ctx}");
                assert_eq!(payload.len() as u64, support::int(&w["size"]), "{ctx}");
                assert_eq!(*payload, support::hex(&w["payload_hex"]), "{ctx}");
                if let Some(text) = w["payload_text"].as_str() {
                    assert_eq!(payload.as_slice(), text.as_bytes(), "{ctx}");
                }
                d.highest_msg = d.highest_msg.max(*num);
            }
        }
    }
}

#[test]
fn reliable_headers_from_the_transcripts_reencode() {
    // Every message header GNS or the known side framed, rebuilt from (delta, size).
    let mut seen = 0;
    for (_, v) in support::all() {
        for dg in support::datagrams(&v)
            .iter()
            .filter(|d| d["kind"] == "data")
        {
            for f in dg["frames"].as_array().unwrap() {
                for m in f["messages_completed"].as_array().into_iter().flatten() {
                    let mut out = Vec::new();
                    sockworks_engine::wire::frame::write_reliable_header(
                        &mut out,
                        support::int(&m["msg_num_delta"]),
                        support::int(&m["size"]),
                    );
                    assert_eq!(out, support::hex(&m["header_hex"]));
                    seen += 1;
                }
            }
        }
    }
    assert_eq!(seen, 6);
}

#[test]
fn first_data_packet_acks_the_handshake_packet() {
    // §2.6: GNS's first data packet (number 2) acks packet 1 with no timing.
    let v = support::load("gns-handshake-s2c.json");
    let dg = support::first_of_kind(&v, "data");
    assert_eq!(dg["sender"], "gns");
    // Data only flows after the challenge round trip (echoed timestamp) and ConnectOK.
    let request = support::first_of_kind(&v, "ChallengeRequest");
    let reply = support::first_of_kind(&v, "ChallengeReply");
    assert_eq!(
        support::u64_str(&request["fields"]["my_timestamp"]),
        support::u64_str(&reply["fields"]["your_timestamp"])
    );
    assert!(
        support::int(&support::first_of_kind(&v, "ConnectOK")["index"])
            < support::int(&dg["index"])
    );
    let plain = support::hex(&dg["plaintext_hex"]);
    let refs = FixedRefs::default();
    let frames: Vec<_> = FrameDecoder::new(&plain, 2, &refs)
        .collect::<Result<_, _>>()
        .unwrap();
    let Frame::Ack(a) = &frames[1] else {
        panic!("second frame is not an ack")
    };
    assert_eq!((a.latest, a.delay_usec()), (1, None));
}
