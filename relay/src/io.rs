//! The relay's I/O loop: one thread, one epoll set over the client-facing socket and one
//! socket per session toward its server, batched with the engine's recvmmsg / sendmmsg driver
//! ([`MmsgDriver`], GSO on send, GRO on the client-facing receive).
//!
//! ```text
//!  epoll ─► client socket readable  ─► recvmmsg (64) ─► Relay::handle_client each
//!                                        Forward: runs per session ─► sendmmsg on its socket
//!                                        Reply / Welcome          ─► sendmmsg on the client socket
//!        ─► session socket readable ─► recvmmsg (64) ─► Relay::handle_server each
//!                                        framed as Data (one copy) ─► sendmmsg to clients
//!        ─► timeout: sweep idle sessions (1 s), stats callback
//! ```
//!
//! Nothing is queued: when a socket buffer is full the rest of a batch is dropped (and
//! counted), as a router would, so memory stays bounded under any load.

#![allow(
    unsafe_code,
    reason = "epoll and setrlimit syscalls; each block has a SAFETY note"
)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use sockworks_engine::driver::mmsg::{MmsgConfig, MmsgDriver};
use sockworks_engine::driver::{Driver, RxBatch, TxBatch};

use crate::clock;
use crate::server::{ClientAction, Relay};
use crate::wire;

/// Epoll token of the client-facing socket (session sockets use their slot).
const LISTENER: u64 = u64::MAX;
/// Receive batches taken from one socket per wake-up before the others get a turn.
const ROUNDS: usize = 8;

/// I/O counters (the relay's own are in [`crate::Stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Datagrams dropped because a socket's send buffer was full.
    pub send_drops: u64,
    /// Receive or send errors (ICMP errors from servers included).
    pub errors: u64,
    /// Sessions refused because their server socket could not be opened (e.g. no fds).
    pub open_failures: u64,
}

/// Sums the counters of a sharded relay's shards.
impl std::ops::AddAssign<&IoStats> for IoStats {
    fn add_assign(&mut self, other: &IoStats) {
        self.send_drops += other.send_drops;
        self.errors += other.errors;
        self.open_failures += other.open_failures;
    }
}

/// An epoll instance.
struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> io::Result<Self> {
        // SAFETY: plain syscall without pointers; the result is checked before use.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own and nothing else closes.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ctl(&self, op: i32, fd: i32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        let r = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> io::Result<usize> {
        let ms = timeout.as_millis().min(1000) as i32;
        let max = events.len().min(i32::MAX as usize) as i32;
        // SAFETY: `events` is a writable buffer of `max` epoll_event entries.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), max, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        Ok(n as usize)
    }
}

/// Raises the soft open-file limit to the hard one (each session holds two descriptors: its
/// socket and the driver's eventfd). Returns the limit now in force.
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to write into.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit read from the kernel with cur ≤ max.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// The client-facing socket: no SO_REUSEPORT (one relay per port), 8 MiB buffers.
pub fn bind_listener(addr: SocketAddr) -> io::Result<MmsgDriver> {
    bind_client_socket(addr, false)
}

/// A client-facing socket, in a SO_REUSEPORT group when `shared` (a sharded relay's).
pub(crate) fn bind_client_socket(addr: SocketAddr, shared: bool) -> io::Result<MmsgDriver> {
    MmsgDriver::bind_with(
        addr,
        MmsgConfig {
            reuse_port: shared,
            recv_buffer: 8 << 20,
            send_buffer: 8 << 20,
            gso: true,
            gro: true,
        },
    )
}

/// A session's socket toward `server`: an ephemeral port, no GRO (its 4 MiB of buffers per
/// socket would not scale to thousands of sessions).
fn bind_upstream(server: SocketAddr) -> io::Result<MmsgDriver> {
    let any: IpAddr = if server.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    MmsgDriver::bind_with(
        SocketAddr::new(any, 0),
        MmsgConfig {
            reuse_port: false,
            recv_buffer: 1 << 20,
            send_buffer: 1 << 20,
            gso: true,
            gro: false,
        },
    )
}

/// Sends all of `tx` on `driver`, dropping (and counting) what a full buffer refuses.
fn flush(driver: &mut MmsgDriver, tx: &mut TxBatch, stats: &mut IoStats) {
    while !tx.is_empty() {
        match driver.send_batch(tx) {
            Ok(0) => {
                stats.send_drops += tx.len() as u64;
                break;
            }
            Ok(n) => tx.consume(n),
            Err(_) => {
                stats.errors += 1;
                stats.send_drops += tx.len() as u64;
                break;
            }
        }
    }
    tx.clear();
}

