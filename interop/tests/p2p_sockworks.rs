//! P2P with Sockworks peers (`sw-p2p`, the public `sockworks` API) in network-namespace test
//! hosts: Sockworks with Sockworks, and with real GNS (`gns-p2p`) in both directions, over
//! custom signaling and ICE: a direct link, one NAT, two NATs with coturn as the STUN server,
//! relay-only through coturn TURN, a lossy duplicating signal channel, and a rejection.
//!
//! Needs root (network namespaces) and, for the STUN/TURN cases, coturn's `turnserver`;
//! without them each test prints `SKIP ...` and returns. `SWK_P2P_RUNS=N` repeats each
//! success case (default 3); `SETUP` lines give the setup times and their medians.

use sockworks_interop::coturn::{self, Coturn};
use sockworks_interop::netns::{Host, Topology};
use sockworks_interop::p2p_harness::{
    PairConfig, Side, connector_flags, run_ok, run_pair, runs, strings, usable,
};
use sockworks_interop::signal_relay::Impairment;
use sockworks_interop::stun_server::StunServer;

const GNS: &str = env!("CARGO_BIN_EXE_gns-p2p");
const SW: &str = env!("CARGO_BIN_EXE_sw-p2p");

/// (listener, connector) binaries of each pairing, with a name.
const PAIRS: [(&str, &str, &str); 3] = [
    ("sw->sw", SW, SW),
    ("sw->gns", GNS, SW),
    ("gns->sw", SW, GNS),
];

fn side<'a>(exe: &'a str, host: &'a Host, identity: &'a str) -> Side<'a> {
    Side {
        exe,
        host,
        identity,
        extra: Vec::new(),
    }
}

#[test]
fn direct_link_every_pairing() {
    if !usable("direct_link_every_pairing", false) {
        return;
    }
    let topo = Topology::direct().expect("topology");
    for (name, listener, connector) in PAIRS {
        let cfg = PairConfig::new(
            side(listener, &topo.b, "str:bob"),
            side(connector, &topo.a, "str:alice"),
        );
        for o in run_ok(&format!("direct {name}"), &cfg, runs()) {
            let remote = o
                .connector
                .connected()
                .and_then(|e| e.get("remote"))
                .expect("remote");
            assert!(
                remote.starts_with("10.1.0.2:") || remote.starts_with("[fd00:5eed:1::2]:"),
                "{name}: {remote}"
            );
            assert_eq!(connector_flags(&o) & 16, 0, "{name}: not relayed");
        }
    }
}

#[test]
fn one_nat_every_pairing() {
    if !usable("one_nat_every_pairing", false) {
        return;
    }
    let topo = Topology::one_nat().expect("topology");
    for (name, listener, connector) in PAIRS {
        let cfg = PairConfig::new(
            side(listener, &topo.b, "str:bob"),
            side(connector, &topo.a, "str:alice"),
        );
        for o in run_ok(&format!("one-nat {name}"), &cfg, runs()) {
            // The listener sees the NAT's public address (peer-reflexive), not 10.1.0.1.
            let remote = o
                .listener
                .connected()
                .and_then(|e| e.get("remote"))
                .expect("remote");
            assert!(remote.starts_with("10.100.0.1:"), "{name}: {remote}");
        }
    }
}

/// Sockworks asks coturn for its server-reflexive address with a plain Binding request (GNS
/// adds a MAPPED-ADDRESS that coturn refuses with 420), so two Sockworks peers behind NATs
/// connect through coturn as their STUN server, where two GNS peers cannot.
#[test]
fn two_nats_sockworks_peers_connect_with_coturn_as_stun() {
    let name = "two_nats_sockworks_peers_connect_with_coturn_as_stun";
    if !usable(name, true) {
        return;
    }
    let topo = Topology::two_nats().expect("topology");
    let turn = Coturn::start(topo.server(), None).expect("coturn");
    let mut cfg = PairConfig::new(side(SW, &topo.b, "str:bob"), side(SW, &topo.a, "str:alice"));
    cfg.common = strings(&["--stun", &turn.addr.to_string()]);
    for o in run_ok("two-nats sw->sw (coturn STUN, srflx)", &cfg, runs()) {
        let remote = o
            .connector
            .connected()
            .and_then(|e| e.get("remote"))
            .expect("remote");
        assert!(remote.starts_with("10.100.0.2:"), "B's NAT: {remote}");
        assert_eq!(connector_flags(&o) & 16, 0, "not relayed");
    }
}

