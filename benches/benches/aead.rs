//! Packet sealing and opening: ring vs RustCrypto, one packet per call vs a batch of 32, at the
//! sizes a game server sees (64 B input-only packets, 512 B snapshots, 1200 B full packets).
//! Run: `cargo bench -p sockworks-benches --bench aead`. Compare ratios within one run.

#![expect(
    clippy::disallowed_methods,
    reason = "benchmarks measure wall-clock time"
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sockworks_engine::crypto::{
    AeadBackend, DirectionKeys, OpenItem, PacketCipher, SealItem, SessionCipher, TAG_LEN,
};
use sockworks_engine::wire::proto::Cipher;
use std::hint::black_box;

const SIZES: [usize; 3] = [64, 512, 1200];
const BATCH: usize = 32;
const HEADER: usize = 7;

fn keys() -> DirectionKeys {
    DirectionKeys::new([7u8; 32], [9u8; 12])
}

fn backends() -> Vec<(&'static str, SessionCipher)> {
    let mut v = Vec::new();
    for (name, b) in [
        ("ring", AeadBackend::Ring),
        ("rustcrypto", AeadBackend::RustCrypto),
    ] {
        if let Ok(c) = SessionCipher::new(b, Cipher::Aes256Gcm, &keys()) {
            v.push((name, c));
        }
    }
    v
}

fn packet(size: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(HEADER + size + TAG_LEN);
    p.extend((0..HEADER + size).map(|i| i as u8));
    p
}

#[inline(never)]
fn seal_one(c: &SessionCipher, pn: u64, buf: &mut Vec<u8>, size: usize) {
    buf.truncate(HEADER + size);
    c.seal_in_place(pn, buf, HEADER).expect("seal");
}

fn seal(cr: &mut Criterion) {
    for size in SIZES {
        let mut g = cr.benchmark_group(format!("seal/{size}B"));
        g.throughput(Throughput::Bytes(size as u64));
        for (name, c) in backends() {
            let mut buf = packet(size);
            let mut pn = 2u64;
            g.bench_function(BenchmarkId::new("single", name), |b| {
                b.iter(|| {
                    pn += 1;
                    seal_one(&c, pn, &mut buf, size);
                    black_box(&buf);
                })
            });
            let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| packet(size)).collect();
            g.bench_function(
                BenchmarkId::new(format!("batch{BATCH}-per-packet"), name),
                |b| {
                    b.iter_custom(|iters| {
                        // One iteration = one packet, so batch and single compare per packet.
                        let rounds = iters.div_ceil(BATCH as u64);
                        let start = std::time::Instant::now();
                        for r in 0..rounds {
                            for buf in bufs.iter_mut() {
                                buf.truncate(HEADER + size);
                            }
                            let items = bufs.iter_mut().enumerate().map(|(i, buf)| SealItem {
                                packet_number: r * BATCH as u64 + i as u64,
                                buf,
                                header_len: HEADER,
                            });
                            c.seal_iter(items).expect("seal batch");
                        }
                        start
                            .elapsed()
                            .mul_f64(iters as f64 / (rounds * BATCH as u64) as f64)
                    })
                },
            );
        }
        g.finish();
    }
}

fn open(cr: &mut Criterion) {
    for size in SIZES {
        let mut g = cr.benchmark_group(format!("open/{size}B"));
        g.throughput(Throughput::Bytes(size as u64));
        for (name, c) in backends() {
            // Pre-sealed ciphertexts; each iteration copies one back and opens it.
            let sealed: Vec<Vec<u8>> = (0..BATCH as u64)
                .map(|pn| {
                    let mut p = packet(size);
                    c.seal_in_place(pn, &mut p, HEADER).expect("seal");
                    p.split_off(HEADER)
                })
                .collect();
            let mut scratch: Vec<Vec<u8>> = sealed.clone();
            let mut i = 0usize;
            g.bench_function(BenchmarkId::new("single", name), |b| {
                b.iter(|| {
                    i = (i + 1) % BATCH;
                    scratch[i].copy_from_slice(&sealed[i]);
                    let pt = c.open_in_place(i as u64, &mut scratch[i]).expect("open");
                    black_box(pt.len());
                })
            });
            g.bench_function(
                BenchmarkId::new(format!("batch{BATCH}-per-packet"), name),
                |b| {
                    b.iter_custom(|iters| {
                        let rounds = iters.div_ceil(BATCH as u64);
                        let start = std::time::Instant::now();
                        for _ in 0..rounds {
                            for (s, src) in scratch.iter_mut().zip(&sealed) {
                                s.copy_from_slice(src);
                            }
                            let mut items: Vec<OpenItem<'_>> = scratch
                                .iter_mut()
                                .enumerate()
                                .map(|(pn, buf)| OpenItem::new(pn as u64, buf))
                                .collect();
                            let n = c.open_batch(&mut items);
                            assert_eq!(n, BATCH);
                        }
                        start
                            .elapsed()
                            .mul_f64(iters as f64 / (rounds * BATCH as u64) as f64)
                    })
                },
            );
        }
        g.finish();
    }
}

criterion_group!(benches, seal, open);
criterion_main!(benches);
