//! The load client's loop, the same for every network stack: connect N connections, keep W
//! probes in flight on each, check every echo, and report one [`LoadResult`].
//!
//! ```text
//!  connect all ─► warmup (load, not measured) ─► measure D s ─► drain (no new probes,
//!                                                               wait for what is in flight)
//! ```
//! The stack hides behind [`Transport`]: real GNS in `gns-load client`, Sockworks in
//! `loadgen --clients sockworks`. The loop reads the clock, the transport does the I/O.

use std::net::SocketAddr;
use std::time::Duration;

use sockworks::engine::shard::Clock;

use super::Idle;
use super::result::{LoadResult, new_histogram};
use super::tally::{ConnTally, Counts, Echo};

/// Something that arrived on the client's connections.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// Connection `0` (client index) reached Connected.
    Connected(usize),
    /// The connection ended (closed by the peer or a local problem).
    Ended {
        /// Client index.
        conn: usize,
        /// How, in the stack's words.
        reason: String,
    },
    /// A message on a connection.
    Message {
        /// Client index.
        conn: usize,
        /// The payload.
        data: &'a [u8],
    },
}

/// One probe to send.
#[derive(Debug)]
pub struct Outgoing {
    /// Client index of the connection.
    pub conn: usize,
    /// The probe's sequence number (reported back if the send fails).
    pub seq: u64,
    /// The payload.
    pub data: Vec<u8>,
}

/// Why a load could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The network stack failed to start or connect.
    #[error("transport: {0}")]
    Transport(String),
    /// The load's parameters make no sense.
    #[error("bad load: {0}")]
    Config(&'static str),
}

/// A network stack's client side, as the loop drives it.
pub trait Transport {
    /// Starts `n` connections to `target`; connection `i` gets client index `i`.
    fn connect(&mut self, target: SocketAddr, n: usize) -> Result<(), LoadError>;
    /// Hands everything that arrived since the last call to `sink`; returns how many items.
    fn poll(&mut self, sink: &mut dyn FnMut(Incoming<'_>)) -> usize;
    /// Sends `batch` (draining it), reliable or not as configured, with NoNagle; calls
    /// `failed(conn, seq)` for each probe the stack refused.
    fn send(&mut self, batch: &mut Vec<Outgoing>, failed: &mut dyn FnMut(usize, u64));
    /// Closes every connection (at the end; best effort).
    fn close(&mut self);
}

/// The shape of a load.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server.
    pub target: SocketAddr,
    /// Connections.
    pub connections: usize,
    /// Probes in flight per connection.
    pub window: u32,
    /// Bytes per probe (at least [`super::probe::HEADER`]).
    pub size: usize,
    /// Reliable messages (else unreliable).
    pub reliable: bool,
    /// Load before measuring starts.
    pub warmup: Duration,
    /// The measured interval.
    pub measure: Duration,
    /// After measuring, how long to wait for probes still in flight.
    pub drain: Duration,
    /// Unreliable: a probe not echoed within this is lost and its place refilled.
    pub loss_timeout: Duration,
    /// How long all connections may take to connect.
    pub connect_timeout: Duration,
    /// Hard bound on the whole run.
    pub max: Duration,
    /// Stop after this many probes per connection: the measured interval then runs from the
    /// first probe (no warmup) until every probe is settled, or `measure` at most.
    pub messages: Option<u64>,
    /// Print a `TIMELINE` line to stderr every this often after connecting: fresh echoes in
    /// that slice, so stalls of the load (a client that stops reading) show up in time.
    pub timeline: Option<Duration>,
}

/// Where the run is; reported to the caller's hook as it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every connection is up (or failed); the load starts.
    Connected,
    /// The measured interval starts.
    Measuring,
    /// The measured interval ended; waiting for what is in flight.
    Draining,
}

/// Round trips and echo count of the measured interval.
struct Recorder {
    on: bool,
    rtt: hdrhistogram::Histogram<u64>,
    msgs: u64,
    /// Fresh echoes since the last timeline line, measured or not.
    slice: u64,
}

