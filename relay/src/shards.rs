//! A relay on several cores: one shard per thread, each with its own client-facing socket in
//! one SO_REUSEPORT group, its own [`Relay`] state and its own session sockets, sharing
//! nothing. A classic BPF program attached to the group hands every datagram to the shard that
//! owns it, in the kernel, so no datagram ever crosses threads:
//!
//! ```text
//!  Data / Close (session at byte 4), Ping (session at byte 12):
//!      shard = the session id's top byte (Relay puts its shard there)
//!  Hello: shard = last byte of the signed ticket (its Ed25519 signature) mod shards,
//!      so one ticket always meets the same shard ("one live session per ticket" holds)
//!  anything else: the kernel's 4-tuple hash
//! ```
//!
//! Steering by session id, not by address, keeps a session on its shard when the client's
//! address changes (NAT rebinding). Budgets are split: each shard holds `max_sessions /
//! shards` sessions and checks `hello_rate / shards` tickets per second; the per-IP ticket
//! budget applies per shard.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use sockworks_engine::driver::Driver;
use sockworks_engine::driver::mmsg::MmsgDriver;
use sockworks_engine::driver::steering::attach_program;
use sockworks_engine::driver::steering::bpf::{self, insn};

use crate::io::{IoStats, bind_client_socket};
use crate::server::{Relay, RelayConfig, Stats};

/// Most shards: the session id's top byte names the shard, and the steering program returns
/// it as the socket's index in the group.
pub const MAX_SHARDS: usize = 64;

/// Datagram types (`wire`'s table) the program reads.
const HELLO: u32 = 1;
const DATA: u32 = 4;
const PING: u32 = 5;
const CLOSE: u32 = 7;

/// The steering program for `shards` sockets (see the module docs). Offsets are into the UDP
/// payload; integers there are little-endian, so the top byte of the u32 at 4 is byte 7.
pub fn program(shards: usize) -> Vec<libc::sock_filter> {
    let n = shards.clamp(1, MAX_SHARDS) as u32;
    // Jump targets are relative to the next instruction; the labels are the indexes below.
    const SESSION4: u8 = 11;
    const HELLO_AT: u8 = 13;
    const FALLBACK: u8 = 22;
    let to = |from: u8, label: u8| label - from - 1;
    vec![
        /* 0 */ insn(bpf::LD | bpf::W | bpf::LEN, 0, 0, 0),
        /* 1 */ insn(bpf::JMP | bpf::JGE | bpf::K, 0, to(1, FALLBACK), 16),
        /* 2 */ insn(bpf::LD | bpf::B | bpf::ABS, 0, 0, 3),
        /* 3 */ insn(bpf::JMP | bpf::JEQ | bpf::K, to(3, SESSION4), 0, DATA),
        /* 4 */ insn(bpf::JMP | bpf::JEQ | bpf::K, to(4, SESSION4), 0, CLOSE),
        /* 5 */ insn(bpf::JMP | bpf::JEQ | bpf::K, to(5, HELLO_AT), 0, HELLO),
        /* 6 */ insn(bpf::JMP | bpf::JEQ | bpf::K, 0, to(6, FALLBACK), PING),
        /* 7 */ insn(bpf::LD | bpf::W | bpf::LEN, 0, 0, 0),
        /* 8 */ insn(bpf::JMP | bpf::JGE | bpf::K, 0, to(8, FALLBACK), 24),
        /* 9 */ insn(bpf::LD | bpf::B | bpf::ABS, 0, 0, 15),
        /* 10 */ insn(bpf::RET | bpf::A, 0, 0, 0),
        // SESSION4: Data and Close carry the session at byte 4.
        /* 11 */
        insn(bpf::LD | bpf::B | bpf::ABS, 0, 0, 7),
        /* 12 */ insn(bpf::RET | bpf::A, 0, 0, 0),
        // HELLO_AT: X = ticket length (u16 at 12), then the ticket's last byte at 14 + X - 1.
        // A load past the end aborts the program with 0: a malformed Hello meets shard 0.
        /* 13 */
        insn(bpf::LD | bpf::B | bpf::ABS, 0, 0, 13),
        /* 14 */ insn(bpf::ALU | bpf::LSH | bpf::K, 0, 0, 8),
        /* 15 */ insn(bpf::MISC | bpf::TAX, 0, 0, 0),
        /* 16 */ insn(bpf::LD | bpf::B | bpf::ABS, 0, 0, 12),
        /* 17 */ insn(bpf::ALU | bpf::ADD | bpf::X, 0, 0, 0),
        /* 18 */ insn(bpf::MISC | bpf::TAX, 0, 0, 0),
        /* 19 */ insn(bpf::LD | bpf::B | bpf::IND, 0, 0, 13),
        /* 20 */ insn(bpf::ALU | bpf::MOD | bpf::K, 0, 0, n),
        /* 21 */ insn(bpf::RET | bpf::A, 0, 0, 0),
        // FALLBACK: an index past the group makes the kernel use its hash.
        /* 22 */
        insn(bpf::RET | bpf::K, 0, 0, u32::MAX),
    ]
}

