//! Many application threads on shared connections at once: 8 threads send numbered reliable
//! messages on two lanes and receive, over two connections; nothing is lost or duplicated,
//! each sender's order holds on each lane, and the message numbers the senders were given are
//! unique per lane and are the ones the receivers see.

#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test]: a failed unwrap is a failed test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::*;
use sockworks::engine::shard::Clock;
use sockworks::{ConfigValue, Connection, EResult, Message, OutMessage, Sockets, send_flags};

/// Messages each sender sends (without loss).
const PER_SENDER: u32 = 4000;
/// Lanes on every connection.
const LANES: u16 = 2;
/// Longest any thread runs.
const LIMIT: Duration = Duration::from_secs(10);

/// What a sender was told: (lane, sequence, message number).
type Sent = Vec<(u16, u32, i64)>;

/// Payload: sender id, sequence number, lane, then padding.
fn payload(sender: u32, seq: u32, lane: u16) -> Vec<u8> {
    let mut p = Vec::with_capacity(24);
    p.extend_from_slice(&sender.to_le_bytes());
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&u32::from(lane).to_le_bytes());
    p.resize(24, sender as u8);
    p
}

/// Sends `count` messages on `conn` in batches of 1 to 4, lanes alternating.
fn sender(s: Sockets, conn: Connection, id: u32, count: u32) -> Sent {
    let clock = Clock::new();
    let start = clock.now();
    let mut sent = Sent::new();
    let mut seq = 0;
    while seq < count {
        assert!(
            clock.now().saturating_since(start) < LIMIT,
            "sender {id} ran out of time"
        );
        let batch = (1 + seq % 4).min(count - seq);
        let msgs: Vec<OutMessage> = (seq..seq + batch)
            .map(|q| {
                let lane = (q % u32::from(LANES)) as u16;
                OutMessage {
                    conn,
                    data: payload(id, q, lane),
                    flags: send_flags::RELIABLE,
                    lane,
                }
            })
            .collect();
        let lanes: Vec<u16> = msgs.iter().map(|m| m.lane).collect();
        let numbers = s.send_messages(msgs);
        for ((q, lane), n) in (seq..).zip(lanes).zip(numbers) {
            assert!(n > 0, "sender {id} message {q}: {n}");
            sent.push((lane, q, n));
        }
        seq += batch;
        if seq % 64 == 0 {
            // Other calls on the same connection meanwhile.
            assert!(s.get_connection_info(conn).is_some());
            std::thread::yield_now();
        }
    }
    sent
}

/// Receives on both ends of one connection until `want` messages arrived at each end.
fn receiver(
    ends: [(Sockets, Connection); 2],
    want: [usize; 2],
    done: Arc<AtomicUsize>,
) -> [Vec<Message>; 2] {
    let clock = Clock::new();
    let start = clock.now();
    let mut got: [Vec<Message>; 2] = [Vec::new(), Vec::new()];
    while (got[0].len() < want[0] || got[1].len() < want[1])
        && clock.now().saturating_since(start) < LIMIT
    {
        let socks = [&ends[0].0, &ends[1].0];
        let seen = generations(&socks);
        let mut idle = true;
        for (i, (s, conn)) in ends.iter().enumerate() {
            let n = s.receive_messages_on_connection(*conn, &mut got[i], 64);
            assert!(n >= 0, "receive on a live connection");
            idle &= n == 0;
        }
        if idle {
            wait_activity(&socks, &seen);
        }
    }
    done.fetch_add(1, Ordering::Relaxed);
    got
}

