//! Running a pair of P2P peer processes (any binaries that follow [`crate::p2p_cli`]) in two
//! test hosts, with a [`SignalRelay`] between them, and collecting their results.
//!
//! [`run_pair`] starts the listener, waits for its `LISTENING` line, starts the connector,
//! then reads both up to their `RESULT` line (each wait bounded by
//! [`crate::process::WAIT`]) and returns both outcomes with the relay's counters. Children are
//! killed when the run returns or panics. With `SWK_P2P_TRACE` set in the environment, both
//! peers get `--trace --verbose` (the stack's log on stderr, SIGNAL lines on stdout).

use std::process::ExitStatus;

use crate::events::Event;
use crate::netns::Host;
use crate::process::PeerProc;
use crate::signal_relay::{Impairment, RelayStats, SignalRelay};

/// One side of a pair.
#[derive(Clone, Debug)]
pub struct Side<'a> {
    /// The peer binary (e.g. `env!("CARGO_BIN_EXE_gns-p2p")`).
    pub exe: &'a str,
    /// The host it runs in.
    pub host: &'a Host,
    /// Its identity, `str:NAME`.
    pub identity: &'a str,
    /// Extra arguments for this side only (e.g. `--reject`, `--trace`).
    pub extra: Vec<String>,
}

/// A pair run: who listens, who connects, what they exchange, what the relay does.
#[derive(Clone, Debug)]
pub struct PairConfig<'a> {
    /// The `--listen` side.
    pub listener: Side<'a>,
    /// The `--connect` side.
    pub connector: Side<'a>,
    /// The virtual port.
    pub vport: i32,
    /// `--messages` for both.
    pub messages: u32,
    /// `--size` for both.
    pub size: u32,
    /// Arguments for both sides (`--stun`, `--turn`, `--ice-enable`, ...).
    pub common: Vec<String>,
    /// `--max-seconds` for both (keep it below [`crate::process::WAIT`]).
    pub max_seconds: u64,
    /// What the signal relay does.
    pub impairment: Impairment,
}

impl<'a> PairConfig<'a> {
    /// `connector` connects to `listener`, 100 messages of 100 bytes, no impairment, 25 s.
    #[must_use]
    pub fn new(listener: Side<'a>, connector: Side<'a>) -> Self {
        Self {
            listener,
            connector,
            vport: 7,
            messages: 100,
            size: 100,
            common: Vec::new(),
            max_seconds: 25,
            impairment: Impairment::default(),
        }
    }
}

/// What one peer reported.
#[derive(Clone, Debug)]
pub struct PeerOutcome {
    /// Its RESULT line.
    pub result: Event,
    /// `ok=1`.
    pub ok: bool,
    /// `setup_ms`, `None` for -1 (never connected).
    pub setup_ms: Option<u64>,
    /// Its exit status.
    pub exit: ExitStatus,
    /// Every line it printed.
    pub events: Vec<Event>,
}

impl PeerOutcome {
    fn from_proc(p: &mut PeerProc) -> Self {
        let (result, exit) = p.finish_on("RESULT");
        Self {
            ok: result.get("ok") == Some("1"),
            setup_ms: result
                .num::<i64>("setup_ms")
                .and_then(|v| u64::try_from(v).ok()),
            result,
            exit,
            events: p.seen.clone(),
        }
    }

    /// The events of one kind.
    pub fn of_kind<'s>(&'s self, kind: &'s str) -> impl Iterator<Item = &'s Event> + 's {
        self.events.iter().filter(move |e| e.kind == kind)
    }

    /// The CONNECTED line, if any.
    #[must_use]
    pub fn connected(&self) -> Option<&Event> {
        self.of_kind("CONNECTED").next()
    }

    /// The last STATUS line that ended the connection (ClosedByPeer or
    /// ProblemDetectedLocally), if any.
    #[must_use]
    pub fn end(&self) -> Option<&Event> {
        self.of_kind("STATUS")
            .filter(|e| {
                matches!(
                    e.get("new"),
                    Some("ClosedByPeer" | "ProblemDetectedLocally")
                )
            })
            .last()
    }
}

/// Both outcomes and the relay's counters.
#[derive(Clone, Debug)]
pub struct PairOutcome {
    /// The listener's.
    pub listener: PeerOutcome,
    /// The connector's.
    pub connector: PeerOutcome,
    /// What the signal relay did.
    pub relay: RelayStats,
}

impl PairOutcome {
    /// Both sides reported ok=1 and exited 0.
    #[must_use]
    pub fn ok(&self) -> bool {
        [&self.listener, &self.connector]
            .iter()
            .all(|p| p.ok && p.exit.success())
    }

    /// One summary line for logs.
    #[must_use]
    pub fn summary(&self) -> String {
        let side = |p: &PeerOutcome| {
            format!(
                "ok={} setup_ms={} sent={} echoed={} flags={} remote={} end={}",
                u8::from(p.ok),
                p.setup_ms.map_or("-".into(), |v| v.to_string()),
                p.result.get("sent").unwrap_or("?"),
                p.result.get("echoed").unwrap_or("?"),
                p.connected().and_then(|e| e.get("flags")).unwrap_or("-"),
                p.connected().and_then(|e| e.get("remote")).unwrap_or("-"),
                p.end().map_or("-".into(), |e| format!(
                    "{}/{}",
                    e.get("new").unwrap_or("?"),
                    e.get("reason").unwrap_or("?")
                )),
            )
        };
        format!(
            "connector[{}] listener[{}] relay{:?}",
            side(&self.connector),
            side(&self.listener),
            self.relay
        )
    }
}

