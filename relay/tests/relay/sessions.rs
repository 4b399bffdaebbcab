//! Sessions through the real relay: forwarding both ways with the addresses hidden, ticket
//! reuse, rate limit, cap and idle expiry.

use super::*;

/// Whether `hay` contains `needle`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn client_reaches_server_through_relay_and_neither_learns_the_others_address() {
    let mut relay = start(&[]);
    let echo = echo_server();
    let mut client = Client::new(relay.addr);
    let ticket = good_ticket(echo.addr, "str:alice");
    let (session, token) = client.hello(&ticket).unwrap();
    let mut echoed = 0;
    for i in 0..50u32 {
        let payload = format!("gns packet {i}").into_bytes();
        client.data(session, token, &payload);
        if let Some(d) = client.recv() {
            let (s, t, p) = wire::decode_data(&d).unwrap();
            assert_eq!((s, t), (session, token));
            assert!(p.starts_with(b"gns packet"));
            echoed += 1;
        }
    }
    assert!(echoed >= 45, "only {echoed} of 50 echoed");
    // The server saw only the relay's address (127.0.0.1), never the client's (127.0.0.3).
    let sources = echo.sources.lock().unwrap().clone();
    let client_addr = client.socket.local_addr().unwrap();
    assert!(!sources.is_empty());
    for s in &sources {
        assert_ne!(*s, client_addr);
        assert_eq!(s.ip(), relay.addr.ip(), "server saw {s}");
    }
    // The client never received the server's address: not from (checked in recv), and not in
    // any byte of any datagram, the ticket's routing blob included.
    let ip = [127u8, 0, 0, 2];
    let port = echo.addr.port();
    let text = echo.addr.to_string().into_bytes();
    let ip_port_be = [&ip[..], &port.to_be_bytes()[..]].concat();
    let ip_port_le = [&port.to_le_bytes()[..], &[2, 0, 0, 127][..]].concat();
    for d in client.received.iter().chain(std::iter::once(&ticket)) {
        assert!(!contains(d, &ip), "server IP in {d:?}");
        assert!(!contains(d, &text) && !contains(d, &ip_port_be) && !contains(d, &ip_port_le));
    }
    let stats = relay.stats_until(|s| s["to_client"] >= 45);
    assert_eq!(stats["opened"], 1);
    assert!(stats["to_server"] >= 50 - 5);
}

#[test]
fn ticket_is_idempotent_from_its_address_and_refused_from_another() {
    let mut relay = start(&[]);
    let echo = echo_server();
    let ticket = good_ticket(echo.addr, "str:bob");
    let mut a = Client::new(relay.addr);
    let first = a.hello(&ticket).unwrap();
    assert_eq!(a.hello(&ticket).unwrap(), first);
    let mut b = Client::new(relay.addr);
    assert_eq!(b.hello(&ticket), Err(RefuseReason::WrongAddress));
    // b cannot use a's session without its token, nor guess it.
    b.data(first.0, first.1 ^ 0xffff, b"hijack");
    b.data(first.0, 0, b"hijack");
    let stats = relay.stats_until(|s| s["bad_session"] >= 2);
    assert_eq!(stats["refused_replay"], 1);
    assert_eq!(stats["hello_repeats"], 1);
    assert_eq!(stats["opened"], 1);
    assert_eq!(echo.count.load(Ordering::Relaxed), 0);
}

