//! The raw-UDP baseline that Sockworks figures are compared against: an echo over 127.0.0.1
//! through the mmsg driver with no protocol and no crypto, so the difference to a Sockworks
//! run is what the protocol costs.
//!
//! ```text
//!  client thread: C logical clients × window W in flight ──UDP──► server thread
//!     [client u32 | seq u32 | filler…]  ◄──────── echo (recv_batch → send_batch) ──┘
//! ```
//!
//! Each thread reads its own CPU time (`shard::thread_cpu_usec`, as the shards do) when it
//! ends, so CPU per packet is per side. Lost datagrams (full socket buffers) are detected by a
//! stall and the windows re-opened; they are counted, not retried.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use sockworks_engine::driver::mmsg::{MmsgConfig, MmsgDriver, MmsgStats};
use sockworks_engine::driver::{Driver, RxBatch, TxBatch};

/// Command line.
#[derive(Debug, Clone, Parser)]
#[command(about = "UDP echo through the mmsg driver, no protocol, no crypto")]
struct Args {
    /// Run time in seconds.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Datagram size in bytes (at least 8).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Logical clients (one socket; the first 4 bytes name the client).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Datagrams in flight per client.
    #[arg(long, default_value_t = 4)]
    window: usize,
    /// Client sockets; client `c` uses socket `c % sockets`. More sockets mean more distinct
    /// destinations for the server, so fewer of its echoes share a GSO send (game servers
    /// send a packet or two to each of many peers per tick).
    #[arg(long, default_value_t = 1)]
    sockets: usize,
    /// Turn UDP GSO and GRO off on both sockets.
    #[arg(long)]
    no_offload: bool,
    /// Server address (port 0: any free port); the client binds the same family.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
}

#[expect(
    clippy::disallowed_methods,
    reason = "the baseline measures wall-clock time"
)]
fn now() -> Instant {
    Instant::now()
}

/// CPU time of the calling thread, read the same way as the shards' (so the two compare).
fn thread_cpu() -> Duration {
    Duration::from_micros(sockworks_engine::shard::thread_cpu_usec())
}

fn config(args: &Args) -> MmsgConfig {
    MmsgConfig {
        reuse_port: false,
        gso: !args.no_offload,
        gro: !args.no_offload,
        ..MmsgConfig::default()
    }
}

/// What one side did.
struct Side {
    packets: u64,
    cpu: Duration,
    offloads: String,
}

fn server(
    args: Args,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<SocketAddr>,
) -> anyhow::Result<Side> {
    let mut drv = MmsgDriver::bind_with(args.bind, config(&args)).context("server bind")?;
    ready.send(drv.local_addr()?)?;
    let mut rx = RxBatch::new(64);
    let mut tx = TxBatch::with_capacity(64);
    let mut echoed = 0u64;
    while !stop.load(Ordering::Relaxed) {
        rx.clear();
        let n = drv.recv_batch(&mut rx)?;
        for i in 0..n {
            let (from, data) = rx.get(i).context("entry")?;
            tx.push(from.into(), data);
        }
        if !tx.is_empty() {
            let sent = drv.send_batch(&tx)?;
            echoed += sent as u64;
            tx.consume(sent);
        }
        if n == 0 {
            drv.wait(Some(Duration::from_millis(5)))?;
        }
    }
    let info = drv.info()?;
    Ok(Side {
        packets: echoed,
        cpu: thread_cpu(),
        offloads: format!("gso={} gro={} {:?}", info.gso, info.gro, drv.stats()),
    })
}

