//! `--handshake-flood PPS` (with `--mode api`): while the honest echo load runs, a thread
//! sends ChallengeRequests and ConnectRequests with cookies that were never issued from
//! 127.0.0.2..=127.0.0.200 to the server, paced to PPS datagrams per second. Compare the
//! echo RTT percentiles with a run without it (issue 16's target: p99 within 2x); the server's
//! endpoint counters show the forged cookies dropped and no state kept for the flood.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use sockworks::engine::crypto::cert::PROTOCOL_VERSION;
use sockworks::engine::wire::control::ControlMessage;
use sockworks::engine::wire::proto::{ChallengeRequest, ConnectRequest};

use crate::now;

/// Pairs of (ChallengeRequest, ConnectRequest with a forged cookie).
fn packets(seed: u64) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for _ in 0..64 {
        let id = rng.next_u32() | 1;
        let msgs: [ControlMessage; 2] = [
            ChallengeRequest {
                connection_id: Some(id),
                my_timestamp: Some(rng.next_u64()),
                protocol_version: Some(PROTOCOL_VERSION),
            }
            .into(),
            ConnectRequest {
                client_connection_id: Some(id),
                challenge: Some(rng.next_u64()),
                my_timestamp: Some(rng.next_u64()),
                ..ConnectRequest::default()
            }
            .into(),
        ];
        for m in msgs {
            let mut b = Vec::new();
            m.encode(&mut b)?;
            out.push(b);
        }
    }
    Ok(out)
}

/// Starts the flood at `pps` datagrams per second to `to` until `stop`; the thread returns how
/// many it sent.
pub(crate) fn start(
    to: SocketAddr,
    pps: u32,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<u64>> {
    let socks: Vec<UdpSocket> = (2..=200u8)
        .filter_map(|x| UdpSocket::bind((Ipv4Addr::new(127, 0, 0, x), 0)).ok())
        .collect();
    anyhow::ensure!(
        !socks.is_empty(),
        "no 127.0.0.x source address to flood from"
    );
    for s in &socks {
        s.set_nonblocking(true)?;
    }
    let packets = packets(seed)?;
    Ok(std::thread::Builder::new()
        .name("flood".into())
        .spawn(move || {
            let t0 = now();
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let due = (t0.elapsed().as_secs_f64() * f64::from(pps)) as u64;
                if sent >= due {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                let k = sent as usize;
                // A full socket buffer loses the datagram, as a real flood's would be.
                let _ = socks[k % socks.len()].send_to(&packets[k % packets.len()], to);
                sent += 1;
            }
            sent
        })?)
}
