//! The interop matrix (issue 6): every scenario in both directions, a real Valve GNS peer
//! (`gns-peer`, a separate process) opposite the public `sockworks` API.
//!
//! - `gns_to_sw_*`: a GNS client connects to a Sockworks server;
//! - `sw_to_gns_*`: a Sockworks client connects to a GNS server.
//!
//! Where a scenario moves data, both ends send and both ends check what they received, so
//! each test exercises the Sockworks sender and receiver against GNS's. Timeouts are shortened
//! through config; only the idle scenario outlasts GNS's fixed 10 s keepalive interval.

mod common;

use std::time::Duration;

use common::*;
use sockworks::{ConfigValue, ConnectionState as St, send_flags};
use sockworks_interop::payload::pattern;
use sockworks_interop::process::PeerProc;

/// Upper bound of a Sockworks-side wait in these tests.
const LIMIT: Duration = Duration::from_secs(25);
/// `k_ESteamNetConnectionEnd_Misc_Timeout`.
const END_TIMEOUT: i32 = 5003;

fn gns_status_seen(p: &PeerProc, state: &str) -> bool {
    p.seen
        .iter()
        .any(|e| e.kind == "STATUS" && e.get("new") == Some(state))
}

// ---------------------------------------------------------------------------------------------
// Handshake and accept

#[test]
fn gns_to_sw_handshake_and_accept() {
    let mut sw = Sw::new(2, &[]);
    let addr = sw.listen(&[]);
    let mut cli = gns_client(addr, "send rn 0 hello; waitsent 5000; status", &[]);
    assert!(
        sw.pump_until(LIMIT, |sw| sw.first(St::ClosedByPeer).is_some()),
        "the GNS client connected, sent and closed"
    );
    let conn = sw.conns[0];
    assert_eq!(
        sw.states(conn),
        [St::Connecting, St::Connected, St::ClosedByPeer]
    );
    let closed = sw.first(St::ClosedByPeer).unwrap();
    assert_eq!(closed.info.end_reason, 1000);
    assert_eq!(closed.info.end_debug, "script end");
    assert!(closed.info.addr_remote.ip().is_loopback());
    let got = sw.got();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (
            got[0].text.as_str(),
            got[0].reliable,
            got[0].lane,
            got[0].num
        ),
        ("hello", true, 0, 1)
    );

    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
    assert!(gns_status_seen(&cli, "Connected"));
    let connected = cli
        .seen
        .iter()
        .find(|e| e.kind == "STATUS" && e.get("new") == Some("Connected"))
        .unwrap();
    assert_eq!(connected.get("remote"), Some(addr.to_string().as_str()));
    let stats = cli.of_kind("STATS");
    assert!(
        stats[0].num::<i32>("ping").is_some_and(|p| p >= 0),
        "{stats:?}"
    );
    assert!(sw.s.close_connection(conn, 0, "", false));
}

#[test]
fn sw_to_gns_handshake_and_accept() {
    let (mut srv, addr) = gns_server(&["--once"]);
    let mut sw = Sw::new(1, &[]);
    let c = sw.connect(addr, &[]);
    assert!(sw.pump_until(LIMIT, |sw| sw.s.connection_state(c) == St::Connected));
    assert!(
        sw.states(c).ends_with(&[St::Connected]),
        "{:?}",
        sw.states(c)
    );
    let info = sw.s.get_connection_info(c).unwrap();
    assert_eq!(info.addr_remote, addr);
    srv.wait_for("ACCEPTED", |e| e.kind == "ACCEPTED");
    srv.wait_for("Connected", |e| {
        e.kind == "STATUS" && e.get("new") == Some("Connected")
    });
    sw.send(c, 0, send_flags::RELIABLE, b"hello".to_vec());
    let recv = srv.wait_for("RECV", |e| e.kind == "RECV");
    assert_eq!(Got::from_event(&recv).text, "hello");
    assert!(sw.s.close_connection(c, 1000, "bye", false));
    let closed = srv.wait_for("CLOSED", |e| e.kind == "CLOSED");
    assert_eq!(closed.get("state"), Some("ClosedByPeer"));
    assert_eq!(closed.num::<i32>("reason"), Some(1000));
    assert_eq!(closed.get("debug"), Some("bye"));
    let (done, status) = srv.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
}

// ---------------------------------------------------------------------------------------------
// Refusal: the server closes the request instead of accepting it

