//! `--mode api`: the same echo load through the public `sockworks` API instead of the engine's
//! shard hooks, so the cost of the API layer (queues, records, application threads) shows up
//! next to `--mode runtime` in one run.
//!
//! ```text
//!  client app thread ── send_messages ──► client shards ══ UDP 127.0.0.1 ══► server shards
//!        ▲                                                                     │
//!        └── receive_messages_on_poll_group ◄══ ... ◄── send_messages ◄── server app thread
//! ```
//! Every echo is checked: right connection, in order, intact. Bounded by count and time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use hdrhistogram::Histogram;
use sockworks::{
    ConfigValue, Connection, ConnectionState, EResult, Message, OutMessage, PollGroup, Sockets,
    SocketsConfig, StatusChanged, send_flags,
};

use sockworks::engine::shard::process_cpu_usec;

use crate::now;
use crate::sharded::Load;

/// What a run measured.
#[derive(Debug)]
pub(crate) struct Report {
    pub connect_time: Duration,
    pub transfer_time: Duration,
    pub sent: u64,
    pub echoed: u64,
    pub rtt: Histogram<u64>,
    /// CPU of the whole process (client and server shards and app threads), seconds.
    pub process_cpu: f64,
}

/// Status changes, collected by the callback, handled by the app thread.
type Changes = Arc<Mutex<Vec<StatusChanged>>>;

fn instance(shards: usize, seed: u64, rate: u32, changes: &Changes) -> anyhow::Result<Sockets> {
    let s = Sockets::with_config(SocketsConfig {
        shards,
        seed: Some(seed),
        ..SocketsConfig::default()
    })?;
    let sink = changes.clone();
    let rate = i32::try_from(rate.min(0x1000_0000)).unwrap_or(i32::MAX);
    // Nagle off, as in the runtime mode: a windowed echo would otherwise wait 5 ms per hop.
    let ok = s.set_global_config_value(&ConfigValue::NagleTime(0))
        && s.set_global_config_value(&ConfigValue::SendRateMin(rate))
        && s.set_global_config_value(&ConfigValue::SendRateMax(rate))
        && s.set_global_config_value(&ConfigValue::ConnectionStatusChanged(Arc::new(
            move |ev: &StatusChanged| {
                if let Ok(mut v) = sink.lock() {
                    v.push(ev.clone());
                }
            },
        )));
    ensure!(ok, "configuring the instance");
    Ok(s)
}

fn take(changes: &Changes) -> Vec<StatusChanged> {
    changes
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

/// The echo server's application thread: accept everything into a poll group, echo back.
fn serve(
    s: &Sockets,
    changes: &Changes,
    group: PollGroup,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut inbox: Vec<Message> = Vec::with_capacity(256);
    let mut idle = 0u32;
    while !stop.load(Ordering::Relaxed) {
        s.run_callbacks();
        for ev in take(changes) {
            match ev.info.state {
                ConnectionState::Connecting => {
                    ensure!(s.accept_connection(ev.conn) == EResult::Ok, "accept");
                    ensure!(s.set_connection_poll_group(ev.conn, group), "poll group");
                }
                ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                    s.close_connection(ev.conn, 0, "", false);
                }
                _ => {}
            }
        }
        inbox.clear();
        if s.receive_messages_on_poll_group(group, &mut inbox, 256) <= 0 {
            idle += 1;
            if idle > 64 {
                std::thread::sleep(Duration::from_micros(50));
            } else {
                std::thread::yield_now();
            }
            continue;
        }
        idle = 0;
        let out = inbox
            .drain(..)
            .map(|m| OutMessage {
                conn: m.conn,
                data: m.into_data(),
                flags: send_flags::RELIABLE,
                lane: 0,
            })
            .collect();
        for r in s.send_messages(out) {
            ensure!(r > 0, "echo send failed: {r}");
        }
    }
    Ok(())
}

fn payload(size: usize, conn: u32, seq: u64, t_us: u64) -> Vec<u8> {
    let mut v = vec![0u8; size.max(20)];
    v[..4].copy_from_slice(&conn.to_le_bytes());
    v[4..12].copy_from_slice(&seq.to_le_bytes());
    v[12..20].copy_from_slice(&t_us.to_le_bytes());
    for (i, b) in v.iter_mut().enumerate().skip(20) {
        *b = (i as u64 ^ seq) as u8;
    }
    v.truncate(size.max(20));
    v
}

