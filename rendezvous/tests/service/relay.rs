//! Registration, relaying and restarts as two peers see them.

use std::time::Duration;

use sockworks_rendezvous::{ClientConfig, Incoming, RendezvousClient};

use super::{WAIT, client, clock, exchange, start, wait_until};

#[test]
fn two_clients_exchange_signals_both_ways_and_learn_unknown_peers() {
    let mut server = start(&[]);
    let (alice, alice_rx) = client(server.addr, "str:alice");
    let (bob, bob_rx) = client(server.addr, "str:bob");
    wait_until("both registered", || alice.registered() && bob.registered());
    let (_, got) = exchange(&alice, "str:bob", &bob_rx, b"offer");
    assert_eq!(
        got,
        Incoming::Signal {
            from: "str:alice".into(),
            payload: b"offer".to_vec()
        }
    );
    let (_, got) = exchange(&bob, "str:alice", &alice_rx, &[0xab; 4096]);
    assert!(matches!(got, Incoming::Signal { from, .. } if from == "str:bob"));
    assert!(alice.send_signal("str:nobody", b"x"));
    let unknown = loop {
        match alice_rx.recv_timeout(WAIT).unwrap() {
            Incoming::Unknown { to } => break to,
            _ => continue,
        }
    };
    assert_eq!(unknown, "str:nobody");
    assert!(
        !alice.send_signal("str:bob", &[0; 4097]),
        "over the payload limit"
    );
    server.stats_until(|s| s["relayed"] >= 2 && s["unknown_peer"] >= 1 && s["peers"] == 2);
    drop(bob);
    server.stats_until(|s| s["unregistered"] == 1 && s["peers"] == 1);
}

#[test]
fn signals_sent_before_registration_are_delivered_once_registered() {
    let server = start(&[]);
    let (bob, bob_rx) = client(server.addr, "str:bob");
    wait_until("bob registered", || bob.registered());
    let (alice, _alice_rx) = client(server.addr, "str:alice");
    // Queued: the client is not registered yet (or just got there).
    assert!(alice.send_signal("str:bob", b"early"));
    let got = bob_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(
        got,
        Incoming::Signal {
            from: "str:alice".into(),
            payload: b"early".to_vec()
        }
    );
}

#[test]
fn a_restarted_service_relearns_every_peer_within_one_interval() {
    let interval = Duration::from_secs(2);
    let args = ["--interval-seconds", "2"];
    let server = start(&args);
    let addr = server.addr;
    let config = |id: &str| ClientConfig {
        reregister: interval,
        ..ClientConfig::new(addr, id)
    };
    let (alice, _alice_rx) = RendezvousClient::start(config("str:alice")).unwrap();
    let (bob, bob_rx) = RendezvousClient::start(config("str:bob")).unwrap();
    wait_until("both registered", || alice.registered() && bob.registered());
    exchange(&alice, "str:bob", &bob_rx, b"before");
    drop(server);
    let addr_arg = addr.to_string();
    let mut restarted = start(&["--interval-seconds", "2", "--listen", &addr_arg]);
    let restarted_at = clock::now();
    let (flowing_at, _) = exchange(&alice, "str:bob", &bob_rx, b"after");
    let took = flowing_at.duration_since(restarted_at);
    eprintln!("signals flowed again {took:?} after the restart (interval {interval:?})");
    assert!(
        took <= interval + Duration::from_millis(750),
        "took {took:?}, interval {interval:?}"
    );
    let s = restarted.stats_until(|s| s["peers"] == 2);
    assert!(s["unknown_sender"] >= 1 || s["registered"] >= 2);
}

#[test]
fn send_signal_is_callable_from_many_threads_at_once() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RendezvousClient>();
    let server = start(&["--rate", "10000"]);
    let (alice, _alice_rx) = client(server.addr, "str:alice");
    let (bob, bob_rx) = client(server.addr, "str:bob");
    wait_until("both registered", || alice.registered() && bob.registered());
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let alice = &alice;
            s.spawn(move || {
                for i in 0..25u8 {
                    assert!(alice.send_signal("str:bob", &[t, i]));
                }
            });
        }
    });
    let mut got = std::collections::HashSet::new();
    while got.len() < 100 {
        match bob_rx.recv_timeout(WAIT) {
            Ok(Incoming::Signal { payload, .. }) => {
                got.insert(payload);
            }
            Ok(_) => {}
            Err(e) => panic!("{} of 100 signals arrived: {e}", got.len()),
        }
    }
}
