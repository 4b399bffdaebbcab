//! Honest traffic for the hostile-traffic tests: a server thread that echoes every message it
//! receives, and clients that send one reliable message per connection per round, check every
//! echo (content, exactly once, in order) and record its round-trip time. Both ends send
//! without the Nagle delay, so the times measure the network path and the shards, not the
//! 5 ms batching window.
//!
//! ```text
//!  Honest::round ── msg(idx, seq, filler) ──► server poll group ─► echo ─┐
//!        ▲                                                               │
//!        └──── client poll group: seq == expected[idx], content, RTT ◄───┘
//! ```

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed lock is a failed test"
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sockworks::engine::shard::Clock;
use sockworks::engine::time::Timestamp;
use sockworks::{Connection, Message, PollGroup, Sockets, send_flags};

use crate::common::{u32_at, wait_until};

/// Echoes every message arriving on `server`'s poll group `group` back on its connection,
/// reliably and without the Nagle delay, until `stop`. Returns how many it echoed.
pub(crate) fn echo(server: &Sockets, group: PollGroup, stop: &AtomicBool) -> u64 {
    let mut msgs: Vec<Message> = Vec::new();
    let mut echoed = 0;
    while !stop.load(Ordering::Relaxed) {
        let seen = server.activity();
        msgs.clear();
        if server.receive_messages_on_poll_group(group, &mut msgs, 256) <= 0 {
            server.wait_for_activity(seen, Duration::from_millis(20));
            continue;
        }
        for m in &msgs {
            let sent =
                server.send_message_to_connection(m.conn, &m.data, send_flags::RELIABLE_NO_NAGLE);
            assert!(sent.is_ok(), "echo on {:?}: {sent:?}", m.conn);
            echoed += 1;
        }
    }
    echoed
}

/// A poll group of `s` holding `conns`.
pub(crate) fn group_of(s: &Sockets, conns: impl IntoIterator<Item = Connection>) -> PollGroup {
    let g = s.create_poll_group();
    for c in conns {
        assert!(s.set_connection_poll_group(c, g));
    }
    g
}

/// The filler of message `seq` on connection `idx`: lengths from 8 to ~3 KB (some span
/// several packets), bytes that depend on both.
fn payload(idx: u32, seq: u32) -> Vec<u8> {
    let len = 8 + (seq as usize * 37 + idx as usize * 13) % 3000;
    let mut p: Vec<u8> = (0..len)
        .map(|k| (idx.wrapping_mul(31) ^ seq.wrapping_mul(7)).wrapping_add(k as u32) as u8)
        .collect();
    p[..4].copy_from_slice(&idx.to_le_bytes());
    p[4..8].copy_from_slice(&seq.to_le_bytes());
    p
}

/// The client ends of honest connections and what each has sent and had echoed.
pub(crate) struct Honest<'a> {
    client: &'a Sockets,
    group: PollGroup,
    conns: Vec<Connection>,
    /// Next sequence number to send / expected back, per connection.
    next: Vec<u32>,
    sent_at: Vec<Timestamp>,
    clock: Clock,
}

impl<'a> Honest<'a> {
    /// Honest traffic on `conns` (client ends, all of `client`).
    pub(crate) fn new(client: &'a Sockets, conns: Vec<Connection>) -> Self {
        let group = group_of(client, conns.iter().copied());
        let clock = Clock::new();
        let n = conns.len();
        Self {
            client,
            group,
            conns,
            next: vec![0; n],
            sent_at: vec![clock.now(); n],
            clock,
        }
    }

    /// Messages echoed so far (each connection's count, summed).
    pub(crate) fn delivered(&self) -> u64 {
        self.next.iter().map(|&n| u64::from(n)).sum()
    }

    /// `rounds` rounds: a message on every connection, then every echo back (checked). Returns
    /// each echo's round-trip time.
    pub(crate) fn rounds(&mut self, rounds: usize) -> Vec<Duration> {
        let mut rtts = Vec::new();
        let mut msgs = Vec::new();
        for _ in 0..rounds {
            for (i, &c) in self.conns.iter().enumerate() {
                let p = payload(i as u32, self.next[i]);
                self.sent_at[i] = self.clock.now();
                let sent =
                    self.client
                        .send_message_to_connection(c, &p, send_flags::RELIABLE_NO_NAGLE);
                assert!(sent.is_ok(), "send on {c:?}: {sent:?}");
            }
            let mut got = 0;
            let all = wait_until(&[self.client], || {
                msgs.clear();
                self.client
                    .receive_messages_on_poll_group(self.group, &mut msgs, 1024);
                for m in &msgs {
                    let idx = u32_at(&m.data, 0) as usize;
                    assert_eq!(m.conn, self.conns[idx], "echo on its own connection");
                    let seq = u32_at(&m.data, 4);
                    assert_eq!(
                        seq, self.next[idx],
                        "echo {seq} on connection {idx}: once, in order"
                    );
                    assert_eq!(m.data, payload(idx as u32, seq), "echo content intact");
                    self.next[idx] += 1;
                    rtts.push(self.clock.now().saturating_since(self.sent_at[idx]));
                    got += 1;
                }
                got >= self.conns.len()
            });
            assert!(all, "{got} of {} echoes came back", self.conns.len());
        }
        rtts
    }
}

/// The `q` quantile (0..=1) of `v` (sorted here).
pub(crate) fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied().unwrap_or_default()
}
