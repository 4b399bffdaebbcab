//! End-to-end stats reports with real GNS (spec §4.13, §5.5): each side's receive quality
//! reaches the other inline in data packets, so `GetConnectionRealTimeStatus` reports a remote
//! quality on both ends. GNS reports first at 20 s, so this runs for about 35 s.

mod common;

use std::time::Duration;

use common::*;
use sockworks::ConnectionState as St;
use sockworks_interop::process::PeerProc;

/// GNS drops this share of what it sends and of what it receives (its FakePacketLoss_*): high
/// enough that a 5 s interval without a drop is unlikely even when a loaded machine slows the
/// client to a few dozen packets per interval (at 10 %, one such report read 1.0 under CI).
const LOSS_PCT: &str = "25";

#[test]
fn gns_and_sockworks_report_their_receive_quality_to_each_other() {
    let mut sw = Sw::new(1, &[]);
    sw.echo = true;
    let addr = sw.listen(&[]);
    // 50 unreliable NoNagle messages a second for 34 s, echoed back: a few hundred packets
    // per 5 s interval each way, so the loss shows in every interval.
    let mut script: String = "sendsize un 0 200 5; sleep 100; ".repeat(340);
    script.push_str("status; close 1000 done");
    let server = addr.to_string();
    let mut args = vec![
        "client",
        "--connect",
        &server,
        "--script",
        &script,
        "--loss-send",
        LOSS_PCT,
        "--loss-recv",
        LOSS_PCT,
    ];
    // `gns_common`'s switches, with a longer bound on the run.
    let (rate, buffer) = (RATE.to_string(), SEND_BUFFER.to_string());
    args.extend([
        "--send-rate",
        &rate,
        "--send-buffer",
        &buffer,
        "--max-seconds",
        "70",
    ]);
    let mut cli = PeerProc::spawn(env!("CARGO_BIN_EXE_gns-peer"), "gns-client", &args);

    // Our side's view, sampled while the connection is up, until the GNS client is done
    // (its close may be lost to its own fake loss, so ClosedByPeer is not waited for).
    let mut last = None;
    let watch = Stopwatch::start();
    let mut done = false;
    while watch.elapsed() < Duration::from_secs(60) && !done {
        sw.pump();
        if let Some(&c) = sw.conns.first()
            && let Ok(st) = sw.s.get_connection_real_time_status(c, &mut [])
            && st.state == Some(St::Connected)
        {
            last = Some((st.quality_local, st.quality_remote));
        }
        done = cli.ready().iter().any(|e| e.kind == "DONE");
        std::thread::sleep(Duration::from_millis(2));
    }
    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());

    // GNS's view: its own receive quality and ours, from the reports we sent it.
    let stats = cli.of_kind("STATS");
    let gns_local: f32 = stats[0].num("quality_local").expect("quality_local");
    let gns_remote: f32 = stats[0].num("quality_remote").expect("quality_remote");
    // Both directions lose 25 % (GNS drops on send and on receive), so each side receives
    // about 56-75 % of what the other sent, depending on which packets the losses hit.
    let plausible = 0.4..0.95;
    assert!(plausible.contains(&gns_local), "GNS local {gns_local}");
    assert!(
        plausible.contains(&gns_remote),
        "GNS's remote quality (our report) {gns_remote}: {stats:?}"
    );
    let (sw_local, sw_remote) = last.expect("status sampled while connected");
    assert!(plausible.contains(&sw_local), "our local {sw_local}");
    assert!(
        plausible.contains(&sw_remote),
        "our remote quality (GNS's report) {sw_remote}"
    );
}
