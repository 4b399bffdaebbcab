//! Memory per registration: 50,000 identities registered from distinct loopback addresses
//! (the whole of 127.0.0.0/8 is local on Linux), RSS read from /proc.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use sockworks_rendezvous::wire::Message;

use super::start;

const PEERS: usize = 50_000;
/// Sockets in flight at once.
const BATCH: usize = 64;

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn send(socket: &UdpSocket, to: SocketAddr, msg: Message<'_>) {
    let mut out = Vec::new();
    msg.encode(&mut out).unwrap();
    socket.send_to(&out, to).unwrap();
}

/// Registers identities `first..first + count`, each from its own address; returns how many
/// got RegisterOk (each socket gets three tries).
fn register_range(server: SocketAddr, first: usize, count: usize) -> usize {
    let mut done = 0;
    let mut buf = [0u8; 64];
    for batch_start in (first..first + count).step_by(BATCH) {
        let ids: Vec<usize> = (batch_start..(batch_start + BATCH).min(first + count)).collect();
        let sockets: Vec<UdpSocket> = ids
            .iter()
            .map(|i| {
                let ip = Ipv4Addr::new(
                    127,
                    1 + (i / 62_500) as u8,
                    (i / 250 % 250) as u8,
                    (i % 250 + 1) as u8,
                );
                let s = UdpSocket::bind((ip, 0)).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                s
            })
            .collect();
        let mut pending: Vec<usize> = (0..ids.len()).collect();
        for _try in 0..3 {
            for &k in &pending {
                send(&sockets[k], server, Message::Hello);
            }
            let mut registering = Vec::new();
            for &k in &pending {
                if let Ok(n) = sockets[k].recv(&mut buf)
                    && let Ok(Message::Challenge { cookie, .. }) = Message::decode(&buf[..n])
                {
                    let identity = format!("str:peer-{}", ids[k]);
                    send(
                        &sockets[k],
                        server,
                        Message::Register {
                            cookie,
                            identity: &identity,
                            cert: b"",
                            signature: b"",
                        },
                    );
                    registering.push(k);
                }
            }
            let mut failed = Vec::new();
            for k in registering {
                match sockets[k].recv(&mut buf) {
                    Ok(n)
                        if matches!(Message::decode(&buf[..n]), Ok(Message::RegisterOk { .. })) =>
                    {
                        done += 1;
                    }
                    _ => failed.push(k),
                }
            }
            pending = failed;
            if pending.is_empty() {
                break;
            }
        }
    }
    done
}

#[test]
fn fifty_thousand_registrations_stay_within_a_small_memory_bound_per_peer() {
    let mut server = start(&["--max-peers", "60000", "--interval-seconds", "3600"]);
    let pid = server.child.id();
    // Warm up: the allocator's and the maps' first growth, the socket's buffers.
    assert_eq!(register_range(server.addr, 0, 1_000), 1_000);
    let before = vm_rss_kib(pid);
    let registered = register_range(server.addr, 1_000, PEERS);
    let after = vm_rss_kib(pid);
    assert_eq!(registered, PEERS);
    server.stats_until(|s| s["peers"] == (PEERS + 1_000) as u64);
    let per_peer = (after.saturating_sub(before) * 1024) as f64 / PEERS as f64;
    eprintln!(
        "rendezvous RSS: {before} KiB with 1,000 peers, {after} KiB with {} peers: {per_peer:.0} bytes per peer",
        PEERS + 1_000
    );
    assert!(per_peer < 1024.0, "{per_peer:.0} bytes per peer");
}