/// GNS peers cannot use coturn for STUN (see `p2p.rs`), so the mixed pairings behind two NATs
/// use the test's own minimal STUN responder, which takes GNS's request too.
#[test]
fn two_nats_mixed_pairings_connect_with_server_reflexive_candidates() {
    let name = "two_nats_mixed_pairings_connect_with_server_reflexive_candidates";
    if !usable(name, false) {
        return;
    }
    let topo = Topology::two_nats().expect("topology");
    let stun = StunServer::start(topo.server(), coturn::PORT).expect("stun responder");
    for (name, listener, connector) in &PAIRS[1..] {
        let mut cfg = PairConfig::new(
            side(listener, &topo.b, "str:bob"),
            side(connector, &topo.a, "str:alice"),
        );
        cfg.common = strings(&["--stun", &stun.addr.to_string()]);
        for o in run_ok(
            &format!("two-nats {name} (STUN responder, srflx)"),
            &cfg,
            runs(),
        ) {
            let remote = o
                .connector
                .connected()
                .and_then(|e| e.get("remote"))
                .expect("remote");
            assert!(
                remote.starts_with("10.100.0.2:"),
                "{name}: B's NAT: {remote}"
            );
        }
    }
}

#[test]
fn relay_only_through_coturn_turn_every_pairing() {
    if !usable("relay_only_through_coturn_turn_every_pairing", true) {
        return;
    }
    let topo = Topology::two_nats().expect("topology");
    let turn = Coturn::start(topo.server(), Some(("u", "p"))).expect("coturn");
    for (name, listener, connector) in PAIRS {
        let mut cfg = PairConfig::new(
            side(listener, &topo.b, "str:bob"),
            side(connector, &topo.a, "str:alice"),
        );
        cfg.common = strings(&[
            "--ice-enable",
            "1",
            "--turn",
            &turn.addr.to_string(),
            "--turn-user",
            "u",
            "--turn-pass",
            "p",
        ]);
        // One run per pairing unless asked: each waits out TURN's slow first check (≈5.5 s,
        // GNS's too).
        let n = if std::env::var_os("SWK_P2P_RUNS").is_some() {
            runs()
        } else {
            1
        };
        for o in run_ok(&format!("two-nats TURN relay {name}"), &cfg, n) {
            assert_ne!(connector_flags(&o) & 16, 0, "{name}: Relayed flag expected");
        }
    }
}

#[test]
fn lossy_duplicating_signals_every_pairing() {
    if !usable("lossy_duplicating_signals_every_pairing", false) {
        return;
    }
    let topo = Topology::direct().expect("topology");
    for (name, listener, connector) in PAIRS {
        let mut cfg = PairConfig::new(
            side(listener, &topo.b, "str:bob"),
            side(connector, &topo.a, "str:alice"),
        );
        cfg.impairment = Impairment {
            loss: 30.0,
            dup: 50.0,
            reorder: 20.0,
            seed: 0x5eed,
        };
        let outs = run_ok(&format!("direct signals lossy {name}"), &cfg, runs());
        assert!(outs.iter().map(|o| o.relay.dropped).sum::<u64>() > 0);
    }
}

/// A Sockworks listener's rejection carries `from_identity` (GNS's does not), so a GNS
/// connector sees the application's reason at once instead of timing out.
#[test]
fn a_sockworks_rejection_reaches_gns_and_sockworks_connectors() {
    if !usable(
        "a_sockworks_rejection_reaches_gns_and_sockworks_connectors",
        false,
    ) {
        return;
    }
    let topo = Topology::direct().expect("topology");
    for (name, connector) in [("gns", GNS), ("sw", SW)] {
        let mut listener = side(SW, &topo.b, "str:bob");
        listener.extra = strings(&["--reject"]);
        let mut cfg = PairConfig::new(listener, side(connector, &topo.a, "str:alice"));
        cfg.common = strings(&["--timeout-initial-ms", "3000"]);
        cfg.max_seconds = 8;
        let out = run_pair(&cfg);
        eprintln!("P2P rejected by sw, connector {name}: {}", out.summary());
        assert!(!out.connector.ok);
        let end = out.connector.end().expect("connector end");
        assert_eq!(end.get("new"), Some("ClosedByPeer"), "{name}: {end:?}");
        assert_eq!(end.num::<u32>("reason"), Some(1234), "{name}: {end:?}");
    }
}