#[test]
fn gns_to_sw_refusal() {
    let mut sw = Sw::new(2, &[]);
    sw.incoming = Incoming::Refuse;
    let addr = sw.listen(&[]);
    let mut cli = gns_client(addr, "send r 0 never", &[]);
    assert!(sw.pump_until(LIMIT, |_| cli.ready().iter().any(|e| e.kind == "CLOSED")));
    let closed = cli.of_kind("CLOSED")[0].clone();
    assert_eq!(closed.get("state"), Some("ClosedByPeer"));
    assert_eq!(closed.num::<i32>("reason"), Some(1234));
    assert_eq!(closed.get("debug"), Some("refused"));
    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("0"), "a refused client runs no script");
    assert!(!status.success());
    assert!(!gns_status_seen(&cli, "Connected"));
    assert!(cli.of_kind("SENT").is_empty());
    // The request, then (as in GNS) the refusing side's own close: Connecting -> None, with
    // the reason it gave, delivered by a later RunCallbacks than the one that refused.
    assert!(sw.pump_until(LIMIT, |s| s.events().len() >= 2));
    let events = sw.events();
    assert_eq!(events.len(), 2, "the request and our close: {events:?}");
    assert_eq!(events[0].info.state, St::Connecting);
    assert_eq!(
        (events[1].old_state, events[1].info.state),
        (St::Connecting, St::None)
    );
    assert_eq!(events[1].info.end_reason, 1234);
    assert!(sw.conns.is_empty());
}

#[test]
fn sw_to_gns_refusal() {
    let (mut srv, addr) = gns_server(&["--refuse", "--once"]);
    let mut sw = Sw::new(1, &[]);
    let c = sw.connect(addr, &[]);
    assert!(sw.pump_until(LIMIT, |sw| sw.first(St::ClosedByPeer).is_some()));
    let closed = sw.first(St::ClosedByPeer).unwrap();
    assert_eq!(closed.conn, c);
    assert_eq!(closed.info.end_reason, 1234);
    assert_eq!(closed.info.end_debug, "refused");
    assert!(!sw.states(c).contains(&St::Connected), "{:?}", sw.states(c));
    srv.wait_for("REFUSED", |e| e.kind == "REFUSED");
    let (done, _) = srv.finish();
    assert_eq!(done.get("ok"), Some("1"));
    assert!(srv.of_kind("ACCEPTED").is_empty());
    assert!(sw.s.close_connection(c, 0, "", false));
}

// ---------------------------------------------------------------------------------------------
// Reliable and unreliable messages of 1 B, 1200 B, 100 KiB and 512 KiB

const SIZES: [usize; 4] = [1, 1200, 100 * 1024, 512 * 1024];

/// The script part that sends every size unreliably, then reliably, on lane 0.
fn sizes_script() -> String {
    let mut s = String::new();
    for mode in ["u", "r"] {
        for size in SIZES {
            s.push_str(&format!("sendsize {mode} 0 {size}; "));
        }
    }
    s
}

/// Each size arrived intact. Unreliable messages over 16500 bytes go reliably, in GNS
/// (`k_cbMaxUnreliableMsgSizeSend`, "Sending as reliable instead") and in Sockworks alike, so
/// lane 0's reliable sequence is the two large "unreliable" ones, then the four reliable ones.
fn check_sizes(side: &str, got: &[Got]) {
    let reliable = reliable_on(got, 0);
    let sizes: Vec<usize> = reliable.iter().map(|g| g.size).collect();
    assert_eq!(
        sizes,
        [SIZES[2], SIZES[3], SIZES[0], SIZES[1], SIZES[2], SIZES[3]],
        "{side}: reliable sizes in order"
    );
    assert!(reliable.windows(2).all(|w| w[0].num < w[1].num), "{side}");
    let mut unreliable: Vec<usize> = got.iter().filter(|g| !g.reliable).map(|g| g.size).collect();
    unreliable.sort_unstable();
    assert_eq!(
        unreliable,
        SIZES[..2],
        "{side}: unreliable (loopback loses nothing)"
    );
    for g in got {
        assert!(g.is_pattern_of(g.size), "{side}: {g:?} intact");
        assert_eq!(g.lane, 0);
    }
}

#[test]
fn gns_to_sw_messages_all_sizes() {
    let mut sw = Sw::new(2, &[]);
    sw.echo = true;
    let addr = sw.listen(&[]);
    let script = format!(
        "{}expect 8 20000; waitsent 20000; close 1000 done",
        sizes_script()
    );
    let mut cli = gns_client(addr, &script, &[]);
    assert!(sw.pump_until(LIMIT, |sw| sw.first(St::ClosedByPeer).is_some()));
    check_sizes("sockworks received", &sw.got());
    assert_eq!(sw.first(St::ClosedByPeer).unwrap().info.end_debug, "done");
    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
    check_sizes("gns received the echoes", &gns_got(&cli));
    assert!(sw.send_errors.is_empty(), "{:?}", sw.send_errors);
}