/// `shards` client-facing sockets on `addr` (port 0: one free port for all), in bind order,
/// with the steering program attached. One shard: a plain socket, no group.
pub fn bind_group(addr: SocketAddr, shards: usize) -> io::Result<Vec<MmsgDriver>> {
    if shards == 0 || shards > MAX_SHARDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("shards must be 1 to {MAX_SHARDS}"),
        ));
    }
    if shards == 1 {
        return Ok(vec![crate::io::bind_listener(addr)?]);
    }
    let first = bind_client_socket(addr, true)?;
    let addr = first.local_addr()?;
    let mut group = vec![first];
    for _ in 1..shards {
        group.push(bind_client_socket(addr, true)?);
    }
    attach_program(group[0].as_fd(), &mut program(shards))?;
    Ok(group)
}

/// Shard `index`'s share of `config`.
pub fn shard_config(config: &RelayConfig, index: usize, shards: usize) -> RelayConfig {
    let mut c = config.clone();
    c.shard = index as u8;
    c.max_sessions = config.max_sessions.div_ceil(shards).max(1);
    c.hello_rate = (config.hello_rate / shards as f32).max(1.0);
    c
}

/// The whole relay's counters: live sessions, the relay's and the I/O loop's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    /// Live sessions.
    pub sessions: usize,
    /// Relay counters, summed over shards.
    pub stats: Stats,
    /// I/O counters, summed over shards.
    pub io: IoStats,
}

