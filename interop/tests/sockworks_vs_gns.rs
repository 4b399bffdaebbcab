//! The early proof against the real library (issue 3): the Sockworks protocol core, driven over
//! a plain blocking UDP socket on 127.0.0.1, handshakes with a real GNS peer in both
//! directions, exchanges reliable and unreliable messages each way, and closes cleanly.

use std::time::Duration;

use sockworks_engine::blocking::UdpDriver;
use sockworks_engine::proto::connection::{ApiState, State};
use sockworks_engine::proto::endpoint::{ConnectionId, Endpoint, EndpointConfig};
use sockworks_engine::proto::snp::send_flags;
use sockworks_interop::payload::{fnv_hex, pattern};
use sockworks_interop::process::{FAST, PeerProc};

const LIMIT: Duration = Duration::from_secs(20);

fn gns(name: &'static str, args: &[&str]) -> PeerProc {
    PeerProc::spawn(env!("CARGO_BIN_EXE_gns-peer"), name, args)
}

fn fast_config(listen: bool) -> EndpointConfig {
    let mut cfg = EndpointConfig {
        listen,
        ..Default::default()
    };
    cfg.connection.snp.send_rate_min = 4_000_000;
    cfg.connection.snp.send_rate_max = 4_000_000;
    cfg
}

fn state(ep: &Endpoint, id: ConnectionId) -> Option<State> {
    ep.connection(id).map(|c| c.state())
}

#[test]
fn sockworks_client_talks_to_gns_server() {
    let mut srv = gns(
        "gns-server",
        &[
            &["server", "--bind", "127.0.0.1:0", "--echo", "--once"],
            &FAST[..],
        ]
        .concat(),
    );
    let port: u16 = srv
        .wait_for("LISTENING", |e| e.kind == "LISTENING")
        .num("port")
        .unwrap();
    let mut drv = UdpDriver::bind("127.0.0.1:0".parse().unwrap(), fast_config(false), 7).unwrap();
    let server: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let now = drv.now();
    let c = drv.endpoint.connect(now, server.into(), None).unwrap();
    assert!(
        drv.run_until(LIMIT, |ep, _| state(ep, c) == Some(State::Connected))
            .unwrap(),
        "handshake"
    );

    let big = pattern(100_000);
    let now = drv.now();
    drv.endpoint
        .send_message(now, c, 0, send_flags::RELIABLE, b"hello reliable".to_vec())
        .unwrap();
    drv.endpoint
        .send_message(
            now,
            c,
            0,
            send_flags::UNRELIABLE,
            b"hello unreliable".to_vec(),
        )
        .unwrap();
    drv.endpoint
        .send_message(now, c, 0, send_flags::RELIABLE, big.clone())
        .unwrap();
    let mut echoed = Vec::new();
    assert!(
        drv.run_until(LIMIT, |ep, _| {
            echoed.extend(std::iter::from_fn(|| ep.poll_message(c)));
            echoed.len() == 3
        })
        .unwrap(),
        "echoes: got {}",
        echoed.len()
    );
    let reliable: Vec<_> = echoed
        .iter()
        .filter(|m| m.reliable)
        .map(|m| m.data.clone())
        .collect();
    assert_eq!(
        reliable,
        [b"hello reliable".to_vec(), big.clone()],
        "reliable echoes in order"
    );
    let unreliable: Vec<_> = echoed.iter().filter(|m| !m.reliable).collect();
    assert_eq!(unreliable.len(), 1);
    assert_eq!(unreliable[0].data, b"hello unreliable");

    let recv = srv.wait_for("third RECV", |e| {
        e.kind == "RECV" && e.num::<usize>("size") == Some(100_000)
    });
    assert_eq!(
        recv.get("fnv"),
        Some(fnv_hex(&big).as_str()),
        "GNS received the 100 KB message intact"
    );

    let now = drv.now();
    drv.endpoint
        .close(now, c, 1000, "bye from sockworks", false)
        .unwrap();
    drv.run_until(Duration::from_millis(300), |_, _| false)
        .unwrap();
    let closed = srv.wait_for("CLOSED", |e| e.kind == "CLOSED");
    assert_eq!(closed.get("state"), Some("ClosedByPeer"));
    assert_eq!(closed.num::<u32>("reason"), Some(1000));
    assert_eq!(closed.get("debug"), Some("bye from sockworks"));
    let (done, status) = srv.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
}

#[test]
fn gns_client_talks_to_sockworks_server() {
    let mut drv = UdpDriver::bind("127.0.0.1:0".parse().unwrap(), fast_config(true), 8).unwrap();
    let addr = drv.local_addr().unwrap().to_string();
    let mut cli = gns(
        "gns-client",
        &[
            &["client", "--connect", &addr, "--script"],
            &["send r 0 hello reliable; send u 0 hello unreliable; sendsize r 0 100000; expect 3 10000; close 1000 bye"][..],
            &FAST[..],
        ]
        .concat(),
    );
    // Accept the connection, echo every message, until the client closes.
    let mut conn = None;
    let mut echoed = 0;
    let mut closed = None;
    let finished = drv
        .run_until(LIMIT, |ep, now| {
            while let Some(ev) = ep.poll_event() {
                if ev.change.new == ApiState::Connecting && ev.incoming {
                    ep.accept(now, ev.connection).unwrap();
                    conn = Some(ev.connection);
                }
                if ev.change.new == ApiState::ClosedByPeer {
                    closed = Some((ev.change.end_reason, ev.change.end_debug.clone()));
                }
            }
            if let Some(c) = conn {
                while let Some(m) = ep.poll_message(c) {
                    let flags = if m.reliable {
                        send_flags::RELIABLE
                    } else {
                        send_flags::UNRELIABLE
                    };
                    ep.send_message(now, c, m.lane, flags, m.data).unwrap();
                    echoed += 1;
                }
            }
            closed.is_some()
        })
        .unwrap();
    assert!(finished, "GNS client closed (echoed {echoed})");
    assert_eq!(echoed, 3);
    assert_eq!(closed, Some((1000, "bye".to_owned())));
    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
    let recv = cli.of_kind("RECV");
    assert_eq!(recv.len(), 3);
    let big = recv
        .iter()
        .find(|e| e.num::<usize>("size") == Some(100_000))
        .expect("100 KB echo");
    assert_eq!(big.get("pattern"), Some("1"));
    assert!(
        recv.iter()
            .any(|e| e.get("text") == Some("hello reliable") && e.get("reliable") == Some("1"))
    );
    assert!(
        recv.iter()
            .any(|e| e.get("text") == Some("hello unreliable") && e.get("reliable") == Some("0"))
    );
    let c = conn.unwrap();
    let now = drv.now();
    drv.endpoint.close(now, c, 0, "", false).unwrap();
}