#[test]
fn sw_to_gns_messages_all_sizes() {
    let (mut srv, addr) = gns_server(&["--echo", "--once"]);
    let mut sw = Sw::new(1, &[]);
    let c = sw.connect(addr, &[]);
    assert!(sw.pump_until(LIMIT, |sw| sw.s.connection_state(c) == St::Connected));
    for flags in [send_flags::UNRELIABLE, send_flags::RELIABLE] {
        for size in SIZES {
            sw.send(c, 0, flags, pattern(size));
        }
    }
    assert!(
        sw.pump_until(LIMIT, |sw| sw.got.len() >= 8),
        "echoes: {}",
        sw.got.len()
    );
    check_sizes("sockworks received the echoes", &sw.got());
    assert!(sw.s.close_connection(c, 1000, "done", false));
    let closed = srv.wait_for("CLOSED", |e| e.kind == "CLOSED");
    assert_eq!(closed.num::<i32>("reason"), Some(1000));
    let (done, _) = srv.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    check_sizes("gns received", &gns_got(&srv));
    assert_eq!(srv.of_kind("SENT").len(), 8, "gns echoed everything");
    assert!(sw.send_errors.is_empty(), "{:?}", sw.send_errors);
}

// ---------------------------------------------------------------------------------------------
// Four lanes with priorities and weights

/// Lane 0: priority 0; lanes 1 and 2: priority 1 with weights 1 and 3; lane 3: priority 2.
const LANES: &str = "0:1,1:1,1:3,2:1";
const LANE_PRIOS: [i32; 4] = [0, 1, 1, 2];
const LANE_WEIGHTS: [u16; 4] = [1, 1, 3, 1];
/// Queued in this order, lowest priority first, so the scheduler has to reorder them.
const LANE_ORDER: [u16; 4] = [3, 1, 2, 0];
const LANE_MSGS: usize = 20;
const LANE_SIZE: usize = 10_000;

fn lanes_script() -> String {
    LANE_ORDER
        .iter()
        .map(|l| format!("sendsize r {l} {LANE_SIZE} {LANE_MSGS}; "))
        .collect()
}

fn send_lanes(sw: &mut Sw, c: sockworks::Connection) {
    for lane in LANE_ORDER {
        for _ in 0..LANE_MSGS {
            sw.send(c, lane, send_flags::RELIABLE, pattern(LANE_SIZE));
        }
    }
}

/// Every lane delivered its messages intact and in order; lanes finished in priority order,
/// and of the two equal-priority lanes the one with weight 3 finished first.
fn check_lanes(side: &str, got: &[Got]) {
    let mut last = [0usize; 4];
    for lane in 0..4u16 {
        let on = reliable_on(got, lane);
        assert_eq!(on.len(), LANE_MSGS, "{side}: lane {lane}");
        assert!(
            on.iter().all(|g| g.is_pattern_of(LANE_SIZE)),
            "{side}: lane {lane}"
        );
        assert!(
            on.windows(2).all(|w| w[0].num < w[1].num),
            "{side}: lane {lane} order"
        );
        last[usize::from(lane)] = got
            .iter()
            .rposition(|g| g.lane == lane)
            .expect("lane has messages");
    }
    assert_eq!(got.len(), 4 * LANE_MSGS, "{side}");
    assert!(
        last[0] < last[2] && last[2] < last[1] && last[1] < last[3],
        "{side}: lanes should finish in the order 0, 2, 1, 3 (priority, then weight); \
         last positions {last:?}"
    );
}

#[test]
fn gns_to_sw_lanes_priorities_weights() {
    let mut sw = Sw::new(2, &[]);
    sw.lanes = Some((LANE_PRIOS.to_vec(), LANE_WEIGHTS.to_vec()));
    let addr = sw.listen(&[]);
    let script = format!(
        "{}expect {} 20000; waitsent 20000; close 1000 lanes",
        lanes_script(),
        4 * LANE_MSGS
    );
    let mut cli = gns_client(addr, &script, &["--lanes", LANES]);
    assert!(sw.pump_until(LIMIT, |sw| {
        sw.conns
            .first()
            .is_some_and(|&c| sw.s.connection_state(c) == St::Connected)
    }));
    let c = sw.conns[0];
    send_lanes(&mut sw, c);
    assert!(sw.pump_until(LIMIT, |sw| sw.first(St::ClosedByPeer).is_some()));
    check_lanes("sockworks received", &sw.got());
    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
    assert_eq!(cli.of_kind("LANES").len(), 1);
    check_lanes("gns received", &gns_got(&cli));
}

