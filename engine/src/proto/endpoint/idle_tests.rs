//! What an idle connection gives back (issue 16) changes nothing the peer can see: parked
//! keys re-expand for the next packet, freed queues refill, and a repeated ConnectRequest
//! still gets the very ConnectOK the first one got, until the client's data shows it has it.

use std::time::Duration;

use super::*;
use crate::proto::snp::send_flags;
use crate::testing::sim_secret;
use crate::wire::control::{ControlMessage, decode_control};

const CLIENT: &str = "127.0.0.1:5000";
const SERVER: &str = "127.0.0.1:6000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A listening server endpoint and a client endpoint (sim secrets 1 and 2).
fn server_and_client() -> (Endpoint, Endpoint) {
    let listen = EndpointConfig {
        listen: true,
        ..Default::default()
    };
    (
        Endpoint::new(listen, 1, &sim_secret(1)),
        Endpoint::new(EndpointConfig::default(), 2, &sim_secret(2)),
    )
}

/// Hands the server `datagram` as if from the client and returns everything it sends back.
fn from_client(s: &mut Endpoint, now: Timestamp, datagram: &[u8]) -> Vec<Vec<u8>> {
    let meta = RecvMeta {
        local: 0,
        from: addr(CLIENT),
    };
    s.handle_datagram(now, meta, &mut datagram.to_vec());
    let mut out = Vec::new();
    let mut replies = Vec::new();
    while s.poll_transmit(now, &mut out).is_some() {
        replies.push(std::mem::take(&mut out));
    }
    replies
}

/// Moves datagrams both ways until quiet; returns the client's and the server's datagrams.
fn shuttle(c: &mut Endpoint, s: &mut Endpoint, now: Timestamp) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut from_c, mut from_s) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let mut buf = Vec::new();
        let mut moved = false;
        while c.poll_transmit(now, &mut buf).is_some() {
            from_c.push(buf.clone());
            let meta = RecvMeta {
                local: 0,
                from: addr(CLIENT),
            };
            s.handle_datagram(now, meta, &mut buf);
            buf.clear();
            moved = true;
        }
        while s.poll_transmit(now, &mut buf).is_some() {
            from_s.push(buf.clone());
            c.handle_datagram(now, addr(SERVER).into(), &mut buf);
            buf.clear();
            moved = true;
        }
        if !moved {
            break;
        }
    }
    (from_c, from_s)
}

/// A connected pair: (client, its id, server, its id, the server's datagrams so far).
fn connected(now: Timestamp) -> (Endpoint, ConnectionId, Endpoint, ConnectionId, Vec<Vec<u8>>) {
    let (mut server, mut client) = server_and_client();
    let cid = client.connect(now, addr(SERVER).into(), None).unwrap();
    let (_, mut sent) = shuttle(&mut client, &mut server, now);
    let sid = server.poll_event().expect("incoming").connection;
    server.accept(now, sid).unwrap();
    sent.extend(shuttle(&mut client, &mut server, now).1);
    assert_eq!(server.connection(sid).unwrap().state(), State::Connected);
    assert_eq!(client.connection(cid).unwrap().state(), State::Connected);
    (client, cid, server, sid, sent)
}

/// Sends `data` reliably from `a` to `b` and returns what `b` received.
fn exchange(
    now: Timestamp,
    (a, aid): (&mut Endpoint, ConnectionId),
    (b, bid): (&mut Endpoint, ConnectionId),
    data: &[u8],
    client_first: bool,
) -> Option<Vec<u8>> {
    let flags = send_flags::RELIABLE | send_flags::NO_NAGLE;
    a.send_message(now, aid, 0, flags, data.to_vec()).unwrap();
    if client_first {
        shuttle(a, b, now);
    } else {
        shuttle(b, a, now);
    }
    b.poll_message(bid).map(|m| m.data)
}

/// [`exchange`], which must deliver `data` intact.
fn echo_ok(
    now: Timestamp,
    from: (&mut Endpoint, ConnectionId),
    to: (&mut Endpoint, ConnectionId),
    data: &[u8],
    client_first: bool,
) {
    let got = exchange(now, from, to, data, client_first);
    assert_eq!(got.as_deref(), Some(data));
}

/// Runs both ends' due timers at `now`, then moves what they send.
fn tick(c: &mut Endpoint, s: &mut Endpoint, now: Timestamp) {
    for ep in [&mut *c, &mut *s] {
        if ep.poll_timeout(now).is_some_and(|t| t <= now) {
            ep.handle_timeout(now);
        }
    }
    shuttle(c, s, now);
}