fn client(args: Args, to: SocketAddr) -> anyhow::Result<(Side, u64, Duration)> {
    let local = SocketAddr::new(
        if to.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        },
        0,
    );
    let mut drvs = (0..args.sockets)
        .map(|_| MmsgDriver::bind_with(local, config(&args)).context("client bind"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rx = RxBatch::new(64);
    let mut txs: Vec<TxBatch> = (0..args.sockets)
        .map(|_| TxBatch::with_capacity(args.clients * args.window / args.sockets + 1))
        .collect();
    let mut outstanding = vec![0usize; args.clients];
    let filler = vec![0x5a_u8; args.size - 8];
    let (mut received, mut sent, mut seq, mut reopened) = (0u64, 0u64, 0u32, 0u64);
    let start = now();
    let end = start + Duration::from_secs_f64(args.secs);
    let mut last_progress = start;
    loop {
        let t = now();
        if t >= end {
            break;
        }
        let mut got_any = 0;
        for (s, (drv, tx)) in drvs.iter_mut().zip(&mut txs).enumerate() {
            if tx.is_empty() {
                let mine = outstanding
                    .iter_mut()
                    .enumerate()
                    .skip(s)
                    .step_by(args.sockets);
                for (c, out) in mine {
                    while *out < args.window {
                        tx.push_with(|v| {
                            v.extend_from_slice(&(c as u32).to_le_bytes());
                            v.extend_from_slice(&seq.to_le_bytes());
                            v.extend_from_slice(&filler);
                            Some(to.into())
                        });
                        seq = seq.wrapping_add(1);
                        *out += 1;
                    }
                }
            }
            let n = drv.send_batch(tx)?;
            sent += n as u64;
            tx.consume(n);
            rx.clear();
            let got = drv.recv_batch(&mut rx)?;
            for i in 0..got {
                let (_, d) = rx.get(i).context("entry")?;
                let c = d.get(..4).map_or(usize::MAX, |b| {
                    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
                });
                if let Some(out) = outstanding.get_mut(c) {
                    *out = out.saturating_sub(1);
                }
            }
            got_any += got;
        }
        received += got_any as u64;
        if got_any > 0 {
            last_progress = t;
        } else if t.duration_since(last_progress) > Duration::from_millis(50) {
            // Whatever is still out was dropped by a full buffer: re-open the windows.
            reopened += outstanding.iter().map(|&o| o as u64).sum::<u64>();
            outstanding.iter_mut().for_each(|o| *o = 0);
            last_progress = t;
        } else {
            // Waits on the first socket only; the others are read on every pass anyway.
            drvs[0].wait(Some(Duration::from_millis(1)))?;
        }
    }
    let elapsed = start.elapsed();
    let info = drvs[0].info()?;
    let mut stats = MmsgStats::default();
    for d in &drvs {
        let st = d.stats();
        stats.gso_messages += st.gso_messages;
        stats.gro_coalesced += st.gro_coalesced;
        stats.carried += st.carried;
    }
    Ok((
        Side {
            packets: received,
            cpu: thread_cpu(),
            offloads: format!("gso={} gro={} {:?} sent={sent}", info.gso, info.gro, stats),
        },
        reopened,
        elapsed,
    ))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.size >= 8 && args.size <= 2048,
        "--size must be 8..=2048"
    );
    ensure!(
        args.clients > 0 && args.window > 0,
        "--clients and --window must be > 0"
    );
    ensure!(
        args.secs > 0.0 && args.secs <= 600.0,
        "--secs must be in (0, 600]"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let srv = {
        let (args, stop) = (args.clone(), stop.clone());
        std::thread::spawn(move || server(args, stop, ready_tx))
    };
    let addr = ready_rx
        .recv_timeout(Duration::from_secs(5))
        .context("server did not start")?;
    let cli = {
        let args = args.clone();
        std::thread::spawn(move || client(args, addr))
    };
    let client_result = cli
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"));
    stop.store(true, Ordering::Relaxed);
    let server_side = srv
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    let (client_side, lost, elapsed) = client_result??;

    let secs = elapsed.as_secs_f64();
    let pps = client_side.packets as f64 / secs;
    let per = |cpu: Duration, n: u64| cpu.as_secs_f64() * 1e9 / n.max(1) as f64;
    let server_ns = per(server_side.cpu, server_side.packets);
    // The client sends and receives each packet, like the server.
    let client_ns = per(client_side.cpu, client_side.packets);
    let offload = if args.no_offload { "off" } else { "on" };
    println!(
        "raw_echo: {} B x {} clients x window {} over {} client sockets, offload {offload}, {secs:.2} s on {}",
        args.size, args.clients, args.window, args.sockets, addr
    );
    println!(
        "  {pps:.0} echoes/s ({:.2} Gbit/s each way), {} echoes, {lost} lost",
        pps * args.size as f64 * 8.0 / 1e9,
        client_side.packets
    );
    println!(
        "  server: cpu {:.2} s, {server_ns:.0} ns/packet (recv+send); {}",
        server_side.cpu.as_secs_f64(),
        server_side.offloads
    );
    println!(
        "  client: cpu {:.2} s, {client_ns:.0} ns/packet (send+recv); {}",
        client_side.cpu.as_secs_f64(),
        client_side.offloads
    );
    println!(
        "RAW_ECHO size={} clients={} window={} sockets={} offload={offload} pps={pps:.0} server_ns_per_pkt={server_ns:.0} client_ns_per_pkt={client_ns:.0} lost={lost}",
        args.size, args.clients, args.window, args.sockets
    );
    Ok(())
}