#[test]
fn sw_to_gns_lanes_priorities_weights() {
    let script = format!(
        "{}expect {} 20000; waitsent 20000; waitclose 20000",
        lanes_script(),
        4 * LANE_MSGS
    );
    let (mut srv, addr) = gns_server(&["--once", "--lanes", LANES, "--script", &script]);
    let mut sw = Sw::new(1, &[]);
    sw.lanes = Some((LANE_PRIOS.to_vec(), LANE_WEIGHTS.to_vec()));
    let c = sw.connect(addr, &[]);
    assert!(sw.pump_until(LIMIT, |sw| sw.s.connection_state(c) == St::Connected));
    send_lanes(&mut sw, c);
    assert!(sw.pump_until(LIMIT, |sw| sw.got.len() >= 4 * LANE_MSGS));
    srv.wait_for("SENT_ALL", |e| e.kind == "SENT_ALL");
    check_lanes("sockworks received", &sw.got());
    assert!(sw.s.close_connection(c, 1000, "lanes", false));
    let (done, status) = srv.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
    check_lanes("gns received", &gns_got(&srv));
}

// ---------------------------------------------------------------------------------------------
// 30 % fake loss plus reorder (and 10 ms lag) on each side

const LOSSY_GNS: [&str; 10] = [
    "--loss-send",
    "30",
    "--lag-send",
    "10",
    "--reorder-send",
    "20",
    "--reorder-time",
    "15",
    "--lanes",
    "0:1,0:1",
];

/// The lossy Sockworks end; `controlled`: `SendRateMax` above the default `SendRateMin`, so
/// the congestion window and its ack requests run (GNS's fixed rate otherwise).
fn lossy_sw(controlled: bool) -> Sw {
    let mut config = vec![
        ConfigValue::FakePacketLossSend(30.0),
        ConfigValue::FakePacketLagSend(10),
        ConfigValue::FakePacketReorderSend(20.0),
        ConfigValue::FakePacketReorderTime(15),
    ];
    if controlled {
        config.push(ConfigValue::SendRateMax(64_000_000));
    }
    let mut sw = Sw::new(1, &config);
    sw.lanes = Some((vec![0, 0], vec![1, 1]));
    sw
}

/// Reliable messages of the lossy scenario: lane 0 gets 1, 1200 and 100 KiB; lane 1 gets
/// thirty of 1200 B; twenty unreliable 300 B messages go on lane 0 in between.
const LOSSY_SCRIPT: &str = "sendsize r 0 1; sendsize u 0 300 20; sendsize r 1 1200 30; \
                            sendsize r 0 1200; sendsize r 0 102400; ";
const LOSSY_RELIABLE: usize = 33;

fn send_lossy(sw: &mut Sw, c: sockworks::Connection) {
    sw.send(c, 0, send_flags::RELIABLE, pattern(1));
    for _ in 0..20 {
        sw.send(c, 0, send_flags::UNRELIABLE, pattern(300));
    }
    for _ in 0..30 {
        sw.send(c, 1, send_flags::RELIABLE, pattern(1200));
    }
    sw.send(c, 0, send_flags::RELIABLE, pattern(1200));
    sw.send(c, 0, send_flags::RELIABLE, pattern(102_400));
}

/// All reliable messages arrived intact and in order per lane; the unreliable ones that made
/// it are intact.
fn check_lossy(side: &str, got: &[Got]) {
    let lane0: Vec<usize> = reliable_on(got, 0).iter().map(|g| g.size).collect();
    assert_eq!(lane0, [1, 1200, 102_400], "{side}: lane 0 reliable");
    let lane1 = reliable_on(got, 1);
    assert_eq!(lane1.len(), 30, "{side}: lane 1 reliable");
    for lane in [reliable_on(got, 0), lane1] {
        assert!(
            lane.windows(2).all(|w| w[0].num < w[1].num),
            "{side}: order"
        );
    }
    let unreliable: Vec<&Got> = got.iter().filter(|g| !g.reliable).collect();
    assert!(
        unreliable.len() <= 20,
        "{side}: {} unreliable",
        unreliable.len()
    );
    assert!(
        got.iter().all(|g| g.is_pattern_of(g.size)),
        "{side}: intact"
    );
}