/// Runs the relay on `listener` until an unrecoverable socket error. `on_stats` is called
/// every `stats_every` (if any) with the relay and the I/O counters.
pub fn run(
    mut relay: Relay,
    mut listener: MmsgDriver,
    stats_every: Option<Duration>,
    mut on_stats: impl FnMut(&Relay, &IoStats),
) -> io::Result<()> {
    let epoll = Epoll::new()?;
    epoll.ctl(libc::EPOLL_CTL_ADD, listener.as_fd().as_raw_fd(), LISTENER)?;
    let mut upstream: Vec<Option<MmsgDriver>> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut rx = RxBatch::new(64);
    let mut to_clients = TxBatch::with_capacity(64);
    let mut to_server = TxBatch::with_capacity(64);
    let mut out = Vec::with_capacity(64);
    let mut closed = Vec::new();
    let mut io_stats = IoStats::default();
    let start = clock::now();
    let mut next_sweep = Duration::from_secs(1);
    let mut next_stats = stats_every.unwrap_or(Duration::MAX);
    loop {
        let now = clock::now().duration_since(start);
        let deadline = next_sweep.min(next_stats);
        let n = epoll.wait(&mut events, deadline.saturating_sub(now))?;
        for ev in events.iter().take(n) {
            let token = ev.u64;
            if token == LISTENER {
                for _ in 0..ROUNDS {
                    rx.clear();
                    match listener.recv_batch(&mut rx) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(_) => {
                            io_stats.errors += 1;
                            break;
                        }
                    }
                    let now = clock::now().duration_since(start);
                    let unix = clock::unix_now();
                    // The session whose datagrams `to_server` holds.
                    let mut pending: Option<usize> = None;
                    for i in 0..rx.len() {
                        let Some((from, bytes)) = rx.get(i) else {
                            continue;
                        };
                        let action = relay.handle_client(now, unix, from, bytes, &mut out);
                        match action {
                            ClientAction::Drop => {}
                            ClientAction::Reply(to) => to_clients.push(to.into(), &out),
                            ClientAction::Forward { slot, server } => {
                                if pending != Some(slot) {
                                    if let Some(p) = pending
                                        && let Some(Some(d)) = upstream.get_mut(p)
                                    {
                                        flush(d, &mut to_server, &mut io_stats);
                                    }
                                    to_server.clear();
                                    pending = Some(slot);
                                }
                                let payload = bytes.get(wire::DATA_OVERHEAD..).unwrap_or_default();
                                to_server.push(server.into(), payload);
                            }
                            ClientAction::Open {
                                slot,
                                server,
                                to,
                                nonce,
                            } => {
                                let opened = bind_upstream(server).and_then(|d| {
                                    epoll.ctl(
                                        libc::EPOLL_CTL_ADD,
                                        d.as_fd().as_raw_fd(),
                                        slot as u64,
                                    )?;
                                    Ok(d)
                                });
                                match opened {
                                    Ok(d) => {
                                        if upstream.len() <= slot {
                                            upstream.resize_with(slot + 1, || None);
                                        }
                                        upstream[slot] = Some(d);
                                    }
                                    Err(_) => {
                                        io_stats.open_failures += 1;
                                        relay.abort_open(slot, nonce, &mut out);
                                    }
                                }
                                to_clients.push(to.into(), &out);
                            }
                            ClientAction::Closed { slot } => {
                                if pending == Some(slot) {
                                    to_server.clear();
                                    pending = None;
                                }
                                close_upstream(&epoll, &mut upstream, slot);
                            }
                        }
                    }
                    if let Some(p) = pending
                        && let Some(Some(d)) = upstream.get_mut(p)
                    {
                        flush(d, &mut to_server, &mut io_stats);
                    }
                    to_server.clear();
                    flush(&mut listener, &mut to_clients, &mut io_stats);
                }
            } else {
                let slot = token as usize;
                for _ in 0..ROUNDS {
                    let Some(Some(d)) = upstream.get_mut(slot) else {
                        break;
                    };
                    rx.clear();
                    match d.recv_batch(&mut rx) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(_) => {
                            io_stats.errors += 1;
                            break;
                        }
                    }
                    for i in 0..rx.len() {
                        let Some((from, payload)) = rx.get(i) else {
                            continue;
                        };
                        if let Some((client, session, token)) =
                            relay.handle_server(slot, from, payload.len())
                        {
                            to_clients.push_with(|v| {
                                wire::encode_data(session, token, payload, v);
                                Some(client.into())
                            });
                        }
                    }
                    flush(&mut listener, &mut to_clients, &mut io_stats);
                }
            }
        }
        let now = clock::now().duration_since(start);
        if now >= next_sweep {
            relay.sweep(now, &mut closed);
            for slot in closed.drain(..) {
                close_upstream(&epoll, &mut upstream, slot);
            }
            next_sweep = now + Duration::from_secs(1);
        }
        if let Some(every) = stats_every
            && now >= next_stats
        {
            on_stats(&relay, &io_stats);
            next_stats = now + every;
        }
    }
}

fn close_upstream(epoll: &Epoll, upstream: &mut [Option<MmsgDriver>], slot: usize) {
    if let Some(d) = upstream.get_mut(slot).and_then(Option::take) {
        let _ = epoll.ctl(libc::EPOLL_CTL_DEL, d.as_fd().as_raw_fd(), 0);
    }
}