#[test]
fn idle_connections_park_their_keys_and_still_exchange_messages_both_ways() {
    let t0 = Timestamp::from_micros(1_000_000);
    let (mut c, cid, mut s, sid, _) = connected(t0);
    // Keys start parked: a connection that has just come up may stay idle.
    assert!(s.connection(sid).unwrap().keys_parked());
    assert!(c.connection(cid).unwrap().keys_parked());
    echo_ok(t0, (&mut c, cid), (&mut s, sid), b"ping", true);
    echo_ok(t0, (&mut s, sid), (&mut c, cid), b"pong", false);
    for _ in 0..crate::proto::connection::ONE_OFF_PACKETS {
        echo_ok(t0, (&mut s, sid), (&mut c, cid), b"more", false);
    }
    assert!(!s.connection(sid).unwrap().keys_parked());
    assert!(!c.connection(cid).unwrap().keys_parked());

    // Quiet for a second (acks go out on their timers meanwhile): both ends park.
    let t1 = t0 + Duration::from_secs(1);
    for step in 1..=10 {
        tick(&mut c, &mut s, t0 + Duration::from_millis(100 * step));
    }
    assert!(s.connection(sid).unwrap().keys_parked(), "server parked");
    assert!(c.connection(cid).unwrap().keys_parked(), "client parked");

    // The next packets, on both ends and in both directions, use one-off ciphers; a
    // connection that keeps exchanging expands its keys again.
    echo_ok(t1, (&mut s, sid), (&mut c, cid), b"after", false);
    echo_ok(t1, (&mut c, cid), (&mut s, sid), b"idle", true);
    for _ in 0..crate::proto::connection::ONE_OFF_PACKETS {
        echo_ok(t1, (&mut c, cid), (&mut s, sid), b"more", true);
    }
    assert!(!s.connection(sid).unwrap().keys_parked());
    assert_eq!(s.connection(sid).unwrap().drops(), Default::default());
    assert_eq!(c.connection(cid).unwrap().drops(), Default::default());

    // And after a keepalive period the connection is still up, parked again.
    let t2 = t1 + Duration::from_secs(25);
    let mut t = t1;
    while t < t2 {
        t = t + Duration::from_millis(100);
        tick(&mut c, &mut s, t);
    }
    assert_eq!(s.connection(sid).unwrap().state(), State::Connected);
    assert_eq!(c.connection(cid).unwrap().state(), State::Connected);
    assert!(s.connection(sid).unwrap().keys_parked());
}

#[test]
fn a_repeated_connect_request_gets_the_first_connect_ok_until_the_clients_data_arrives() {
    let t0 = Timestamp::from_micros(1_000_000);
    let (mut s, mut c) = server_and_client();
    let cid = c.connect(t0, addr(SERVER).into(), None).unwrap();
    let (from_c, _) = shuttle(&mut c, &mut s, t0);
    let request = from_c
        .iter()
        .find(|d| matches!(decode_control(d), Ok(ControlMessage::ConnectRequest(_))))
        .expect("a ConnectRequest")
        .clone();
    let sid = s.poll_event().expect("incoming").connection;
    s.accept(t0, sid).unwrap();
    let (_, from_s) = shuttle(&mut c, &mut s, t0);
    let is_ok = |d: &&Vec<u8>| matches!(decode_control(d), Ok(ControlMessage::ConnectOk(_)));
    let first = from_s.iter().find(is_ok).expect("a ConnectOK").clone();
    assert_eq!(c.connection(cid).unwrap().state(), State::Connected);

    let t1 = t0 + Duration::from_secs(2);
    for step in 1..=20 {
        tick(&mut c, &mut s, t0 + Duration::from_millis(100 * step));
    }
    assert!(
        s.connection(sid).unwrap().keys_parked(),
        "idle memory released"
    );
    let replies = from_client(&mut s, t1, &request);
    assert_eq!(
        replies.iter().filter(is_ok).collect::<Vec<_>>(),
        vec![&first]
    );

    // Once the client's data has reached the server, the client has the ConnectOK: the server
    // lets the encoded reply go, and a request replayed after that gets no answer.
    let t2 = t1 + Duration::from_millis(10);
    c.send_message(
        t2,
        cid,
        0,
        send_flags::RELIABLE | send_flags::NO_NAGLE,
        b"hi".to_vec(),
    )
    .unwrap();
    shuttle(&mut c, &mut s, t2);
    assert!(
        s.poll_message(sid).is_some(),
        "the client's message arrived"
    );
    let ignored = s.connection(sid).unwrap().drops().control_ignored;
    assert!(
        from_client(&mut s, t2, &request).is_empty(),
        "a replayed ConnectRequest after data is not answered"
    );
    assert_eq!(
        s.connection(sid).unwrap().drops().control_ignored,
        ignored + 1
    );
    assert_eq!(s.connection(sid).unwrap().state(), State::Connected);
}

/// The request index keeps only ids and compares keys through the connections' slots: with
/// hundreds of connections from one client address (several table growths), a repeated
/// ConnectRequest still reaches the connection it made, answered with that connection's own
/// ConnectOK, and makes no new one.
#[test]
fn repeated_requests_reach_their_own_connection_among_hundreds() {
    let t0 = Timestamp::from_micros(1_000_000);
    let (mut s, mut c) = server_and_client();
    let n = 300;
    let cids: Vec<u32> = (0..n)
        .map(|_| c.connect(t0, addr(SERVER).into(), None).unwrap().get())
        .collect();
    let (from_c, _) = shuttle(&mut c, &mut s, t0);
    let mut incoming = 0;
    while let Some(ev) = s.poll_event() {
        if ev.incoming && ev.change.old == crate::proto::connection::ApiState::None {
            s.accept(t0, ev.connection).unwrap();
            incoming += 1;
        }
    }
    assert_eq!(incoming, n);
    shuttle(&mut c, &mut s, t0);
    assert_eq!(s.stats().incoming_requests, n as u64);
    let requests: Vec<(u32, Vec<u8>)> = from_c
        .iter()
        .filter_map(|d| match decode_control(d) {
            Ok(ControlMessage::ConnectRequest(r)) => Some((r.client_connection_id?, d.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), n);
    for (client_id, request) in &requests {
        assert!(cids.contains(client_id));
        let oks: Vec<_> = from_client(&mut s, t0, request)
            .iter()
            .filter_map(|d| match decode_control(d) {
                Ok(ControlMessage::ConnectOk(ok)) => Some(ok.client_connection_id),
                _ => None,
            })
            .collect();
        assert_eq!(oks, vec![Some(*client_id)], "its own connection answered");
    }
    assert_eq!(s.stats().connections, n as u64, "no new connection");
    assert_eq!(s.stats().incoming_requests, n as u64);
}
