//! The C ABI's own cost, side by side with the Rust API on the same instance, in one run:
//! 1,000 messages sent a → b over an in-memory socket pair (`pipe`: no packets, so the
//! calling-thread work dominates) and an encrypted 127.0.0.1 pair (`loopback`), received and
//! released.
//! - `rust`: `Sockets::send_message_to_connection` + `receive_messages_on_connection`.
//! - `flat_send`: `SteamAPI_ISteamNetworkingSockets_SendMessageToConnection` (copies the
//!   payload, as in GNS) + `ReceiveMessagesOnConnection` (messages lent zero-copy) +
//!   `Release`.
//! - `flat_batch`: `AllocateMessage` + one `SendMessages` call for the batch (the payload
//!   buffer is handed over, no copy) + receive and release as above.
//!
//! Run: `cargo bench -p sockworks-benches --bench capi`.

use std::ptr::{null, null_mut};

use GameNetworkingSockets::instance::{GameNetworkingSockets_Init, sockets};
use GameNetworkingSockets::message::SteamAPI_ISteamNetworkingUtils_AllocateMessage;
use GameNetworkingSockets::sockets::*;
use GameNetworkingSockets::types::*;
use GameNetworkingSockets::vtable::SteamAPI_SteamNetworkingMessage_t_Release;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sockworks::{ConfigValue, Connection, Message, Sockets, send_flags};

const BATCH: usize = 1_000;

fn init() -> std::sync::Arc<Sockets> {
    // SAFETY: null identity and error buffer are allowed.
    assert!(unsafe { GameNetworkingSockets_Init(null(), null_mut()) });
    let s = sockets().expect("instance");
    // As benches/api.rs: GNS's highest rate, buffers that hold a whole batch.
    for v in [
        ConfigValue::SendRateMin(0x1000_0000),
        ConfigValue::SendRateMax(0x1000_0000),
        ConfigValue::SendBufferSize(64 << 20),
        ConfigValue::RecvBufferMessages(1 << 20),
        ConfigValue::RecvBufferSize(64 << 20),
    ] {
        assert!(s.set_global_config_value(&v));
    }
    s
}

fn pair(loopback: bool) -> (u32, u32) {
    let (mut a, mut b) = (0, 0);
    // SAFETY: valid out pointers; null identities are allowed.
    let ok = unsafe {
        SteamAPI_ISteamNetworkingSockets_CreateSocketPair(
            null_mut(),
            &mut a,
            &mut b,
            loopback,
            null(),
            null(),
        )
    };
    assert!(ok);
    (a, b)
}

/// Bounded wait for the whole batch on `b` through the C receive call; releases each.
fn receive_flat(b: u32, out: &mut [*mut SteamNetworkingMessage_t]) {
    let mut got = 0;
    // Bounded: the pairs deliver within milliseconds; 10^7 polls is a hang.
    for _ in 0..10_000_000 {
        // SAFETY: `out` has room for its length in pointers.
        let n = unsafe {
            SteamAPI_ISteamNetworkingSockets_ReceiveMessagesOnConnection(
                null_mut(),
                b,
                out.as_mut_ptr(),
                out.len() as i32,
            )
        };
        for &m in &out[..n.max(0) as usize] {
            // SAFETY: a received message, released once.
            unsafe { SteamAPI_SteamNetworkingMessage_t_Release(m) };
        }
        got += n.max(0) as usize;
        if got >= BATCH {
            break;
        }
        if n == 0 {
            std::thread::yield_now();
        }
    }
    assert_eq!(got, BATCH, "every message arrives");
}

#[inline(never)]
fn round_rust(s: &Sockets, a: u32, b: u32, payload: &[u8], out: &mut Vec<Message>) {
    for _ in 0..BATCH {
        s.send_message_to_connection(Connection(a), payload, send_flags::RELIABLE_NO_NAGLE)
            .expect("send");
    }
    let mut got = 0;
    for _ in 0..10_000_000 {
        out.clear();
        got += s.receive_messages_on_connection(Connection(b), out, BATCH) as usize;
        if got >= BATCH {
            break;
        }
        if out.is_empty() {
            std::thread::yield_now();
        }
    }
    assert_eq!(got, BATCH, "every message arrives");
}

#[inline(never)]
fn round_flat_send(a: u32, b: u32, payload: &[u8], out: &mut [*mut SteamNetworkingMessage_t]) {
    for _ in 0..BATCH {
        // SAFETY: `payload` is readable for its length.
        let r = unsafe {
            SteamAPI_ISteamNetworkingSockets_SendMessageToConnection(
                null_mut(),
                a,
                payload.as_ptr().cast(),
                payload.len() as u32,
                k_nSteamNetworkingSend_ReliableNoNagle,
                null_mut(),
            )
        };
        assert_eq!(r, k_EResultOK);
    }
    receive_flat(b, out);
}

#[inline(never)]
fn round_flat_batch(
    a: u32,
    b: u32,
    payload: &[u8],
    out: &mut [*mut SteamNetworkingMessage_t],
    msgs: &mut Vec<*mut SteamNetworkingMessage_t>,
) {
    msgs.clear();
    for _ in 0..BATCH {
        let m = SteamAPI_ISteamNetworkingUtils_AllocateMessage(null_mut(), payload.len() as i32);
        // SAFETY: AllocateMessage gave a buffer of the payload's size.
        unsafe {
            std::ptr::copy_nonoverlapping(payload.as_ptr(), (*m).m_pData.cast(), payload.len());
            (*m).m_conn = a;
            (*m).m_nFlags = k_nSteamNetworkingSend_ReliableNoNagle;
        }
        msgs.push(m);
    }
    // SAFETY: BATCH allocated messages; results may be null.
    unsafe {
        SteamAPI_ISteamNetworkingSockets_SendMessages(
            null_mut(),
            BATCH as i32,
            msgs.as_mut_ptr(),
            null_mut(),
            true,
        )
    };
    receive_flat(b, out);
}

fn bench(c: &mut Criterion) {
    let s = init();
    let mut out = Vec::with_capacity(BATCH);
    let mut raw = vec![null_mut(); BATCH];
    let mut msgs = Vec::with_capacity(BATCH);
    let mut g = c.benchmark_group("capi");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (kind, loopback) in [("pipe", false), ("loopback", true)] {
        let (a, b) = pair(loopback);
        for size in [32usize, 1024] {
            let payload = vec![0x5a; size];
            let id = |path: &str| BenchmarkId::new(format!("{kind}/{path}"), size);
            g.bench_function(id("rust"), |bch| {
                bch.iter(|| round_rust(&s, a, b, &payload, &mut out))
            });
            g.bench_function(id("flat_send"), |bch| {
                bch.iter(|| round_flat_send(a, b, &payload, &mut raw))
            });
            g.bench_function(id("flat_batch"), |bch| {
                bch.iter(|| round_flat_batch(a, b, &payload, &mut raw, &mut msgs))
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