#[test]
fn rate_is_limited_per_ticket() {
    let mut relay = start(&["--rate", "100", "--burst", "50"]);
    let echo = echo_server();
    let mut client = Client::new(relay.addr);
    let (session, token) = client.hello(&good_ticket(echo.addr, "str:fast")).unwrap();
    let other = Client::new(relay.addr);
    let mut other_c = other;
    let (s2, t2) = other_c.hello(&good_ticket(echo.addr, "str:slow")).unwrap();
    let start_t = clock::now();
    for _ in 0..2000 {
        client.data(session, token, &[7u8; 100]);
    }
    let elapsed = start_t.elapsed().as_secs_f64();
    // The other ticket is unaffected by the first one's flood.
    for _ in 0..20 {
        other_c.data(s2, t2, &[8u8; 100]);
    }
    let stats = relay.stats_until(|s| s["to_server"] + s["rate_limited"] >= 2020);
    let allowed = 50.0 + 100.0 * (elapsed + 0.5);
    assert!(
        (stats["to_server"] as f64) <= allowed + 20.0,
        "{} forwarded in {elapsed:.2} s",
        stats["to_server"]
    );
    assert!(stats["rate_limited"] >= 2000 - allowed as u64);
    wait_until("the other ticket's 20 packets", || {
        echo.count.load(Ordering::Relaxed) >= stats["to_server"]
    });
    assert!(stats["to_server"] >= 50 + 20);
}

#[test]
fn session_cap_refuses_new_tickets_and_idle_sessions_expire() {
    let mut relay = start(&["--max-sessions", "2", "--idle-seconds", "1"]);
    let echo = echo_server();
    let mut c1 = Client::new(relay.addr);
    let mut c2 = Client::new(relay.addr);
    let mut c3 = Client::new(relay.addr);
    let (s1, t1) = c1.hello(&good_ticket(echo.addr, "str:c1")).unwrap();
    c2.hello(&good_ticket(echo.addr, "str:c2")).unwrap();
    assert_eq!(
        c3.hello(&good_ticket(echo.addr, "str:c3")),
        Err(RefuseReason::Full)
    );
    let stats = relay.stats_until(|s| s["expired"] >= 2);
    assert_eq!(stats["refused_full"], 1);
    // Expired: the old session's packets are dropped and the third client now gets in.
    c1.data(s1, t1, b"late");
    relay.stats_until(|s| s["bad_session"] >= 1);
    assert!(c3.hello(&good_ticket(echo.addr, "str:c3")).is_ok());
    assert_eq!(echo.count.load(Ordering::Relaxed), 0);
}

/// Sends `payload` as Data until its echo comes back (a few tries, for loss on a busy box).
fn round_trip(client: &mut Client, session: u32, token: u64, payload: &[u8]) -> bool {
    for _ in 0..5 {
        client.data(session, token, payload);
        while let Some(d) = client.recv() {
            if wire::decode_data(&d).is_some_and(|(s, _, p)| s == session && p == payload) {
                return true;
            }
        }
    }
    false
}

#[test]
fn shards_own_their_sessions_and_the_kernel_steers_even_a_moved_client_to_its_shard() {
    let mut relay = start(&["--threads", "4"]);
    let echo = echo_server();
    let mut shards_seen = std::collections::BTreeSet::new();
    let mut sessions = Vec::new();
    for k in 0..16 {
        let mut client = Client::new(relay.addr);
        let (session, token) = client
            .hello(&good_ticket(echo.addr, &format!("str:player-{k}")))
            .unwrap();
        shards_seen.insert(session >> 24);
        assert!(round_trip(&mut client, session, token, b"first"));
        sessions.push((session, token));
    }
    // Hellos spread over the shards by ticket signature (16 tickets on one shard of 4: 4^-15).
    assert!(shards_seen.len() >= 2, "shards {shards_seen:?}");
    assert!(shards_seen.iter().all(|&s| s < 4));
    // Every client moves to a new port (a NAT rebinding: a new 4-tuple, which the kernel's
    // hash would send to a random shard); the session id still finds its shard, every time.
    for &(session, token) in &sessions {
        let mut moved = Client::new(relay.addr);
        assert!(
            round_trip(&mut moved, session, token, b"after the move"),
            "session {session:#x} lost after its client moved"
        );
    }
    // The stats line sums the shards.
    let stats = relay.stats_until(|s| s["sessions"] == 16 && s["client_moves"] >= 16);
    assert_eq!(stats["opened"], 16);
    assert_eq!(stats["bad_session"], 0);
}