/// Checks one direction of one connection: what the senders were told against what arrived.
fn check_direction(what: &str, senders: &[(u32, Sent)], received: &[Message]) {
    // Numbers given out: unique and 1..=N on each lane.
    let mut by_lane: BTreeMap<u16, Vec<i64>> = BTreeMap::new();
    let mut number_of: BTreeMap<(u32, u32), (u16, i64)> = BTreeMap::new();
    for (id, sent) in senders {
        for &(lane, seq, n) in sent {
            by_lane.entry(lane).or_default().push(n);
            number_of.insert((*id, seq), (lane, n));
        }
    }
    for (lane, nums) in &mut by_lane {
        nums.sort_unstable();
        let want: Vec<i64> = (1..=nums.len() as i64).collect();
        assert_eq!(*nums, want, "{what}: numbers on lane {lane}");
    }
    // Everything arrived once, with the number its sender was given.
    assert_eq!(received.len(), number_of.len(), "{what}: count");
    let mut seen = BTreeSet::new();
    let mut last_seq: BTreeMap<(u32, u16), u32> = BTreeMap::new();
    let mut last_num: BTreeMap<u16, i64> = BTreeMap::new();
    for m in received {
        let (id, seq, lane) = (u32_at(&m.data, 0), u32_at(&m.data, 4), u32_at(&m.data, 8));
        assert_eq!(u32::from(m.lane), lane, "{what}: lane of {id}/{seq}");
        assert_eq!(m.flags, send_flags::RELIABLE);
        assert!(seen.insert((id, seq)), "{what}: {id}/{seq} twice");
        let (sent_lane, n) = number_of[&(id, seq)];
        assert_eq!(sent_lane, m.lane, "{what}: {id}/{seq} lane");
        assert_eq!(m.message_number, n, "{what}: {id}/{seq} number");
        // Reliable on one lane: in order, per sender and per lane.
        if let Some(prev) = last_seq.insert((id, m.lane), seq) {
            assert!(
                prev < seq,
                "{what}: sender {id} lane {}: {seq} after {prev}",
                m.lane
            );
        }
        if let Some(prev) = last_num.insert(m.lane, m.message_number) {
            assert_eq!(prev + 1, m.message_number, "{what}: lane {} order", m.lane);
        }
    }
}

#[test]
fn eight_threads_on_two_connections() {
    run(0.0, PER_SENDER);
}

#[test]
fn eight_threads_on_two_connections_with_packet_loss() {
    run(5.0, PER_SENDER / 8);
}

/// The scenario with `loss` % of packets dropped each way.
fn run(loss: f32, per_sender: u32) {
    let big = [
        ConfigValue::SendBufferSize(8 << 20),
        ConfigValue::SendRateMin(64 << 20),
        ConfigValue::SendRateMax(64 << 20),
    ];
    let l = links(2, 2, 2, &big);
    for s in [&l.server, &l.client] {
        assert!(s.set_global_config_value(&ConfigValue::FakePacketLossSend(loss)));
    }
    for &(c, s) in &l.pairs {
        assert_eq!(
            l.client.configure_connection_lanes(c, &[0, 0], &[1, 1]),
            EResult::Ok
        );
        assert_eq!(
            l.server.configure_connection_lanes(s, &[0, 1], &[]),
            EResult::Ok
        );
    }
    let done = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for (k, &(c, s)) in l.pairs.iter().enumerate() {
        let k = k as u32;
        // Per connection: two senders at the client end, one at the server end, one receiver
        // for both ends.
        for (j, (sock, conn)) in [(&l.client, c), (&l.client, c), (&l.server, s)]
            .into_iter()
            .enumerate()
        {
            let id = k * 10 + j as u32;
            let sock = sock.clone();
            senders.push((
                k,
                j == 2,
                id,
                std::thread::spawn(move || sender(sock, conn, id, per_sender)),
            ));
        }
        let ends = [(l.server.clone(), s), (l.client.clone(), c)];
        let want = [2 * per_sender as usize, per_sender as usize];
        let d = done.clone();
        receivers.push(std::thread::spawn(move || receiver(ends, want, d)));
    }
    // (connection, towards the client?) -> senders and what they were told.
    let mut sent: BTreeMap<(u32, bool), Vec<(u32, Sent)>> = BTreeMap::new();
    for (k, to_client, id, h) in senders {
        sent.entry((k, to_client))
            .or_default()
            .push((id, h.join().unwrap()));
    }
    for (k, h) in receivers.into_iter().enumerate() {
        let [at_server, at_client] = h.join().unwrap();
        let k = k as u32;
        check_direction(
            &format!("conn {k} to server"),
            &sent[&(k, false)],
            &at_server,
        );
        check_direction(
            &format!("conn {k} to client"),
            &sent[&(k, true)],
            &at_client,
        );
    }
    assert_eq!(done.load(Ordering::Relaxed), 2);
    // Nothing more arrives afterwards (no duplicates late).
    for &(c, s) in &l.pairs {
        let mut extra = Vec::new();
        assert_eq!(
            l.server.receive_messages_on_connection(s, &mut extra, 16),
            0
        );
        assert_eq!(
            l.client.receive_messages_on_connection(c, &mut extra, 16),
            0
        );
    }
}
