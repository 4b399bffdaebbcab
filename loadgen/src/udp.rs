//! The main job: a Sockworks echo server and a load of client connections over real UDP on
//! 127.0.0.1, each on its own thread with the blocking driver. Every client connection keeps a
//! window of reliable messages in flight; the server echoes each one; the client checks every
//! echo byte for byte and in order, and records its round-trip time. (Unreliable load, with
//! loss accounting, comes with the runtime.)
//!
//! ```text
//!  client thread: UdpDriver (N connections, one socket) ──UDP──► server thread: UdpDriver
//!     send [seq u64 | sent_at u64 | pattern…] ◄──────── echo ─────── (listen, accept, echo)
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use hdrhistogram::Histogram;
use sockworks_engine::blocking::UdpDriver;
use sockworks_engine::proto::connection::ApiState;
use sockworks_engine::proto::endpoint::EndpointError;
use sockworks_engine::proto::snp::{SendError, send_flags};

use crate::sharded::{endpoint_config, payload};
use sockworks_engine::shard::{App, EchoApp};

/// What one run does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UdpLoad {
    /// Client connections.
    pub connections: u32,
    /// Messages each connection sends (and gets echoed).
    pub messages: u64,
    /// Message size in bytes (at least 16).
    pub size: usize,
    /// Messages in flight per connection.
    pub window: u64,
    /// Send rate per connection, bytes per second (both directions).
    pub rate: u32,
    /// Wall-clock bound of the whole run.
    pub max: Duration,
    /// RNG seed of both endpoints.
    pub seed: u64,
}

/// What a run measured.
#[derive(Debug)]
pub(crate) struct UdpReport {
    /// Time to establish every connection.
    pub connect_time: Duration,
    /// Time from first send to last echo.
    pub transfer_time: Duration,
    /// Echoes received intact.
    pub echoed: u64,
    /// Messages sent.
    pub sent: u64,
    /// Round-trip times, microseconds.
    pub rtt: Histogram<u64>,
    /// Server thread CPU time.
    pub server_cpu: Duration,
    /// Client thread CPU time.
    pub client_cpu: Duration,
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    Duration::from_micros(sockworks_engine::shard::thread_cpu_usec())
}

fn server(
    load: UdpLoad,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<std::net::SocketAddr>,
) -> anyhow::Result<Duration> {
    let mut drv = UdpDriver::bind(
        "127.0.0.1:0".parse()?,
        endpoint_config(true, load.rate),
        load.seed ^ 0x5e,
    )?;
    ready.send(drv.local_addr()?)?;
    let mut echo = EchoApp;
    drv.run_until(load.max + Duration::from_secs(5), |ep, now| {
        echo.on_tick(ep, now);
        stop.load(Ordering::Relaxed)
    })?;
    Ok(thread_cpu())
}

/// Runs the load; fails if any message is lost, corrupted or out of order (reliable).
pub(crate) fn run(load: UdpLoad) -> anyhow::Result<UdpReport> {
    ensure!(
        load.size >= 16,
        "messages carry a 16-byte header: size must be at least 16"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let server_stop = stop.clone();
    let server = std::thread::Builder::new()
        .name("sockworks-server".into())
        .spawn(move || server(load, server_stop, tx))?;
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .context("server did not start")?;
    let result = client(load, addr);
    stop.store(true, Ordering::Relaxed);
    let server_cpu = server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    let mut report = result?;
    report.server_cpu = server_cpu;
    Ok(report)
}

fn client(load: UdpLoad, server: std::net::SocketAddr) -> anyhow::Result<UdpReport> {
    let mut drv = UdpDriver::bind(
        "127.0.0.1:0".parse()?,
        endpoint_config(false, load.rate),
        load.seed,
    )?;
    let t0 = drv.now();
    let mut ids = Vec::new();
    for _ in 0..load.connections {
        ids.push(drv.endpoint.connect(t0, server.into(), None)?);
    }
    let mut up = 0;
    let connected = drv.run_until(load.max, |ep, _| {
        while let Some(ev) = ep.poll_event() {
            match ev.change.new {
                ApiState::Connected => up += 1,
                ApiState::ClosedByPeer | ApiState::ProblemDetectedLocally => up = u32::MAX,
                _ => {}
            }
        }
        up >= load.connections
    })?;
    ensure!(
        connected && up == load.connections,
        "only {up} of {} connections came up",
        load.connections
    );
    let t1 = drv.now();

    let n = ids.len();
    let mut next_seq = vec![0u64; n];
    let mut next_echo = vec![0u64; n];
    let mut echoed = 0u64;
    let mut sent = 0u64;
    let mut rtt = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let flags = send_flags::RELIABLE;
    let total = load.messages * n as u64;
    let mut failure: Option<String> = None;
    let done = drv.run_until(load.max, |ep, now| {
        for (i, &c) in ids.iter().enumerate() {
            while let Some(m) = ep.poll_message(c) {
                let seq = u64::from_le_bytes(m.data[..8].try_into().unwrap_or_default());
                let at = u64::from_le_bytes(m.data[8..16].try_into().unwrap_or_default());
                if m.data != payload(seq, at, load.size) || seq != next_echo[i] {
                    failure = Some(format!(
                        "connection {i}: echo {seq} corrupted or out of order"
                    ));
                }
                next_echo[i] = seq + 1;
                echoed += 1;
                let _ = rtt.record(now.as_micros().saturating_sub(at).max(1));
            }
            while next_seq[i] < load.messages && next_seq[i] < next_echo[i] + load.window {
                let msg = payload(next_seq[i], now.as_micros(), load.size);
                match ep.send_message(now, c, 0, flags, msg) {
                    Ok(_) => {
                        next_seq[i] += 1;
                        sent += 1;
                    }
                    Err(EndpointError::Conn(
                        sockworks_engine::proto::connection::ConnError::Send(
                            SendError::LimitExceeded,
                        ),
                    )) => break,
                    Err(e) => {
                        failure = Some(format!("connection {i}: send failed: {e}"));
                        break;
                    }
                }
            }
        }
        failure.is_some() || echoed == total
    })?;
    if let Some(f) = failure {
        bail!(f);
    }
    let t2 = drv.now();
    for &c in &ids {
        let now = drv.now();
        let _ = drv.endpoint.close(now, c, 0, "load done", false);
    }
    drv.run_until(Duration::from_millis(50), |_, _| false)?;
    ensure!(done, "timed out with {echoed} of {total} echoes");
    Ok(UdpReport {
        connect_time: t1 - t0,
        transfer_time: t2 - t1,
        echoed,
        sent,
        rtt,
        server_cpu: Duration::ZERO,
        client_cpu: thread_cpu(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_udp_load_echoes_everything_in_order() {
        let load = UdpLoad {
            connections: 4,
            messages: 200,
            size: 700,
            window: 8,
            rate: 4_000_000,
            max: Duration::from_secs(20),
            seed: 3,
        };
        let r = run(load).unwrap();
        assert_eq!(r.sent, 800);
        assert_eq!(r.echoed, 800);
        assert_eq!(r.rtt.len(), 800);
    }

    #[test]
    fn messages_must_hold_the_header() {
        let load = UdpLoad {
            connections: 1,
            messages: 1,
            size: 8,
            window: 1,
            rate: 1_000_000,
            max: Duration::from_secs(1),
            seed: 1,
        };
        assert!(run(load).is_err());
    }
}
