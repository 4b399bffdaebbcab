//! GNS-to-GNS runs of `gns-peer`: proves the peer itself before Sockworks is put opposite it.
//!
//! Every child is killed when its handle drops, every wait has a deadline, ports come from
//! port 0 (the server's LISTENING line), and all traffic stays on 127.0.0.1.

use sockworks_interop::payload::{fnv_hex, pattern};
use sockworks_interop::process::{FAST, PeerProc};

/// Starts a server with `args` and returns it with its port.
fn server(args: &[&str]) -> (PeerProc, String) {
    let mut srv = PeerProc::spawn(
        env!("CARGO_BIN_EXE_gns-peer"),
        "server",
        &[&["server", "--bind", "127.0.0.1:0"], args].concat(),
    );
    let listening = srv.wait_for("LISTENING", |e| e.kind == "LISTENING");
    let port = listening.get("port").expect("port=").to_owned();
    assert_ne!(port, "0");
    (srv, port)
}

fn client(port: &str, script: &str, extra: &[&str]) -> PeerProc {
    let addr = format!("127.0.0.1:{port}");
    let args = [&["client", "--connect", &addr, "--script", script], extra].concat();
    PeerProc::spawn(env!("CARGO_BIN_EXE_gns-peer"), "client", &args)
}

#[test]
fn echo_returns_reliable_and_unreliable_messages_intact_and_closes_cleanly() {
    let (mut srv, port) = server(&[&["--echo", "--once"], &FAST[..]].concat());
    let mut cli = client(
        &port,
        "send r 0 hello; send u 0 world; sendsize r 0 102400; send r 0 after; \
         expect 4 20000; close 1000 bye linger",
        &FAST,
    );

    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "client DONE {done:?}");
    assert!(status.success(), "client exit {status}");

    let recv = cli.of_kind("RECV");
    assert_eq!(recv.len(), 4, "client RECV lines {recv:?}");
    let reliable: Vec<_> = recv
        .iter()
        .filter(|e| e.get("reliable") == Some("1"))
        .collect();
    let sizes: Vec<usize> = reliable.iter().filter_map(|e| e.num("size")).collect();
    assert_eq!(
        sizes,
        [5, 102_400, 5],
        "reliable echoes arrive in send order"
    );
    assert_eq!(reliable[0].get("text"), Some("hello"));
    assert_eq!(reliable[1].get("pattern"), Some("1"));
    assert_eq!(
        reliable[1].get("fnv"),
        Some(fnv_hex(&pattern(102_400)).as_str())
    );
    assert_eq!(reliable[2].get("text"), Some("after"));
    assert_eq!(reliable[2].get("fnv"), Some(fnv_hex(b"after").as_str()));
    let unreliable: Vec<_> = recv
        .iter()
        .filter(|e| e.get("reliable") == Some("0"))
        .collect();
    assert_eq!(unreliable.len(), 1, "loopback loses nothing");
    assert_eq!(unreliable[0].get("text"), Some("world"));
    assert!(recv.iter().all(|e| e.get("lane") == Some("0")));

    let closed = srv.wait_for("CLOSED", |e| e.kind == "CLOSED");
    assert_eq!(closed.get("state"), Some("ClosedByPeer"));
    assert_eq!(closed.num::<u32>("reason"), Some(1000));
    assert_eq!(closed.get("debug"), Some("bye"));
    let (done, status) = srv.finish();
    assert_eq!(done.get("ok"), Some("1"), "server DONE {done:?}");
    assert!(status.success(), "server exit {status}");
    assert_eq!(srv.of_kind("RECV").len(), 4);
    assert_eq!(srv.of_kind("SENT").len(), 4, "every message echoed");
}

