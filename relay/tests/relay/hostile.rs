//! Hostile input at the real relay: bad tickets refused and counted, floods that never reach
//! the server, and garbage that never crashes it.

use super::*;

/// xorshift bytes, deterministic.
fn noise(state: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            *state as u8
        })
        .collect()
}

#[test]
fn forged_expired_wrong_ca_and_foreign_routing_tickets_are_refused_and_counted() {
    let mut relay = start(&[]);
    let echo = echo_server();
    let mut c = Client::new(relay.addr);
    // Forged: a valid ticket with one byte of its body changed.
    let mut forged = good_ticket(echo.addr, "str:mallory");
    let n = forged.len();
    forged[n / 2] ^= 0x01;
    assert_eq!(c.hello(&forged), Err(RefuseReason::BadTicket));
    // Expired, and too far ahead.
    let old = ticket_for(echo.addr, "str:a", clock::unix_now() - 10, &ca());
    assert_eq!(c.hello(&old), Err(RefuseReason::Expired));
    let far = ticket_for(echo.addr, "str:a", clock::unix_now() + 25 * 3600, &ca());
    assert_eq!(c.hello(&far), Err(RefuseReason::Expired));
    // Signed by a CA the relay does not trust.
    let rogue = ticket_for(
        echo.addr,
        "str:a",
        clock::unix_now() + 60,
        &IdentityKey::from_seed([0x66; 32]),
    );
    assert_eq!(c.hello(&rogue), Err(RefuseReason::BadTicket));
    // Routing blob sealed with another fleet's key.
    let routing = routing::seal("tst", echo.addr, &RoutingKey::new(&[1; 32]), [0; 12]).unwrap();
    let foreign = ticket::sign(
        &RelayAuthTicket {
            gameserver: "str:gs".into(),
            authorized_client: "str:a".into(),
            public_ip: None,
            expiry_unix: clock::unix_now() + 60,
            routing,
            app_id: 1,
            restrict_to_vport: -1,
            extra: vec![],
        },
        &ca(),
    )
    .unwrap();
    assert_eq!(c.hello(&foreign), Err(RefuseReason::BadTicket));
    // A ticket bound to another public IP.
    let mut bound = ticket::verify(
        &good_ticket(echo.addr, "str:b"),
        &ticket::trust_of(&[ca().public_bytes()]),
        clock::unix_now(),
    )
    .unwrap();
    bound.public_ip = Some("192.0.2.1".parse().unwrap());
    assert_eq!(
        c.hello(&ticket::sign(&bound, &ca()).unwrap()),
        Err(RefuseReason::WrongAddress)
    );
    let s = relay.stats_until(|s| s["refused_routing"] >= 1 && s["refused_address"] >= 1);
    assert!(s["refused_forged"] >= 2, "{s:?}");
    assert!(s["refused_expired"] >= 2, "{s:?}");
    assert_eq!(s["opened"], 0);
    assert_eq!(echo.count.load(Ordering::Relaxed), 0);
}

#[test]
fn floods_of_garbage_and_bad_tickets_never_reach_the_server() {
    let mut relay = start(&["--hello-rate", "500"]);
    let echo = echo_server();
    let attacker = UdpSocket::bind("127.0.0.4:0").unwrap();
    let mut state = 0x1234_5678_9abc_def1u64;
    let good = good_ticket(echo.addr, "str:victim");
    let mut sent = 0u64;
    let mut largest_reply_ratio = 0.0f64;
    attacker.set_nonblocking(true).unwrap();
    for i in 0..20_000u32 {
        let len = (i as usize * 7) % 1400;
        let d = match i % 5 {
            // Random bytes.
            0 => noise(&mut state, len),
            // Our header with random bodies of every type.
            1 => {
                let mut d = vec![b'S', b'Y', 1, (i % 9) as u8];
                d.extend(noise(&mut state, len % 600));
                d
            }
            // Hellos with random "tickets".
            2 => Message::Hello {
                nonce: u64::from(i),
                ticket: &noise(&mut state, len % 512),
            }
            .to_vec(),
            // Hellos with a corrupted good ticket.
            3 => {
                let mut t = good.clone();
                let at = (i as usize) % t.len();
                t[at] ^= 1 << (i % 8);
                Message::Hello {
                    nonce: 1,
                    ticket: &t,
                }
                .to_vec()
            }
            // Data with guessed sessions and tokens.
            _ => {
                let mut v = Vec::new();
                wire::encode_data(i % 64, u64::from(i), &noise(&mut state, len % 1200), &mut v);
                v
            }
        };
        if attacker.send_to(&d, relay.addr).is_ok() {
            sent += 1;
        }
        if i % 256 == 0 {
            // Let a debug-built relay keep up a little (the kernel drops what it cannot take).
            std::thread::park_timeout(Duration::from_millis(2));
        }
        // Every reply must be no larger than a datagram we sent of that kind.
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = attacker.recv_from(&mut buf) {
            largest_reply_ratio = largest_reply_ratio.max(n as f64 / 26.0);
            assert!(n <= 26, "reply of {n} bytes to an unauthenticated datagram");
        }
    }
    let s = relay.stats_until(|s| s["datagrams"] >= sent / 2);
    assert_eq!(s["opened"], 0, "{s:?}");
    assert_eq!(s["to_server"], 0);
    assert!(s["refused_rate"] > 0, "hello budget never hit: {s:?}");
    // The relay still works and the server saw nothing of the flood.
    let mut c = Client::new(relay.addr);
    let (session, token) = c.hello(&good).unwrap();
    c.data(session, token, b"after the flood");
    wait_until("the legitimate packet", || {
        echo.count.load(Ordering::Relaxed) >= 1
    });
    std::thread::park_timeout(Duration::from_millis(100));
    assert_eq!(echo.count.load(Ordering::Relaxed), 1);
    assert!(relay.child.try_wait().unwrap().is_none(), "relay exited");
    eprintln!("flood: {sent} datagrams, replies at most {largest_reply_ratio:.2} x 26 bytes");
}

#[test]
fn server_socket_ignores_strangers() {
    // Someone who guesses the relay's upstream port cannot inject toward the client.
    let mut relay = start(&[]);
    let echo = echo_server();
    let mut c = Client::new(relay.addr);
    let (session, token) = c.hello(&good_ticket(echo.addr, "str:z")).unwrap();
    c.data(session, token, b"hello server");
    wait_until("the first packet", || {
        !echo.sources.lock().unwrap().is_empty()
    });
    let upstream = echo.sources.lock().unwrap()[0];
    while c.recv().is_some() {}
    let stranger = UdpSocket::bind("127.0.0.5:0").unwrap();
    for _ in 0..10 {
        stranger.send_to(b"spoofed", upstream).unwrap();
    }
    relay.stats_until(|s| s["server_stray"] >= 10);
    assert!(c.recv().is_none());
}
