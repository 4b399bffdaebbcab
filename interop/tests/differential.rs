//! The differential test (issue 6): one seeded script of messages (mixed lanes, sizes and
//! reliability) is sent through GNS-to-GNS, GNS-to-Sockworks and Sockworks-to-GNS, each
//! server echoing, on a network with 20 % fake loss and 20 % reorder on each end's sends. Every run must
//! deliver, at the server and back at the client, the same sequence of reliable messages per
//! lane, and that sequence must be the script's.

mod common;

use common::*;
use sockworks::{ConfigValue, ConnectionState as St, send_flags};
use sockworks_interop::payload::{fnv_hex, pattern};
use std::time::Duration;

const SEED: u64 = 0x5eed_0006;
const MESSAGES: usize = 300;
const LANES: &str = "0:1,1:2,1:1,2:1";
const LANE_PRIOS: [i32; 4] = [0, 1, 1, 2];
const LANE_WEIGHTS: [u16; 4] = [1, 2, 1, 1];
const GNS_NET: [&str; 8] = [
    "--loss-send",
    "20",
    "--reorder-send",
    "20",
    "--reorder-time",
    "10",
    "--lanes",
    LANES,
];
const LIMIT: Duration = Duration::from_secs(25);

/// Unreliable messages above this go reliably, in GNS (`k_cbMaxUnreliableMsgSizeSend`) and in
/// Sockworks alike.
const MAX_UNRELIABLE: usize = 15 * 1100;

/// One scripted message.
#[derive(Debug, Clone, Copy)]
struct Msg {
    lane: u16,
    reliable: bool,
    size: usize,
}

impl Msg {
    /// Whether it travels reliably (asked for, or too large to go unreliably).
    fn delivered_reliably(&self) -> bool {
        self.reliable || self.size > MAX_UNRELIABLE
    }
}

/// xorshift64*: a fixed, dependency-free generator for the script.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn script_messages() -> Vec<Msg> {
    let mut rng = Rng(SEED);
    (0..MESSAGES)
        .map(|_| {
            let lane = rng.below(4) as u16;
            let reliable = rng.below(10) < 7;
            let size = match rng.below(20) {
                0 => 20_000 + rng.below(100_000),
                1..=3 => 1500 + rng.below(18_500),
                _ => 1 + rng.below(1500),
            } as usize;
            Msg {
                lane,
                reliable,
                size,
            }
        })
        .collect()
}

/// The script's reliable messages per lane: (size, checksum) in send order.
type PerLane = Vec<Vec<(usize, String)>>;

fn expected(msgs: &[Msg]) -> PerLane {
    let mut out = vec![Vec::new(); 4];
    for m in msgs.iter().filter(|m| m.delivered_reliably()) {
        out[usize::from(m.lane)].push((m.size, fnv_hex(&pattern(m.size))));
    }
    out
}

fn per_lane(got: &[Got]) -> PerLane {
    (0..4)
        .map(|lane| {
            reliable_on(got, lane)
                .into_iter()
                .map(|g| (g.size, g.fnv))
                .collect()
        })
        .collect()
}

fn reliable_count(msgs: &[Msg]) -> usize {
    msgs.iter().filter(|m| m.delivered_reliably()).count()
}

fn gns_script(msgs: &[Msg]) -> String {
    let mut s: String = msgs
        .iter()
        .map(|m| {
            let mode = if m.reliable { "r" } else { "u" };
            format!("sendsize {mode} {} {}; ", m.lane, m.size)
        })
        .collect();
    s.push_str(&format!(
        "expectr {} 25000; waitsent 25000; close 1000 diff",
        reliable_count(msgs)
    ));
    s
}

fn lossy_sw() -> Sw {
    let mut sw = Sw::new(
        1,
        &[
            ConfigValue::FakePacketLossSend(20.0),
            ConfigValue::FakePacketReorderSend(20.0),
            ConfigValue::FakePacketReorderTime(10),
        ],
    );
    sw.lanes = Some((LANE_PRIOS.to_vec(), LANE_WEIGHTS.to_vec()));
    sw
}