#[test]
fn gns_to_sw_loss_and_reorder() {
    gns_to_sw_lossy(false);
}

#[test]
fn gns_to_sw_loss_and_reorder_congestion_controlled() {
    gns_to_sw_lossy(true);
}

fn gns_to_sw_lossy(controlled: bool) {
    let mut sw = lossy_sw(controlled);
    sw.echo = true;
    let addr = sw.listen(&[]);
    let script =
        format!("{LOSSY_SCRIPT}expectr {LOSSY_RELIABLE} 25000; waitsent 25000; close 1000 lossy");
    let mut cli = gns_client(addr, &script, &LOSSY_GNS);
    // The close itself may be lost on this network; the client's DONE line ends the run.
    assert!(sw.pump_until(LIMIT, |_| cli.ready().iter().any(|e| e.kind == "DONE")));
    check_lossy("sockworks received", &sw.got());
    let (done, _) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    check_lossy("gns received the echoes", &gns_got(&cli));
}

#[test]
fn sw_to_gns_loss_and_reorder() {
    sw_to_gns_lossy(false);
}

#[test]
fn sw_to_gns_loss_and_reorder_congestion_controlled() {
    sw_to_gns_lossy(true);
}

fn sw_to_gns_lossy(controlled: bool) {
    let (mut srv, addr) = gns_server(&[&["--echo"][..], &LOSSY_GNS[..]].concat());
    let mut sw = lossy_sw(controlled);
    let c = sw.connect(addr, &[]);
    assert!(sw.pump_until(LIMIT, |sw| sw.s.connection_state(c) == St::Connected));
    send_lossy(&mut sw, c);
    assert!(
        sw.pump_until(LIMIT, |sw| sw.got.iter().filter(|m| m.flags != 0).count()
            >= LOSSY_RELIABLE),
        "reliable echoes: {}",
        sw.got.len()
    );
    check_lossy("sockworks received the echoes", &sw.got());
    wait_count(&mut srv, "reliable RECV", LOSSY_RELIABLE, |e| {
        e.kind == "RECV" && e.get("reliable") == Some("1")
    });
    check_lossy("gns received", &gns_got(&srv));
    assert!(sw.s.close_connection(c, 1000, "lossy", false));
}

// ---------------------------------------------------------------------------------------------
// NoNagle, NoDelay and Flush (with the longest Nagle delay, 20 ms, on both ends)

/// What each end sends, with GNS script modes and the matching Sockworks flags. NoDelay goes
/// last, on an idle link where it can leave at once.
const NAGLE_MSGS: [(&str, i32, bool, &str); 6] = [
    ("r", send_flags::RELIABLE, true, "a-nagled"),
    ("rn", send_flags::RELIABLE_NO_NAGLE, true, "b-nonagle"),
    ("u", send_flags::UNRELIABLE, false, "c-unrel-nagled"),
    (
        "un",
        send_flags::UNRELIABLE_NO_NAGLE,
        false,
        "d-unrel-nonagle",
    ),
    ("r", send_flags::RELIABLE, true, "e-flushed"),
    ("ud", send_flags::UNRELIABLE_NO_DELAY, false, "f-nodelay"),
];

fn nagle_script() -> String {
    let m = |i: usize| format!("send {} 0 {}; ", NAGLE_MSGS[i].0, NAGLE_MSGS[i].3);
    format!(
        "{}{}{}{}{}flush; waitsent 5000; sleep 50; {}",
        m(0),
        m(1),
        m(2),
        m(3),
        m(4),
        m(5)
    )
}

fn send_nagle(sw: &mut Sw, c: sockworks::Connection) {
    for (_, flags, _, text) in &NAGLE_MSGS[..5] {
        sw.send(c, 0, *flags, text.as_bytes().to_vec());
    }
    assert_eq!(sw.s.flush_messages_on_connection(c), sockworks::EResult::Ok);
    assert!(sw.pump_until(LIMIT, |sw| sw.got.len() >= 6 && sw.queue_empty()));
    let (_, flags, _, text) = NAGLE_MSGS[5];
    sw.send(c, 0, flags, text.as_bytes().to_vec());
    assert!(sw.send_errors.is_empty(), "{:?}", sw.send_errors);
}