/// Runs the load (with a handshake flood of `flood_pps` datagrams per second while the echoes
/// run, when not 0); fails on any lost, reordered or corrupted echo.
pub(crate) fn run(load: &Load, flood_pps: u32) -> anyhow::Result<Report> {
    let cpu0 = process_cpu_usec();
    let server_changes = Changes::default();
    let server = instance(load.server_shards, load.seed, load.rate, &server_changes)?;
    let listen = server.create_listen_socket_ip("127.0.0.1:0".parse()?, &[]);
    let addr = server
        .get_listen_socket_address(listen)
        .context("listen socket")?;
    let group = server.create_poll_group();
    let stop = Arc::new(AtomicBool::new(false));
    let srv = {
        let (s, c, stop) = (server.clone(), server_changes.clone(), stop.clone());
        std::thread::Builder::new()
            .name("api-echo".into())
            .spawn(move || serve(&s, &c, group, &stop))?
    };

    let client_changes = Changes::default();
    let client = instance(
        load.client_shards,
        load.seed ^ 0xc1,
        load.rate,
        &client_changes,
    )?;
    let t0 = now();
    let conns: Vec<Connection> = (0..load.connections)
        .map(|_| client.connect_by_ip_address(addr, &[]))
        .collect();
    ensure!(!conns.contains(&Connection::INVALID), "connect failed");
    let cgroup = client.create_poll_group();
    let mut connected = 0;
    while connected < conns.len() {
        ensure!(t0.elapsed() < load.max, "connecting took too long");
        client.run_callbacks();
        for ev in take(&client_changes) {
            match ev.info.state {
                ConnectionState::Connected => connected += 1,
                ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                    bail!("connection failed: {}", ev.info.end_debug)
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    for (i, &c) in conns.iter().enumerate() {
        ensure!(client.set_connection_poll_group(c, cgroup), "poll group");
        // Echoes carry the user data: the connection's index, found without a lookup.
        ensure!(client.set_connection_user_data(c, i as i64), "user data");
    }
    let connect_time = t0.elapsed();

    let stop_flood = Arc::new(AtomicBool::new(false));
    let flood = if flood_pps > 0 {
        Some(crate::flood::start(
            addr,
            flood_pps,
            load.seed,
            stop_flood.clone(),
        )?)
    } else {
        None
    };

    let mut next_send = vec![0u64; conns.len()];
    let mut next_recv = vec![0u64; conns.len()];
    let mut rtt = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut sent, mut echoed) = (0u64, 0u64);
    let total = load.messages * u64::from(load.connections);
    let t1 = now();
    let mut inbox: Vec<Message> = Vec::with_capacity(1024);
    let mut out = Vec::new();
    // Connections whose window has room: all at first, then those that got echoes.
    let mut refill: Vec<usize> = (0..conns.len()).collect();
    let mut idle = 0u32;
    while echoed < total {
        let t_us = t1.elapsed().as_micros() as u64;
        out.clear();
        for &i in &refill {
            while next_send[i] < load.messages && next_send[i] - next_recv[i] < load.window {
                out.push(OutMessage {
                    conn: conns[i],
                    data: payload(load.size, i as u32, next_send[i], t_us),
                    flags: send_flags::RELIABLE,
                    lane: 0,
                });
                next_send[i] += 1;
            }
        }
        refill.clear();
        if !out.is_empty() {
            for r in client.send_messages(std::mem::take(&mut out)) {
                ensure!(r > 0, "send failed: {r}");
                sent += 1;
            }
        }
        inbox.clear();
        if client.receive_messages_on_poll_group(cgroup, &mut inbox, 1024) <= 0 {
            idle += 1;
            if idle % 1024 == 0 && t1.elapsed() > load.max {
                break;
            }
            // The shards need these cores more than a spinning poll does.
            if idle > 64 {
                std::thread::sleep(Duration::from_micros(20));
            } else {
                std::thread::yield_now();
            }
            continue;
        }
        idle = 0;
        let now_us = t1.elapsed().as_micros() as u64;
        for m in &inbox {
            let i = usize::try_from(m.user_data).context("echo without user data")?;
            ensure!(
                i < conns.len() && conns[i] == m.conn,
                "echo on an unknown connection"
            );
            if refill.last() != Some(&i) {
                refill.push(i);
            }
            let seq = u64::from_le_bytes(m.data[4..12].try_into()?);
            let t = u64::from_le_bytes(m.data[12..20].try_into()?);
            ensure!(
                seq == next_recv[i],
                "conn {i}: echo {seq}, expected {}",
                next_recv[i]
            );
            ensure!(
                m.data == payload(load.size, i as u32, seq, t),
                "corrupt echo"
            );
            next_recv[i] += 1;
            echoed += 1;
            rtt.record(now_us.saturating_sub(t).max(1))?;
        }
    }
    let transfer_time = t1.elapsed();
    stop_flood.store(true, Ordering::Relaxed);
    if let Some(f) = flood {
        let sent = f
            .join()
            .map_err(|_| anyhow::anyhow!("flood thread panicked"))?;
        let st = server.endpoint_stats();
        println!(
            "  flood       {sent} handshake datagrams; server: {} forged cookies dropped, {} connections, {} incoming requests held",
            st.counters.bad_challenge, st.connections, st.incoming_requests
        );
    }
    stop.store(true, Ordering::Relaxed);
    srv.join()
        .map_err(|_| anyhow::anyhow!("echo thread panicked"))??;
    let process_cpu = process_cpu_usec().saturating_sub(cpu0) as f64 / 1e6;
    Ok(Report {
        connect_time,
        transfer_time,
        sent,
        echoed,
        rtt,
        process_cpu,
    })
}
