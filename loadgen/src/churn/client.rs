//! The client side of `--mode churn`: connection slots on the public `sockworks` API, driven
//! by one application thread, every echo checked; per-second samples.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use hdrhistogram::Histogram;
use sockworks::{
    ConfigValue, Connection, ConnectionState, Message, OutMessage, PollGroup, Sockets,
    SocketsConfig, StatusChanged, send_flags,
};

use super::ChurnLoad;
use crate::idle::rss_kib;
use crate::series::Sample;
use crate::versus::procs;
/// Status changes, collected by the callback, handled by the app thread.
pub(super) type Changes = Arc<Mutex<Vec<StatusChanged>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No connection (after the churn ends).
    Empty,
    Connecting,
    Open,
}

/// One connection slot and its current connection.
#[derive(Debug, Clone, Copy)]
struct Slot {
    conn: Connection,
    /// Connections this slot has had (tells a slot's successive connections apart).
    generation: u32,
    phase: Phase,
    sent: u64,
    received: u64,
    /// When the connect was asked, µs since the start.
    asked_us: u64,
}

/// The message header: slot, generation, sequence, send time (µs since the start).
pub(super) const HEADER: usize = 24;

/// The payload of message `seq` of `slot`'s connection number `generation`.
pub(super) fn payload(size: usize, slot: u32, generation: u32, seq: u64, t_us: u64) -> Vec<u8> {
    let mut v = vec![0u8; size.max(HEADER)];
    v[..4].copy_from_slice(&slot.to_le_bytes());
    v[4..8].copy_from_slice(&generation.to_le_bytes());
    v[8..16].copy_from_slice(&seq.to_le_bytes());
    v[16..24].copy_from_slice(&t_us.to_le_bytes());
    let mix = seq ^ (u64::from(generation) << 8) ^ (u64::from(slot) << 24);
    for (i, b) in v.iter_mut().enumerate().skip(HEADER) {
        *b = (i as u64 ^ mix ^ (mix >> 8)) as u8;
    }
    v
}

/// Counters of the whole run and of the current second.
#[derive(Debug, Default)]
pub(super) struct Totals {
    pub(super) sent: u64,
    pub(super) echoed: u64,
    pub(super) completed: u64,
    pub(super) connects: u64,
    /// Connections that failed or dropped, and the reliable messages they took with them.
    pub(super) failed: u64,
    pub(super) lost: u64,
    pub(super) second_msgs: u64,
    pub(super) second_connects: u64,
    pub(super) open: u64,
    pub(super) first_failure: Option<String>,
    /// Connects the API refused at once, and when the first was (s).
    pub(super) refused: u64,
    pub(super) first_refusal: Option<f64>,
}

/// What one run measured.
pub(super) struct Run {
    pub(super) totals: Totals,
    pub(super) samples: Vec<Sample>,
    pub(super) rtt: Histogram<u64>,
    pub(super) connect_us: Histogram<u64>,
    pub(super) churn_secs: f64,
    pub(super) drained: bool,
    /// What stopped the run early (a bad echo, a failed send), if anything.
    pub(super) error: Option<anyhow::Error>,
}

/// The client side of the run: the instance, its slots and what they measured.
pub(super) struct Churn<'a> {
    load: &'a ChurnLoad,
    client: Sockets,
    changes: Changes,
    group: PollGroup,
    addr: SocketAddr,
    slots: Vec<Slot>,
    by_conn: HashMap<u32, usize>,
    /// Slots waiting for a connect (the connect window is full).
    to_open: Vec<usize>,
    connecting: usize,
    out: Vec<OutMessage>,
    totals: Totals,
    second_rtt: Histogram<u64>,
    rtt: Histogram<u64>,
    connect_us: Histogram<u64>,
    clock: std::time::Instant,
}