/// Runs one shard per socket of `group` (from [`bind_group`]), each on its own thread, until
/// one fails; returns its error. Every `stats_every`, `on_stats` gets the totals (called on
/// shard 0's thread).
pub fn run(
    config: &RelayConfig,
    group: Vec<MmsgDriver>,
    stats_every: Option<Duration>,
    on_stats: impl Fn(&Totals) + Send + 'static,
) -> io::Result<()> {
    let shards = group.len();
    let latest: Arc<Mutex<Vec<Totals>>> = Arc::new(Mutex::new(vec![Totals::default(); shards]));
    let on_stats = Arc::new(Mutex::new(on_stats));
    let (done_tx, done) = mpsc::channel();
    for (index, listener) in group.into_iter().enumerate() {
        let relay = Relay::new(shard_config(config, index, shards));
        let (latest, on_stats, done_tx) = (latest.clone(), on_stats.clone(), done_tx.clone());
        std::thread::Builder::new()
            .name(format!("relay-shard-{index}"))
            .spawn(move || {
                let result = crate::io::run(relay, listener, stats_every, |relay, io| {
                    let mut all = latest.lock().unwrap_or_else(|p| p.into_inner());
                    all[index] = Totals {
                        sessions: relay.sessions(),
                        stats: relay.stats(),
                        io: *io,
                    };
                    if index == 0 {
                        let mut sum = Totals::default();
                        for t in all.iter() {
                            sum.sessions += t.sessions;
                            sum.stats += &t.stats;
                            sum.io += &t.io;
                        }
                        drop(all);
                        (on_stats.lock().unwrap_or_else(|p| p.into_inner()))(&sum);
                    }
                });
                // The receiver lives until the first shard ends.
                let _ = done_tx.send(result);
            })?;
    }
    drop(done_tx);
    // Shards run forever; the first to stop is the answer.
    done.recv()
        .unwrap_or_else(|_| Err(io::Error::other("every relay shard ended")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for the instructions [`program`] uses, with the kernel's
    /// rule that a load past the end ends the program with 0.
    fn run_program(prog: &[libc::sock_filter], pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                c if c == bpf::LD | bpf::W | bpf::LEN => a = pkt.len() as u32,
                c if c == bpf::LD | bpf::B | bpf::ABS => match pkt.get(i.k as usize) {
                    Some(&b) => a = u32::from(b),
                    None => return 0,
                },
                c if c == bpf::LD | bpf::B | bpf::IND => match pkt.get((x + i.k) as usize) {
                    Some(&b) => a = u32::from(b),
                    None => return 0,
                },
                c if c == bpf::ALU | bpf::LSH | bpf::K => a <<= i.k,
                c if c == bpf::ALU | bpf::ADD | bpf::X => a = a.wrapping_add(x),
                c if c == bpf::ALU | bpf::MOD | bpf::K => a %= i.k,
                c if c == bpf::MISC | bpf::TAX => x = a,
                c if c == bpf::JMP | bpf::JEQ | bpf::K => {
                    pc += usize::from(if a == i.k { i.jt } else { i.jf });
                }
                c if c == bpf::JMP | bpf::JGE | bpf::K => {
                    pc += usize::from(if a >= i.k { i.jt } else { i.jf });
                }
                c if c == bpf::RET | bpf::A => return a,
                c if c == bpf::RET | bpf::K => return i.k,
                other => panic!("instruction {other:#x} not modelled"),
            }
        }
    }

    #[test]
    fn sessions_go_to_the_shard_in_their_id_and_hellos_by_ticket_signature() {
        use crate::wire::{self, Message};
        let prog = program(4);
        for shard in 0..4u32 {
            let session = (shard << 24) | 0x0005_0123;
            let mut data = Vec::new();
            wire::encode_data(session, 77, b"gns packet", &mut data);
            assert_eq!(run_program(&prog, &data), shard);
            let mut close = Vec::new();
            Message::Close { session, token: 77 }.encode(&mut close);
            assert_eq!(run_program(&prog, &close), shard);
            let mut ping = Vec::new();
            Message::Ping {
                timestamp: 5,
                session,
                token: 77,
            }
            .encode(&mut ping);
            assert_eq!(run_program(&prog, &ping), shard);
        }
        // A Hello: the last byte of its ticket, mod 4, whatever the padding after it.
        for last in [0u8, 1, 2, 3, 200, 255] {
            let mut ticket = vec![9u8; 300];
            ticket[299] = last;
            let mut hello = Vec::new();
            Message::Hello {
                nonce: 1,
                ticket: &ticket,
            }
            .encode(&mut hello);
            hello.resize(hello.len() + 40, 0);
            assert_eq!(run_program(&prog, &hello), u32::from(last) % 4);
        }
        // Too short, unknown types: the kernel's hash.
        assert_eq!(run_program(&prog, b"SY\x01\x04short"), u32::MAX);
        assert_eq!(run_program(&prog, &[0u8; 64]), u32::MAX);
        // A Hello whose length field points past the datagram: shard 0, no panic.
        let mut bad = b"SY\x01\x01".to_vec();
        bad.extend_from_slice(&[0; 8]);
        bad.extend_from_slice(&[0xff, 0xff]);
        bad.extend_from_slice(&[0; 10]);
        assert_eq!(run_program(&prog, &bad), 0);
    }

    #[test]
    fn shares_split_the_budgets() {
        let trust = crate::ticket::trust_of(&[]);
        let mut c = RelayConfig::new(trust, crate::RoutingKey::new(&[1; 32]), "fra", [0; 32]);
        c.max_sessions = 10_001;
        c.hello_rate = 20_000.0;
        let s = shard_config(&c, 3, 4);
        assert_eq!((s.shard, s.max_sessions, s.hello_rate), (3, 2501, 5000.0));
        assert!(bind_group("127.0.0.1:0".parse().unwrap(), 0).is_err());
        assert!(bind_group("127.0.0.1:0".parse().unwrap(), MAX_SHARDS + 1).is_err());
    }
}