impl Recorder {
    fn off() -> Self {
        Recorder {
            on: false,
            rtt: new_histogram(),
            msgs: 0,
            slice: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    Connecting,
    Up,
    Ended,
}

/// Runs the load on `t`; `on_phase` hears of each [`Phase`] as it starts.
pub fn run<T: Transport>(
    t: &mut T,
    cfg: &ClientConfig,
    on_phase: &mut dyn FnMut(Phase),
) -> Result<LoadResult, LoadError> {
    if cfg.connections == 0 || cfg.window == 0 {
        return Err(LoadError::Config("connections and window must be > 0"));
    }
    let n = cfg.connections;
    let clock = Clock::new();
    let t0 = clock.now();
    let hard = t0 + cfg.max;
    let size = cfg.size.max(super::probe::HEADER);
    // invariant: client indices are below `n`, a usize that came from a u32-sized count.
    let mut tallies: Vec<ConnTally> = (0..n).map(|i| ConnTally::new(i as u32, size)).collect();
    let mut state = vec![ConnState::Connecting; n];
    let mut ended_reasons: Vec<String> = Vec::new();
    let mut rec = Recorder::off();

    t.connect(cfg.target, n)?;
    let connect_until = t0 + cfg.connect_timeout.min(cfg.max);
    let mut idle = Idle::default();
    while state.contains(&ConnState::Connecting) && clock.now() < connect_until {
        let got = t.poll(&mut |ev| {
            handle(
                ev,
                &mut state,
                &mut tallies,
                &mut ended_reasons,
                &mut rec,
                0,
            );
        });
        idle.turn(got > 0);
    }
    let connected = state.iter().filter(|&&s| s == ConnState::Up).count();
    for s in &mut state {
        if *s == ConnState::Connecting {
            *s = ConnState::Ended;
        }
    }
    on_phase(Phase::Connected);

    let start = clock.now();
    let warmup = if cfg.messages.is_some() {
        Duration::ZERO
    } else {
        cfg.warmup
    };
    let cap = cfg.messages.unwrap_or(u64::MAX);
    let measure_from = start + warmup;
    let measure_to = measure_from + cfg.measure;
    let drain_to = measure_to + cfg.drain;
    let (mut m_start, mut m_end) = (None, None);
    let timeout_us = u64::try_from(cfg.loss_timeout.as_micros()).unwrap_or(u64::MAX);
    let mut last_expire = start;
    let mut out: Vec<Outgoing> = Vec::new();
    let mut timeline_at = start;
    loop {
        let now = clock.now();
        if let Some(every) = cfg.timeline
            && now.saturating_since(timeline_at) >= every
        {
            timeline_at = now;
            eprintln!(
                "TIMELINE t={:.3} echoes={}",
                now.saturating_since(start).as_secs_f64(),
                std::mem::take(&mut rec.slice)
            );
        }
        if m_start.is_none() && now >= measure_from {
            m_start = Some(now);
            rec.on = true;
            on_phase(Phase::Measuring);
        }
        let all_sent = cfg.messages.is_some()
            && tallies
                .iter()
                .zip(&state)
                .all(|(t, s)| *s != ConnState::Up || (t.counts().sent >= cap && t.pending() == 0));
        if m_end.is_none() && (now >= measure_to || now >= hard || (m_start.is_some() && all_sent))
        {
            m_end = Some(now);
            rec.on = false;
            on_phase(Phase::Draining);
        }
        let in_flight = tallies.iter().any(|t| t.pending() > 0);
        if m_end.is_some() && (!in_flight || now >= drain_to || now >= hard) {
            break;
        }
        if connected == 0 && m_end.is_some() {
            break;
        }
        let now_us = now.as_micros();
        let got = t.poll(&mut |ev| {
            handle(
                ev,
                &mut state,
                &mut tallies,
                &mut ended_reasons,
                &mut rec,
                now_us,
            );
        });
        if !cfg.reliable && now.saturating_since(last_expire) >= Duration::from_millis(10) {
            last_expire = now;
            for tally in &mut tallies {
                tally.expire(now_us, timeout_us);
            }
        }
        if m_end.is_none() {
            for (i, tally) in tallies.iter_mut().enumerate() {
                if state[i] != ConnState::Up {
                    continue;
                }
                while tally.pending() < cfg.window && tally.counts().sent < cap {
                    let (seq, data) = tally.next_probe(now_us);
                    out.push(Outgoing { conn: i, seq, data });
                }
            }
        }
        let sent = out.len();
        if sent > 0 {
            t.send(&mut out, &mut |conn, seq| {
                if let Some(tally) = tallies.get_mut(conn) {
                    tally.on_send_failed(seq);
                }
            });
            out.clear();
        }
        idle.turn(got + sent > 0);
    }
    t.close();
    let end = clock.now();
    let m_start = m_start.unwrap_or(end);
    let m_end = m_end.unwrap_or(end);
    let mut counts = Counts::default();
    for tally in &mut tallies {
        tally.finish();
        counts += tally.counts();
    }
    for reason in ended_reasons.iter().take(3) {
        eprintln!("connection ended during the load: {reason}");
    }
    Ok(LoadResult::new(
        (n as u64, connected as u64),
        (cfg.reliable, size as u64),
        (rec.msgs, m_end.saturating_since(m_start).as_secs_f64()),
        counts,
        rec.rtt,
    ))
}

/// Applies one arrival to the connection states and tallies; records the round trip when
/// measuring.
fn handle(
    ev: Incoming<'_>,
    state: &mut [ConnState],
    tallies: &mut [ConnTally],
    ended: &mut Vec<String>,
    rec: &mut Recorder,
    now_us: u64,
) {
    match ev {
        Incoming::Connected(i) => {
            if let Some(s) = state.get_mut(i).filter(|s| **s == ConnState::Connecting) {
                *s = ConnState::Up;
            }
        }
        Incoming::Ended { conn, reason } => {
            if let Some(s) = state.get_mut(conn) {
                *s = ConnState::Ended;
                ended.push(format!("connection {conn}: {reason}"));
            }
        }
        Incoming::Message { conn, data } => {
            let Some(tally) = tallies.get_mut(conn) else {
                return;
            };
            let Echo::Fresh { rtt_us } = tally.on_echo(data, now_us) else {
                return;
            };
            rec.slice += 1;
            if rec.on {
                // Values beyond the histogram's 60 s bound are clamped, not dropped.
                rec.rtt.saturating_record(rtt_us.max(1));
                rec.msgs += 1;
            }
        }
    }
}
