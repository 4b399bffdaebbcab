//! A simulated transfer through the whole protocol core: two endpoints (handshake done, real
//! AES-GCM, SNP framing, acks) over the in-memory network with a virtual clock. Measures the
//! CPU cost of the protocol per message, with no kernel in the way.
//! Run: `cargo bench -p sockworks-benches --bench transfer`.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sockworks_engine::proto::endpoint::ConnectionId;
use sockworks_engine::proto::snp::send_flags;
use sockworks_engine::testing::Pair;

const MESSAGES: u64 = 2_000;

fn connected_pair() -> (Pair, ConnectionId, ConnectionId) {
    sockworks_benches::simulated_pair().expect("connected")
}

#[inline(never)]
fn transfer(p: &mut Pair, c: ConnectionId, s: ConnectionId, size: usize, flags: u32) -> u64 {
    for _ in 0..MESSAGES {
        p.client
            .send_message(p.now, c, 0, flags, vec![0xa5; size])
            .expect("send");
    }
    let mut got = 0;
    let limit = p.now + Duration::from_secs(60);
    p.run_until(limit, 10_000_000, |p| {
        while p.server.poll_message(s).is_some() {
            got += 1;
        }
        got == MESSAGES
    });
    assert_eq!(got, MESSAGES, "all delivered");
    got
}

fn bench(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("transfer");
    g.sample_size(10);
    g.throughput(Throughput::Elements(MESSAGES));
    for (name, size, flags) in [
        ("reliable-32B", 32, send_flags::RELIABLE),
        ("reliable-1KiB", 1024, send_flags::RELIABLE),
        (
            "unreliable-1KiB",
            1024,
            send_flags::UNRELIABLE | send_flags::NO_NAGLE,
        ),
    ] {
        let (mut p, c, s) = connected_pair();
        g.bench_function(BenchmarkId::new("pair", name), |b| {
            b.iter(|| transfer(&mut p, c, s, size, flags))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