impl Churn<'_> {
    fn us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    /// Starts a fresh connection in `slot`; false when the API refused it at once (no
    /// connection id or client socket to be had): counted, and the slot tries again later.
    fn open(&mut self, slot: usize) -> anyhow::Result<bool> {
        let conn = self.client.connect_by_ip_address(self.addr, &[]);
        if conn == Connection::INVALID {
            self.totals.refused += 1;
            let t = self.clock.elapsed().as_secs_f64();
            self.totals.first_refusal.get_or_insert(t);
            self.to_open.insert(0, slot);
            return Ok(false);
        }
        ensure!(
            self.client.set_connection_user_data(conn, slot as i64)
                && self.client.set_connection_poll_group(conn, self.group),
            "configuring a new connection"
        );
        let asked_us = self.us();
        let s = &mut self.slots[slot];
        *s = Slot {
            conn,
            generation: s.generation.wrapping_add(1),
            phase: Phase::Connecting,
            sent: 0,
            received: 0,
            asked_us,
        };
        self.by_conn.insert(conn.0, slot);
        self.connecting += 1;
        Ok(true)
    }

    /// Queues the messages `slot`'s window has room for.
    fn fill(&mut self, slot: usize) {
        let t_us = self.us();
        let s = &mut self.slots[slot];
        while s.sent < self.load.exchange && s.sent - s.received < self.load.window {
            self.out.push(OutMessage {
                conn: s.conn,
                data: payload(self.load.size, slot as u32, s.generation, s.sent, t_us),
                flags: send_flags::RELIABLE | send_flags::NO_NAGLE,
                lane: 0,
            });
            s.sent += 1;
        }
    }

    /// Ends `slot`'s connection; a new one replaces it while the churn goes on.
    fn retire(&mut self, slot: usize, churning: bool) {
        let s = &mut self.slots[slot];
        self.by_conn.remove(&s.conn.0);
        self.client.close_connection(s.conn, 0, "churn", false);
        if s.phase == Phase::Open {
            self.totals.open -= 1;
        } else if s.phase == Phase::Connecting {
            self.connecting -= 1;
        }
        s.phase = Phase::Empty;
        if churning {
            self.to_open.push(slot);
        }
    }

    /// Status changes: connected slots start their exchange; failures are counted.
    fn on_changes(&mut self, churning: bool) {
        let events = self
            .changes
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for ev in events {
            let Some(&slot) = self.by_conn.get(&ev.conn.0) else {
                continue;
            };
            match ev.info.state {
                ConnectionState::Connected if self.slots[slot].phase == Phase::Connecting => {
                    let now = self.us();
                    let s = &mut self.slots[slot];
                    s.phase = Phase::Open;
                    let _ = self
                        .connect_us
                        .record(now.saturating_sub(s.asked_us).max(1));
                    self.connecting -= 1;
                    self.totals.open += 1;
                    self.totals.connects += 1;
                    self.totals.second_connects += 1;
                    self.fill(slot);
                }
                ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                    let s = self.slots[slot];
                    self.totals.failed += 1;
                    self.totals.lost += s.sent - s.received;
                    self.totals.first_failure.get_or_insert_with(|| {
                        format!(
                            "slot {slot} ({:?}, {} of {} echoed): {:?} {}",
                            s.phase, s.received, s.sent, ev.info.state, ev.info.end_debug
                        )
                    });
                    self.retire(slot, churning);
                }
                _ => {}
            }
        }
    }

    /// Checks one echo; the slot closes and is replaced once its exchange is done.
    fn on_echo(&mut self, m: &Message, now_us: u64, churning: bool) -> anyhow::Result<()> {
        let slot = usize::try_from(m.user_data).context("echo without user data")?;
        ensure!(
            slot < self.slots.len() && self.slots[slot].conn == m.conn,
            "echo on an unknown or retired connection {:?}",
            m.conn
        );
        ensure!(m.data.len() >= HEADER, "short echo ({} B)", m.data.len());
        let s = self.slots[slot];
        let field = |r: std::ops::Range<usize>| -> anyhow::Result<u64> {
            let mut b = [0u8; 8];
            b[..r.len()].copy_from_slice(&m.data[r]);
            Ok(u64::from_le_bytes(b))
        };
        let (gen_, seq, t) = (field(4..8)?, field(8..16)?, field(16..24)?);
        ensure!(
            field(0..4)? == slot as u64 && gen_ == u64::from(s.generation),
            "slot {slot}: echo of another connection's message"
        );
        ensure!(
            seq == s.received,
            "slot {slot}: echo {seq}, expected {} (lost, duplicated or reordered)",
            s.received
        );
        ensure!(
            t <= now_us && m.data == payload(self.load.size, slot as u32, s.generation, seq, t),
            "slot {slot}: corrupt echo {seq}"
        );
        let rtt = now_us.saturating_sub(t).max(1);
        self.rtt.record(rtt)?;
        self.second_rtt.record(rtt)?;
        self.slots[slot].received += 1;
        self.totals.echoed += 1;
        self.totals.second_msgs += 1;
        if self.slots[slot].received == self.load.exchange {
            self.totals.completed += 1;
            self.retire(slot, churning);
        } else {
            self.fill(slot);
        }
        Ok(())
    }

    /// Sends what [`Churn::fill`] queued.
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        for r in self.client.send_messages(std::mem::take(&mut self.out)) {
            ensure!(r > 0, "send failed: {r}");
            self.totals.sent += 1;
        }
        Ok(())
    }

    /// The second that just ended.
    fn sample(&mut self, t: f64, server: u32, cpu: &mut f64) -> Sample {
        let server_cpu = procs::cpu_secs(server).unwrap_or(*cpu);
        let s = Sample {
            t,
            msgs: std::mem::take(&mut self.totals.second_msgs),
            p99_us: if self.second_rtt.is_empty() {
                0
            } else {
                self.second_rtt.value_at_quantile(0.99)
            },
            connects: std::mem::take(&mut self.totals.second_connects),
            open: self.totals.open,
            server_rss_kib: rss_kib(server).unwrap_or(0),
            process_rss_kib: rss_kib(std::process::id()).unwrap_or(0),
            server_cpu: server_cpu - *cpu,
        };
        *cpu = server_cpu;
        self.second_rtt.reset();
        s
    }

    /// The run: churn for `--seconds`, then drain, sampling every second.
    pub(super) fn run(mut self, server: u32) -> anyhow::Result<Run> {
        let load = self.load;
        self.to_open = (0..self.slots.len()).rev().collect();
        let mut samples = Vec::new();
        let mut inbox: Vec<Message> = Vec::with_capacity(1024);
        let mut cpu = procs::cpu_secs(server).unwrap_or(0.0);
        let mut next_sample = 1.0;
        let mut idle = 0u32;
        let mut churn_secs = None;
        let mut error = None;
        loop {
            let t = self.clock.elapsed().as_secs_f64();
            if t >= next_sample {
                samples.push(self.sample(t, server, &mut cpu));
                next_sample += 1.0;
            }
            let churning = t < load.seconds;
            if !churning && churn_secs.is_none() {
                churn_secs = Some(t);
                self.to_open.clear();
                // Handshakes not yet done will not be needed: close them.
                let pending: Vec<usize> = (0..self.slots.len())
                    .filter(|&i| self.slots[i].phase == Phase::Connecting)
                    .collect();
                for i in pending {
                    self.retire(i, false);
                }
            }
            if !churning && self.totals.open == 0 && self.connecting == 0 {
                break;
            }
            if self.clock.elapsed() > load.max {
                break;
            }
            while churning && self.connecting < load.connect_window {
                let Some(slot) = self.to_open.pop() else {
                    break;
                };
                if !self.open(slot)? {
                    break;
                }
            }
            self.client.run_callbacks();
            self.on_changes(churning);
            inbox.clear();
            self.client
                .receive_messages_on_poll_group(self.group, &mut inbox, 1024);
            let now_us = self.us();
            if let Err(e) = inbox
                .iter()
                .try_for_each(|m| self.on_echo(m, now_us, churning))
                .and_then(|()| self.flush())
            {
                error = Some(e);
                break;
            }
            if inbox.is_empty() {
                idle += 1;
                // The shards need these cores more than a spinning poll does.
                if idle > 64 {
                    std::thread::sleep(Duration::from_micros(50));
                } else {
                    std::thread::yield_now();
                }
            } else {
                idle = 0;
            }
        }
        let drained = self.totals.open == 0 && self.connecting == 0;
        let t = self.clock.elapsed().as_secs_f64();
        if t - samples.last().map_or(0.0, |s| s.t) > 0.5 {
            samples.push(self.sample(t, server, &mut cpu));
        }
        for i in 0..self.slots.len() {
            if self.slots[i].phase != Phase::Empty {
                self.totals.lost += self.slots[i].sent - self.slots[i].received;
                self.retire(i, false);
            }
        }
        Ok(Run {
            totals: self.totals,
            samples,
            rtt: self.rtt,
            connect_us: self.connect_us,
            churn_secs: churn_secs.unwrap_or(t),
            drained,
            error,
        })
    }
}