/// What the server received and what came back to the client, per lane.
struct Run {
    name: &'static str,
    server: PerLane,
    client: PerLane,
}

fn gns_to_gns(msgs: &[Msg]) -> Run {
    let (mut srv, addr) = gns_server(&[&["--echo"][..], &GNS_NET[..]].concat());
    let mut cli = gns_client(addr, &gns_script(msgs), &GNS_NET);
    let (done, _) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "gns client: {done:?}");
    srv.ready();
    Run {
        name: "gns-to-gns",
        server: per_lane(&gns_got(&srv)),
        client: per_lane(&gns_got(&cli)),
    }
}

fn gns_to_sw(msgs: &[Msg]) -> Run {
    let mut sw = lossy_sw();
    sw.echo = true;
    let addr = sw.listen(&[]);
    let mut cli = gns_client(addr, &gns_script(msgs), &GNS_NET);
    // The close may be lost on this network: the client's DONE line ends the run.
    assert!(sw.pump_until(LIMIT, |_| cli.ready().iter().any(|e| e.kind == "DONE")));
    let (done, _) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "gns client: {done:?}");
    Run {
        name: "gns-to-sockworks",
        server: per_lane(&sw.got()),
        client: per_lane(&gns_got(&cli)),
    }
}

fn sw_to_gns(msgs: &[Msg]) -> Run {
    let (mut srv, addr) = gns_server(&[&["--echo"][..], &GNS_NET[..]].concat());
    let mut sw = lossy_sw();
    let c = sw.connect(addr, &[]);
    assert!(sw.pump_until(LIMIT, |sw| sw.s.connection_state(c) == St::Connected));
    for m in msgs {
        let flags = if m.reliable {
            send_flags::RELIABLE
        } else {
            send_flags::UNRELIABLE
        };
        sw.send(c, m.lane, flags, pattern(m.size));
    }
    let want = reliable_count(msgs);
    assert!(
        sw.pump_until(LIMIT, |sw| sw.got().iter().filter(|g| g.reliable).count()
            >= want),
        "sockworks client got its reliable echoes"
    );
    // Every echo was sent after its RECV line: the server printed them all.
    wait_count(&mut srv, "reliable RECV", want, |e| {
        e.kind == "RECV" && e.get("reliable") == Some("1")
    });
    let server_got = gns_got(&srv);
    assert!(sw.s.close_connection(c, 1000, "diff", false));
    Run {
        name: "sockworks-to-gns",
        server: per_lane(&server_got),
        client: per_lane(&sw.got()),
    }
}

#[test]
fn same_seeded_script_delivers_the_same_reliable_sequence_per_lane() {
    let msgs = script_messages();
    let want = expected(&msgs);
    assert!(
        want.iter().all(|lane| lane.len() >= 10),
        "the seed uses every lane"
    );
    let runs: Vec<Run> = std::thread::scope(|s| {
        let a = s.spawn(|| gns_to_gns(&msgs));
        let b = s.spawn(|| gns_to_sw(&msgs));
        let c = s.spawn(|| sw_to_gns(&msgs));
        [a, b, c].into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in &runs {
        for (lane, want_lane) in want.iter().enumerate() {
            assert_eq!(
                run.server[lane], runs[0].server[lane],
                "{} vs {}: server side, lane {lane}",
                run.name, runs[0].name
            );
            assert_eq!(
                run.client[lane], runs[0].client[lane],
                "{} vs {}: echoes at the client, lane {lane}",
                run.name, runs[0].name
            );
            assert_eq!(
                &run.server[lane], want_lane,
                "{}: server, lane {lane}",
                run.name
            );
            assert_eq!(
                &run.client[lane], want_lane,
                "{}: client, lane {lane}",
                run.name
            );
        }
    }
}
