//! An initiator and an acceptor through a seeded signaling channel that loses 30 %,
//! duplicates 50 % and reorders (random 1-80 ms delays), as upstream's `test_p2p.py` does.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::*;

/// One direction of the signaling channel.
#[derive(Default)]
struct Channel {
    held: Vec<(Timestamp, u64, Vec<u8>)>,
    seq: u64,
    sent: usize,
}

fn pct(rng: &mut ChaCha8Rng) -> u32 {
    rng.next_u32() % 100
}

impl Channel {
    fn send(&mut self, rng: &mut ChaCha8Rng, now: Timestamp, bytes: Vec<u8>) {
        self.sent += 1;
        if pct(rng) < 30 {
            return;
        }
        let copies = if pct(rng) < 50 { 2 } else { 1 };
        for _ in 0..copies {
            let delay = Duration::from_millis(1 + u64::from(rng.next_u32() % 80));
            self.seq += 1;
            self.held.push((now + delay, self.seq, bytes.clone()));
        }
    }

    fn take_due(&mut self, now: Timestamp) -> Vec<Vec<u8>> {
        self.held.sort_by_key(|(at, seq, _)| (*at, *seq));
        let n = self.held.iter().take_while(|(at, _, _)| *at <= now).count();
        self.held.drain(..n).map(|(_, _, b)| b).collect()
    }
}

fn ice_batch(side: &str, range: std::ops::Range<u32>) -> Vec<IceRendezvous> {
    range.map(|n| cand(&format!("{side}{n}"))).collect()
}

struct Outcome {
    connect_oks: usize,
    client_got: Vec<IceRendezvous>,
    server_got: Vec<IceRendezvous>,
    unacked: (usize, usize),
    signals: (usize, usize),
}

fn run(seed: u64) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut to_server, mut to_client) = (Channel::default(), Channel::default());
    let mut c = client(ms(0));
    for m in ice_batch("c", 0..3) {
        c.queue_ice(ms(0), m);
    }
    c.set_connect_request(ms(2), request());
    let mut s: Option<Signaling> = None;
    let mut accept_at = None;
    let mut last_server_send: Option<Timestamp> = None;
    let peer = Identity::parse(CLIENT).unwrap();
    let mut out = Outcome {
        connect_oks: 0,
        client_got: Vec::new(),
        server_got: Vec::new(),
        unacked: (0, 0),
        signals: (0, 0),
    };
    for step in 0..30_000 {
        let now = ms(step);
        for bytes in to_server.take_due(now) {
            let msg = parse_signal(&bytes).expect("our signals parse");
            let known = s.is_some();
            match route_signal(&msg, |id, r| known && *id == peer && r == CLIENT_ID) {
                SignalRoute::NewRequest { remote_id, .. } => {
                    let mut new = server(now);
                    new.set_remote(remote_id, CLIENT.into());
                    s = Some(new);
                    accept_at = Some(now + Duration::from_millis(30));
                }
                SignalRoute::Known(..) | SignalRoute::ToConnection(SERVER_ID) => {}
                other => panic!("unexpected route {other:?}"),
            }
            let conn = s.as_mut().expect("created above");
            let input = conn.handle_signal(now, &msg).expect("good signal");
            out.server_got.extend(input.ice);
        }
        if let (Some(conn), Some(at)) = (s.as_mut(), accept_at) {
            if now == at {
                conn.queue_connect_ok(now, ok());
                for m in ice_batch("s", 0..3) {
                    conn.queue_ice(now, m);
                }
            }
            if now == at + Duration::from_millis(1500) {
                for m in ice_batch("s", 3..5) {
                    conn.queue_ice(now, m);
                }
            }
        }
        if step == 1500 {
            for m in ice_batch("c", 3..5) {
                c.queue_ice(now, m);
            }
        }
        for bytes in to_client.take_due(now) {
            let msg = parse_signal(&bytes).expect("our signals parse");
            assert_eq!(
                route_signal(&msg, |_, _| false),
                SignalRoute::ToConnection(CLIENT_ID)
            );
            let input = c.handle_signal(now, &msg).expect("good signal");
            if input.connect_ok.is_some() {
                out.connect_oks += 1;
                c.connected(now);
            }
            out.client_got.extend(input.ice);
        }
        while let Some(sig) = c.poll_signal(now) {
            to_server.send(&mut rng, now, sig.encode_to_vec());
        }
        if let Some(conn) = s.as_mut() {
            while let Some(sig) = conn.poll_signal(now) {
                // The acceptor sends no connect retries: every signal is spaced.
                assert!(last_server_send.is_none_or(|t| now - t >= MIN_SEND_INTERVAL));
                last_server_send = Some(now);
                to_client.send(&mut rng, now, sig.encode_to_vec());
            }
        }
    }
    out.unacked = (
        c.unacked(),
        s.as_ref().map_or(usize::MAX, Signaling::unacked),
    );
    out.signals = (to_server.sent, to_client.sent);
    out
}

fn check(seed: u64) {
    let out = run(seed);
    assert_eq!(out.connect_oks, 1, "seed {seed}: connect_ok handled once");
    assert_eq!(out.client_got, ice_batch("s", 0..5), "seed {seed}");
    assert_eq!(out.server_got, ice_batch("c", 0..5), "seed {seed}");
    assert_eq!(out.unacked, (0, 0), "seed {seed}: everything acked");
}

#[test]
fn handshake_and_ice_survive_30pct_loss_50pct_duplication_and_reordering() {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        println!("SIM_SEED={seed}");
        check(seed);
        return;
    }
    for seed in 0..64 {
        check(seed);
    }
}

#[test]
fn quiet_channel_needs_few_signals() {
    // Once everything is acked, nobody signals: 30 s of simulated time stays cheap.
    let out = run(7);
    assert!(
        out.signals.0 < 40 && out.signals.1 < 40,
        "{:?}",
        out.signals
    );
}
