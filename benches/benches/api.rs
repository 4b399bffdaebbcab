//! The public API's own cost, side by side in one run:
//! - `pipe`: send + receive through an in-memory socket pair (no shard, no packets): the
//!   calling-thread work of a send (handle lookup, state and size checks, numbering) and of a
//!   receive (queue pop, buffer release to the pool).
//! - `loopback`: the same through an encrypted 127.0.0.1 socket pair, i.e. API + shard + kernel
//!   + crypto, per 1,000 messages of 32 B and 1 KiB.
//!
//! Run: `cargo bench -p sockworks-benches --bench api`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sockworks::{ConfigValue, Connection, Message, Sockets, SocketsConfig, send_flags};

const BATCH: usize = 1_000;

fn instance() -> Sockets {
    let s = Sockets::with_config(SocketsConfig {
        shards: 1,
        seed: Some(1),
        ..SocketsConfig::default()
    })
    .expect("instance");
    // The highest rate GNS allows (256 MiB/s): 1,000 x 1 KiB still takes ~4 ms of pacing.
    assert!(s.set_global_config_value(&ConfigValue::SendRateMin(0x1000_0000)));
    assert!(s.set_global_config_value(&ConfigValue::SendRateMax(0x1000_0000)));
    assert!(s.set_global_config_value(&ConfigValue::SendBufferSize(64 << 20)));
    assert!(s.set_global_config_value(&ConfigValue::RecvBufferMessages(1 << 20)));
    assert!(s.set_global_config_value(&ConfigValue::RecvBufferSize(64 << 20)));
    s
}

/// Sends `BATCH` messages a → b and receives them all; returns how many arrived.
fn round(
    s: &Sockets,
    a: Connection,
    b: Connection,
    payload: &[u8],
    out: &mut Vec<Message>,
) -> usize {
    for _ in 0..BATCH {
        s.send_message_to_connection(a, payload, send_flags::RELIABLE_NO_NAGLE)
            .expect("send");
    }
    let mut got = 0;
    // Bounded: the loopback pair delivers within milliseconds; 10^7 polls is a hang.
    for _ in 0..10_000_000 {
        out.clear();
        got += s.receive_messages_on_connection(b, out, BATCH) as usize;
        if got >= BATCH {
            break;
        }
        if out.is_empty() {
            std::thread::yield_now();
        }
    }
    assert_eq!(got, BATCH, "every message arrives");
    got
}

fn bench(c: &mut Criterion) {
    let s = instance();
    let pipe = s.create_socket_pair(false, None, None).expect("pipe pair");
    let net = s
        .create_socket_pair(true, None, None)
        .expect("loopback pair");
    let mut out = Vec::with_capacity(BATCH);
    let mut g = c.benchmark_group("api");
    g.throughput(Throughput::Elements(BATCH as u64));
    for size in [32usize, 1024] {
        let payload = vec![0x5a; size];
        g.bench_with_input(BenchmarkId::new("pipe", size), &size, |bch, _| {
            bch.iter(|| round(&s, pipe.0, pipe.1, &payload, &mut out));
        });
        g.bench_with_input(BenchmarkId::new("loopback", size), &size, |bch, _| {
            bch.iter(|| round(&s, net.0, net.1, &payload, &mut out));
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