fn check_nagle(side: &str, got: &[Got]) {
    let mut texts: Vec<(&str, bool)> = got.iter().map(|g| (g.text.as_str(), g.reliable)).collect();
    texts.sort_unstable();
    let want: Vec<(&str, bool)> = NAGLE_MSGS.iter().map(|m| (m.3, m.2)).collect();
    assert_eq!(texts, want, "{side}");
    let reliable = reliable_on(got, 0);
    let reliable: Vec<&str> = reliable.iter().map(|g| g.text.as_str()).collect();
    assert_eq!(
        reliable,
        ["a-nagled", "b-nonagle", "e-flushed"],
        "{side}: reliable order"
    );
}

#[test]
fn gns_to_sw_nonagle_nodelay_flush() {
    let mut sw = Sw::new(2, &[ConfigValue::NagleTime(20_000)]);
    let addr = sw.listen(&[]);
    let script = format!(
        "{}expect 6 10000; waitsent 5000; close 1000 nagle",
        nagle_script()
    );
    let mut cli = gns_client(addr, &script, &["--nagle-us", "20000"]);
    assert!(sw.pump_until(LIMIT, |sw| {
        sw.conns
            .first()
            .is_some_and(|&c| sw.s.connection_state(c) == St::Connected)
    }));
    let c = sw.conns[0];
    send_nagle(&mut sw, c);
    assert!(sw.pump_until(LIMIT, |sw| sw.first(St::ClosedByPeer).is_some()));
    check_nagle("sockworks received", &sw.got());
    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
    check_nagle("gns received", &gns_got(&cli));
}

#[test]
fn sw_to_gns_nonagle_nodelay_flush() {
    let script = format!(
        "{}expect 6 10000; waitsent 5000; waitclose 10000",
        nagle_script()
    );
    let (mut srv, addr) = gns_server(&["--once", "--nagle-us", "20000", "--script", &script]);
    let mut sw = Sw::new(1, &[ConfigValue::NagleTime(20_000)]);
    let c = sw.connect(addr, &[]);
    assert!(sw.pump_until(LIMIT, |sw| sw.s.connection_state(c) == St::Connected));
    send_nagle(&mut sw, c);
    srv.wait_for("EXPECT_OK", |e| e.kind == "EXPECT_OK");
    check_nagle("sockworks received", &sw.got());
    assert!(sw.s.close_connection(c, 1000, "nagle", false));
    let (done, status) = srv.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
    check_nagle("gns received", &gns_got(&srv));
}

// ---------------------------------------------------------------------------------------------
// Close with reason and debug string, with linger: 512 KiB still queued when the client
// closes must all arrive before the close

const LINGER_SIZE: usize = 512 * 1024;

#[test]
fn gns_to_sw_close_linger() {
    let mut sw = Sw::new(2, &[]);
    let addr = sw.listen(&[]);
    let script = format!("sendsize r 0 {LINGER_SIZE}; close 1042 linger-bye lingernow");
    let mut cli = gns_client(addr, &script, &["--drain-ms", "1000"]);
    assert!(sw.pump_until(LIMIT, |sw| !sw.conns.is_empty()));
    let watch = Stopwatch::start();
    assert!(sw.pump_until(LIMIT, |sw| sw.first(St::ClosedByPeer).is_some()));
    let took = watch.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "close arrived after {took:?}"
    );
    let closed = sw.first(St::ClosedByPeer).unwrap();
    assert_eq!(closed.info.end_reason, 1042);
    assert_eq!(closed.info.end_debug, "linger-bye");
    let got = sw.got();
    assert_eq!(got.len(), 1, "the lingering message arrived");
    assert!(got[0].reliable && got[0].is_pattern_of(LINGER_SIZE));
    let close = cli.wait_for("CLOSE", |e| e.kind == "CLOSE");
    assert_eq!(close.get("linger"), Some("1"));
    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
}

#[test]
fn sw_to_gns_close_linger() {
    let (mut srv, addr) = gns_server(&["--once"]);
    let mut sw = Sw::new(1, &[]);
    let c = sw.connect(addr, &[]);
    assert!(sw.pump_until(LIMIT, |sw| sw.s.connection_state(c) == St::Connected));
    sw.send(c, 0, send_flags::RELIABLE, pattern(LINGER_SIZE));
    assert!(sw.queue_empty());
    let watch = Stopwatch::start();
    assert!(sw.s.close_connection(c, 1042, "linger-bye", true));
    let closed = srv.wait_for("CLOSED", |e| e.kind == "CLOSED");
    // 512 KiB at 4 MB/s takes 0.13 s; the close must follow the last ack, not a 10 s
    // keepalive.
    let took = watch.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "close arrived after {took:?}"
    );
    assert_eq!(closed.get("state"), Some("ClosedByPeer"));
    assert_eq!(closed.num::<i32>("reason"), Some(1042));
    assert_eq!(closed.get("debug"), Some("linger-bye"));
    let (done, status) = srv.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
    let got = gns_got(&srv);
    assert_eq!(got.len(), 1, "the lingering message arrived: {got:?}");
    assert!(got[0].reliable && got[0].is_pattern_of(LINGER_SIZE));
}