#[test]
fn refusing_server_closes_the_client_with_reason_1234() {
    let (mut srv, port) = server(&["--refuse", "--once", "--max-seconds", "30"]);
    let mut cli = client(&port, "send r 0 never", &["--max-seconds", "30"]);

    let closed = cli.wait_for("CLOSED", |e| e.kind == "CLOSED");
    assert_eq!(closed.get("state"), Some("ClosedByPeer"));
    assert_eq!(closed.num::<u32>("reason"), Some(1234));
    assert_eq!(closed.get("debug"), Some("refused"));
    let (done, status) = cli.finish();
    assert_eq!(
        done.get("ok"),
        Some("0"),
        "a refused client did not run its script"
    );
    assert!(!status.success());
    assert!(cli.of_kind("SENT").is_empty());
    assert!(
        !cli.seen
            .iter()
            .any(|e| e.kind == "STATUS" && e.get("new") == Some("Connected"))
    );

    srv.wait_for("REFUSED", |e| e.kind == "REFUSED");
    let (done, _) = srv.finish();
    assert_eq!(done.get("ok"), Some("1"));
    assert!(srv.of_kind("ACCEPTED").is_empty());
}

#[test]
fn reliable_messages_stay_in_order_per_lane_under_10pct_loss() {
    let lossy = [
        "--lanes",
        "0:1,1:1",
        "--loss-send",
        "10",
        "--loss-recv",
        "10",
    ];
    let (mut srv, port) = server(&[&["--echo", "--once"], &lossy[..], &FAST[..]].concat());
    let mut cli = client(
        &port,
        "sendsize r 1 3000 20; sendsize r 0 500 20; expect 40 25000; close 1000 done",
        &[&lossy[..], &FAST[..]].concat(),
    );

    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "client DONE {done:?}");
    assert!(status.success());
    assert_eq!(cli.of_kind("LANES").len(), 1);
    for (lane, size) in [("0", 500), ("1", 3000)] {
        let on_lane: Vec<_> = cli
            .of_kind("RECV")
            .into_iter()
            .filter(|e| e.get("lane") == Some(lane))
            .collect();
        assert_eq!(on_lane.len(), 20, "lane {lane}");
        assert!(on_lane.iter().all(|e| e.num("size") == Some(size)
            && e.get("reliable") == Some("1")
            && e.get("pattern") == Some("1")));
        let nums: Vec<u64> = on_lane.iter().filter_map(|e| e.num("num")).collect();
        assert!(
            nums.windows(2).all(|w| w[0] < w[1]),
            "lane {lane} order {nums:?}"
        );
    }
    let closed = srv.wait_for("CLOSED", |e| e.kind == "CLOSED");
    assert_eq!(closed.num::<u32>("reason"), Some(1000));
    let (done, _) = srv.finish();
    assert_eq!(done.get("ok"), Some("1"));
}

#[test]
fn server_script_sends_to_an_echoing_client_and_sees_its_close() {
    let lanes = ["--lanes", "0:1,1:1"];
    let (mut srv, port) = server(
        &[
            &[
                "--once",
                "--script",
                "send r 0 ping; sendsize r 1 5000; send u 1 unrel; expect 3 20000; \
                 waitclose 20000",
            ],
            &lanes[..],
            &FAST[..],
        ]
        .concat(),
    );
    let mut cli = client(
        &port,
        "expect 3 20000; waitsent 20000; close 1003 thanks",
        &[&["--echo"], &lanes[..], &FAST[..]].concat(),
    );

    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "client DONE {done:?}");
    assert!(status.success());
    let echoed: Vec<_> = cli.of_kind("SENT");
    assert_eq!(echoed.len(), 3);
    assert!(echoed.iter().all(|e| e.get("echo") == Some("1")));

    let (done, status) = srv.finish();
    assert_eq!(done.get("ok"), Some("1"), "server DONE {done:?}");
    assert!(status.success());
    assert_eq!(srv.of_kind("PEER_CLOSED").len(), 1);
    let closed = srv.of_kind("CLOSED");
    assert_eq!(closed[0].num::<u32>("reason"), Some(1003));
    assert_eq!(closed[0].get("debug"), Some("thanks"));
    let recv = srv.of_kind("RECV");
    let texts: Vec<_> = recv
        .iter()
        .map(|e| (e.get("lane"), e.get("text")))
        .collect();
    assert!(texts.contains(&(Some("0"), Some("ping"))), "{texts:?}");
    assert!(texts.contains(&(Some("1"), Some("unrel"))), "{texts:?}");
    assert!(recv.iter().any(|e| e.get("lane") == Some("1")
        && e.num("size") == Some(5000_usize)
        && e.get("pattern") == Some("1")));
}
