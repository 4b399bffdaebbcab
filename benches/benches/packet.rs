//! A full data packet without crypto (header + stop_waiting + ack + segments: encode, then
//! decode), and the whole send/receive path with AES-256-GCM (encode + seal, open + decode).
//! Run: `cargo bench -p sockworks-benches --bench packet`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sockworks_engine::crypto::{AeadBackend, DirectionKeys, PacketCipher, SessionCipher};
use sockworks_engine::wire::frame::{
    AckBlockCounts, FixedRefs, Frame, FrameDecoder, PacketEncoder, write_reliable_header,
};
use sockworks_engine::wire::header::DataHeader;
use sockworks_engine::wire::proto::Cipher;
use std::hint::black_box;

/// Shapes: one 1 KiB reliable message; 30 reliable 32-byte messages; one 1 KiB unreliable.
#[derive(Clone, Copy)]
enum Shape {
    Reliable1k,
    Reliable32x30,
    Unreliable1k,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Reliable1k => "reliable-1KiB",
            Shape::Reliable32x30 => "reliable-32Bx30",
            Shape::Unreliable1k => "unreliable-1KiB",
        }
    }
}

#[inline(never)]
fn encode(shape: Shape, pn: u64, out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    out.clear();
    DataHeader::new(0x1234_5678, pn as u16).encode(out);
    let mut enc = PacketEncoder::new(out);
    enc.stop_waiting(pn, pn.saturating_sub(3))
        .expect("stop_waiting");
    let blocks = [
        AckBlockCounts { ack: 3, nack: 1 },
        AckBlockCounts { ack: 9, nack: 2 },
    ];
    enc.ack(pn + 100, 40, &blocks).expect("ack");
    match shape {
        Shape::Reliable1k => {
            scratch.clear();
            write_reliable_header(scratch, 1, 1024);
            scratch.resize(scratch.len() + 1024, 0xab);
            enc.reliable(0, 1 + pn * 1030, scratch, true)
                .expect("reliable");
        }
        Shape::Reliable32x30 => {
            let mut pos = 1 + pn * 30 * 34;
            for _ in 0..30 {
                scratch.clear();
                write_reliable_header(scratch, 1, 32);
                scratch.resize(scratch.len() + 32, 0xcd);
                enc.reliable(0, pos, scratch, false).expect("reliable");
                pos += scratch.len() as u64;
            }
        }
        Shape::Unreliable1k => {
            scratch.clear();
            scratch.resize(1024, 0xef);
            enc.unreliable(0, pn, 0, true, scratch, true)
                .expect("unreliable");
        }
    }
}

#[inline(never)]
fn decode(packet: &[u8]) -> usize {
    let (hdr, start) = DataHeader::decode(packet).expect("header");
    let refs = FixedRefs {
        next_packet_number: 200,
        message_number: 0,
        stream_pos: 1,
    };
    let mut bytes = 0;
    for f in FrameDecoder::new(&packet[start..], u64::from(hdr.packet_number), &refs) {
        match f.expect("frame") {
            Frame::Reliable(s) => bytes += s.data.len(),
            Frame::Unreliable(s) => bytes += s.data.len(),
            Frame::Ack(a) => bytes += a.blocks().count(),
            _ => {}
        }
    }
    bytes
}

const SHAPES: [Shape; 3] = [Shape::Reliable1k, Shape::Reliable32x30, Shape::Unreliable1k];

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    for shape in SHAPES {
        let mut out = Vec::with_capacity(1400);
        let mut scratch = Vec::with_capacity(1100);
        encode(shape, 50, &mut out, &mut scratch);
        g.throughput(Throughput::Bytes(out.len() as u64));
        g.bench_function(BenchmarkId::new("encode", shape.name()), |b| {
            b.iter(|| encode(shape, black_box(50), &mut out, &mut scratch))
        });
        let packet = out.clone();
        g.bench_function(BenchmarkId::new("decode", shape.name()), |b| {
            b.iter(|| decode(black_box(&packet)))
        });
    }
    g.finish();
}

fn full_path(c: &mut Criterion) {
    let keys = DirectionKeys::new([5; 32], [6; 12]);
    let cipher = SessionCipher::new(AeadBackend::Ring, Cipher::Aes256Gcm, &keys).expect("ring");
    let mut g = c.benchmark_group("packet+aead");
    for shape in SHAPES {
        let mut out = Vec::with_capacity(1400);
        let mut scratch = Vec::with_capacity(1100);
        g.bench_function(BenchmarkId::new("encode+seal", shape.name()), |b| {
            b.iter(|| {
                encode(shape, 50, &mut out, &mut scratch);
                cipher.seal_in_place(50, &mut out, 7).expect("seal");
                black_box(out.len())
            })
        });
        let mut sealed = Vec::with_capacity(1400);
        encode(shape, 50, &mut sealed, &mut scratch);
        cipher.seal_in_place(50, &mut sealed, 7).expect("seal");
        let mut work = sealed.clone();
        g.bench_function(BenchmarkId::new("open+decode", shape.name()), |b| {
            b.iter(|| {
                work.copy_from_slice(&sealed);
                let pt = cipher.open_in_place(50, &mut work[7..]).expect("open");
                let n = pt.len();
                let mut plain = Vec::with_capacity(7 + n);
                plain.extend_from_slice(&sealed[..7]);
                plain.extend_from_slice(&work[7..7 + n]);
                black_box(decode(&plain))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, codec, full_path);
criterion_main!(benches);