// ---------------------------------------------------------------------------------------------
// Peer process killed: the survivor times out (TimeoutConnected 2 s)

const SHORT_TIMEOUT: i32 = 2000;

/// After the kill, Sockworks sends one reliable message (an application that has something
/// to say); with no reply the connection must end by timeout within a few seconds.
fn expect_timeout(sw: &mut Sw, c: sockworks::Connection) {
    let watch = Stopwatch::start();
    sw.send(c, 0, send_flags::RELIABLE, b"anyone there?".to_vec());
    assert!(
        sw.pump_until(LIMIT, |sw| sw.first(St::ProblemDetectedLocally).is_some()),
        "timeout detected; states {:?}",
        sw.states(c)
    );
    let took = watch.elapsed();
    let ev = sw.first(St::ProblemDetectedLocally).expect("just seen");
    assert_eq!(ev.conn, c);
    assert_eq!(ev.info.end_reason, END_TIMEOUT, "{:?}", ev.info);
    assert!(
        took >= Duration::from_millis(1500) && took <= Duration::from_secs(8),
        "timeout after {took:?} with TimeoutConnected {SHORT_TIMEOUT} ms"
    );
    assert!(sw.s.close_connection(c, 0, "", false));
}

#[test]
fn gns_to_sw_peer_killed() {
    let mut sw = Sw::new(2, &[]);
    let addr = sw.listen(&[ConfigValue::TimeoutConnected(SHORT_TIMEOUT)]);
    let mut cli = gns_client(addr, "send r 0 alive; sleep 25000", &[]);
    assert!(sw.pump_until(LIMIT, |sw| !sw.got.is_empty()));
    cli.kill();
    let c = sw.conns[0];
    expect_timeout(&mut sw, c);
}

#[test]
fn sw_to_gns_peer_killed() {
    let (mut srv, addr) = gns_server(&["--echo"]);
    let mut sw = Sw::new(1, &[]);
    let c = sw.connect(addr, &[ConfigValue::TimeoutConnected(SHORT_TIMEOUT)]);
    assert!(sw.pump_until(LIMIT, |sw| sw.s.connection_state(c) == St::Connected));
    sw.send(c, 0, send_flags::RELIABLE, b"alive".to_vec());
    assert!(
        sw.pump_until(LIMIT, |sw| !sw.got.is_empty()),
        "echo before the kill"
    );
    srv.kill();
    expect_timeout(&mut sw, c);
}

// ---------------------------------------------------------------------------------------------
// Idle for longer than GNS's keepalive interval (fixed at 10 s), with TimeoutConnected
// shortened to 3 s on both ends: the connection must stay up through the silence. The idle
// lasts 14 s, so an unanswered keepalive at 10 s would have timed the connection out (3 s
// later) before the next message goes.

const IDLE_MS: u64 = 14_000;
const IDLE_TIMEOUT: i32 = 3000;

#[test]
fn gns_to_sw_idle_past_keepalive() {
    let mut sw = Sw::new(2, &[]);
    sw.echo = true;
    let addr = sw.listen(&[ConfigValue::TimeoutConnected(IDLE_TIMEOUT)]);
    let script = format!(
        "send r 0 before; expect 1 5000; sleep {IDLE_MS}; send r 0 after; expect 2 5000; close 1000 idle"
    );
    let mut cli = gns_client(
        addr,
        &script,
        &["--timeout-connected-ms", &IDLE_TIMEOUT.to_string()],
    );
    assert!(sw.pump_until(LIMIT, |sw| sw.first(St::ClosedByPeer).is_some()));
    let c = sw.conns[0];
    assert_eq!(
        sw.states(c),
        [St::Connecting, St::Connected, St::ClosedByPeer]
    );
    let texts: Vec<String> = sw.got().into_iter().map(|g| g.text).collect();
    assert_eq!(texts, ["before", "after"]);
    assert_eq!(sw.first(St::ClosedByPeer).unwrap().info.end_debug, "idle");
    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
    assert!(!gns_status_seen(&cli, "ProblemDetectedLocally"));
}