fn args_for(cfg: &PairConfig<'_>, side: &Side<'_>, dir: &str, mode: &[String]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--identity".into(),
        side.identity.into(),
        "--signal-dir".into(),
        dir.into(),
    ];
    a.extend_from_slice(mode);
    a.extend([
        "--messages".into(),
        cfg.messages.to_string(),
        "--size".into(),
        cfg.size.to_string(),
        "--max-seconds".into(),
        cfg.max_seconds.to_string(),
    ]);
    a.extend(cfg.common.iter().cloned());
    a.extend(side.extra.iter().cloned());
    if std::env::var_os("SWK_P2P_TRACE").is_some() {
        a.extend(["--trace".into(), "--verbose".into()]);
    }
    a
}

fn spawn(side: &Side<'_>, args: &[String], name: &'static str) -> PeerProc {
    eprintln!(
        "[{name}] {} in {}: {}",
        side.exe,
        side.host.ns_name(),
        args.join(" ")
    );
    let mut cmd = side.host.command(side.exe);
    cmd.args(args);
    PeerProc::spawn_command(cmd, name)
}

/// Runs one listener/connector pair to completion (see the module doc).
///
/// # Panics
/// When the signal directory or relay cannot be set up, a peer exits without a RESULT line,
/// or a wait exceeds [`crate::process::WAIT`].
#[must_use]
pub fn run_pair(cfg: &PairConfig<'_>) -> PairOutcome {
    let dir = tempfile::Builder::new()
        .prefix("swk-sig")
        .tempdir()
        .expect("signal dir");
    let dir_s = dir.path().to_str().expect("utf-8 temp path").to_owned();
    let relay = SignalRelay::start(dir.path(), cfg.impairment).expect("signal relay");
    let l_args = args_for(
        cfg,
        &cfg.listener,
        &dir_s,
        &["--listen".into(), cfg.vport.to_string()],
    );
    let mut listener = spawn(&cfg.listener, &l_args, "listener");
    let ready = listener.wait_for("LISTENING", |e| e.kind == "LISTENING" || e.kind == "RESULT");
    assert_eq!(
        ready.kind, "LISTENING",
        "listener failed to start: {ready:?}"
    );
    let c_args = args_for(
        cfg,
        &cfg.connector,
        &dir_s,
        &[
            "--connect".into(),
            cfg.listener.identity.into(),
            "--vport".into(),
            cfg.vport.to_string(),
        ],
    );
    let mut connector = spawn(&cfg.connector, &c_args, "connector");
    let connector_out = PeerOutcome::from_proc(&mut connector);
    let listener_out = PeerOutcome::from_proc(&mut listener);
    let out = PairOutcome {
        listener: listener_out,
        connector: connector_out,
        relay: relay.stats(),
    };
    drop(relay);
    out
}

/// The median of `v` (the lower one for an even count); `None` when empty.
#[must_use]
pub fn p50(v: &[u64]) -> Option<u64> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get(s.len().saturating_sub(1) / 2).copied()
}

/// Whether network namespaces (and coturn, if `turn`) are usable here; prints `SKIP` for
/// `test` when not.
pub fn usable(test: &str, turn: bool) -> bool {
    if let Some(why) = crate::netns::unavailable() {
        crate::netns::skip(test, &why);
        return false;
    }
    if turn && let Some(why) = crate::coturn::unavailable() {
        crate::netns::skip(test, &why);
        return false;
    }
    true
}

/// Runs per success case: `SWK_P2P_RUNS`, default 3.
pub fn runs() -> usize {
    std::env::var("SWK_P2P_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// Owned arguments.
pub fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// Runs `cfg` `n` times (a fresh relay seed each run), asserts every run succeeded with every
/// echo, and prints the per-run setup times and their medians (`SETUP` lines).
///
/// # Panics
/// When a run fails: this is a test helper.
pub fn run_ok(path: &str, cfg: &PairConfig<'_>, n: usize) -> Vec<PairOutcome> {
    let mut outs = Vec::new();
    for run in 0..n {
        let mut cfg = cfg.clone();
        cfg.impairment.seed = cfg.impairment.seed.wrapping_add(run as u64);
        let out = run_pair(&cfg);
        eprintln!("P2P {path} run={run}: {}", out.summary());
        assert!(out.ok(), "{path} run {run} failed: {}", out.summary());
        assert_eq!(
            out.connector.result.num::<u32>("echoed"),
            Some(cfg.messages),
            "{path}: echoes"
        );
        outs.push(out);
    }
    let c: Vec<u64> = outs.iter().filter_map(|o| o.connector.setup_ms).collect();
    let l: Vec<u64> = outs.iter().filter_map(|o| o.listener.setup_ms).collect();
    println!(
        "SETUP {path}: connector ms {c:?} p50={:?}; listener ms {l:?} p50={:?}",
        p50(&c),
        p50(&l)
    );
    outs
}

/// The connector's `CONNECTED flags=` (GNS's `m_nFlags`).
///
/// # Panics
/// When the connector never connected: this is a test helper.
pub fn connector_flags(o: &PairOutcome) -> u32 {
    o.connector
        .connected()
        .and_then(|e| e.num("flags"))
        .expect("CONNECTED flags")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(p50(&[5, 1, 3]), Some(3));
        assert_eq!(p50(&[4, 1, 3, 2]), Some(2));
        assert_eq!(p50(&[]), None);
    }
}