impl<'a> Churn<'a> {
    /// The client instance (rates, status callback, poll group) and empty slots.
    pub(super) fn new(load: &'a ChurnLoad, addr: SocketAddr) -> anyhow::Result<Self> {
        let rate = i32::try_from(load.rate.min(0x1000_0000)).unwrap_or(i32::MAX);
        let changes = Changes::default();
        let client = Sockets::with_config(SocketsConfig {
            shards: load.client_shards.max(1),
            seed: Some(load.seed),
            ..SocketsConfig::default()
        })?;
        let sink = changes.clone();
        ensure!(
            client.set_global_config_value(&ConfigValue::SendRateMin(rate))
                && client.set_global_config_value(&ConfigValue::SendRateMax(rate))
                && client.set_global_config_value(&ConfigValue::ConnectionStatusChanged(Arc::new(
                    move |ev: &StatusChanged| {
                        if let Ok(mut v) = sink.lock() {
                            v.push(ev.clone());
                        }
                    },
                ))),
            "configuring the client"
        );
        let group = client.create_poll_group();
        let hist = || Histogram::<u64>::new_with_bounds(1, 600_000_000, 3);
        let empty = Slot {
            conn: Connection::INVALID,
            generation: 0,
            phase: Phase::Empty,
            sent: 0,
            received: 0,
            asked_us: 0,
        };
        Ok(Churn {
            load,
            client,
            changes,
            group,
            addr,
            slots: vec![empty; load.connections as usize],
            by_conn: HashMap::new(),
            to_open: Vec::new(),
            connecting: 0,
            out: Vec::new(),
            totals: Totals::default(),
            second_rtt: hist()?,
            rtt: hist()?,
            connect_us: hist()?,
            clock: crate::now(),
        })
    }
}