#[test]
fn sw_to_gns_idle_past_keepalive() {
    let (mut srv, addr) = gns_server(&[
        "--echo",
        "--once",
        "--timeout-connected-ms",
        &IDLE_TIMEOUT.to_string(),
    ]);
    let mut sw = Sw::new(1, &[]);
    let c = sw.connect(addr, &[ConfigValue::TimeoutConnected(IDLE_TIMEOUT)]);
    assert!(sw.pump_until(LIMIT, |sw| sw.s.connection_state(c) == St::Connected));
    sw.send(c, 0, send_flags::RELIABLE, b"before".to_vec());
    assert!(sw.pump_until(LIMIT, |sw| sw.got.len() == 1));
    sw.pump_for(Duration::from_millis(IDLE_MS));
    assert_eq!(
        sw.s.connection_state(c),
        St::Connected,
        "{:?}",
        sw.states(c)
    );
    sw.send(c, 0, send_flags::RELIABLE, b"after".to_vec());
    assert!(sw.pump_until(LIMIT, |sw| sw.got.len() == 2));
    assert!(sw.s.close_connection(c, 1000, "idle", false));
    let (done, status) = srv.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
    let texts: Vec<String> = gns_got(&srv).into_iter().map(|g| g.text).collect();
    assert_eq!(texts, ["before", "after"]);
    assert!(!gns_status_seen(&srv, "ProblemDetectedLocally"));
    assert_eq!(srv.of_kind("CLOSED")[0].get("debug"), Some("idle"));
}

// ---------------------------------------------------------------------------------------------
// The other way round: Sockworks goes silent (100 % fake loss both ways, as if its process had
// died; it cannot be killed apart from the test) and GNS, with TimeoutConnected 2 s, must time
// the connection out.

/// Silences `sw` once `peer` has printed a line matching `ready`.
fn silence_when(
    sw: &mut Sw,
    peer: &mut PeerProc,
    ready: impl Fn(&sockworks_interop::events::Event) -> bool,
) {
    assert!(sw.pump_until(LIMIT, |_| peer.ready().iter().any(&ready)));
    for v in [
        ConfigValue::FakePacketLossSend(100.0),
        ConfigValue::FakePacketLossRecv(100.0),
    ] {
        assert!(sw.s.set_global_config_value(&v));
    }
}

fn check_gns_timed_out(peer: &mut PeerProc) {
    let watch = Stopwatch::start();
    let closed = peer.wait_for("CLOSED", |e| e.kind == "CLOSED");
    let took = watch.elapsed();
    assert_eq!(
        closed.get("state"),
        Some("ProblemDetectedLocally"),
        "{closed:?}"
    );
    assert_eq!(closed.num::<i32>("reason"), Some(END_TIMEOUT), "{closed:?}");
    assert!(
        took <= Duration::from_secs(8),
        "GNS timed out after {took:?}"
    );
    let (done, status) = peer.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
}

const SILENT_SCRIPT_TAIL: &str = "sleep 300; send rn 0 still-there; waitclose 15000";

#[test]
fn gns_to_sw_sockworks_silenced() {
    let mut sw = Sw::new(2, &[]);
    sw.echo = true;
    let addr = sw.listen(&[]);
    let script = format!("send rn 0 hi; expect 1 5000; {SILENT_SCRIPT_TAIL}");
    let mut cli = gns_client(
        addr,
        &script,
        &["--timeout-connected-ms", &SHORT_TIMEOUT.to_string()],
    );
    silence_when(&mut sw, &mut cli, |e| e.kind == "EXPECT_OK");
    check_gns_timed_out(&mut cli);
}

#[test]
fn sw_to_gns_sockworks_silenced() {
    let script = format!("expect 1 5000; send rn 0 ok; {SILENT_SCRIPT_TAIL}");
    let (mut srv, addr) = gns_server(&[
        "--once",
        "--timeout-connected-ms",
        &SHORT_TIMEOUT.to_string(),
        "--script",
        &script,
    ]);
    let mut sw = Sw::new(1, &[]);
    let c = sw.connect(addr, &[]);
    assert!(sw.pump_until(LIMIT, |sw| sw.s.connection_state(c) == St::Connected));
    sw.send(c, 0, send_flags::RELIABLE_NO_NAGLE, b"hi".to_vec());
    silence_when(&mut sw, &mut srv, |e| e.kind == "SENT");
    check_gns_timed_out(&mut srv);
}
