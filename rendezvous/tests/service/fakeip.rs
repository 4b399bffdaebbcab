//! FakeIPs as peers see them: allocation, signals by FakeIP, and a restart with the state
//! file.

use std::fs;
use std::net::Ipv4Addr;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use sockworks_rendezvous::wire::FakeIpRefuseReason;
use sockworks_rendezvous::{FakeIpFailure, Incoming, RendezvousClient};

use super::auth::fails_to_start;
use super::{WAIT, client, exchange, start, wait_until};

/// The outcome of one FakeIP request (other notices skipped).
fn fake_ip(
    c: &RendezvousClient,
    rx: &Receiver<Incoming>,
    n: u8,
) -> Result<(Ipv4Addr, Vec<u16>), FakeIpFailure> {
    assert!(c.request_fake_ip(n, WAIT));
    loop {
        match rx.recv_timeout(WAIT + Duration::from_secs(1)).unwrap() {
            Incoming::FakeIp { ip, ports } => return Ok((ip, ports)),
            Incoming::FakeIpFailed { reason } => return Err(reason),
            _ => continue,
        }
    }
}

#[test]
fn allocations_survive_a_restart_with_the_state_file_and_route_signals() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("fakeips");
    let state_arg = state.to_str().unwrap().to_owned();
    let mut server = start(&["--fakeip-state", &state_arg]);
    assert!(server.logged("0 allocation(s) loaded"));
    let addr = server.addr;
    let (alice, alice_rx) = client(addr, "str:alice");
    let (bob, bob_rx) = client(addr, "str:bob");
    let (ip_a, ports_a) = fake_ip(&alice, &alice_rx, 2).unwrap();
    let (ip_b, ports_b) = fake_ip(&bob, &bob_rx, 1).unwrap();
    assert_ne!(ip_a, ip_b);
    assert_eq!((ports_a.len(), ports_b.len()), (2, 1));
    assert!(ip_a.octets()[..2] == [169, 254] && ports_a.iter().all(|&p| p > 1024));
    // Granted only once on disk: the file already names both.
    let text = fs::read_to_string(&state).unwrap();
    assert!(
        text.contains(&ip_a.to_string()) && text.contains("str:bob"),
        "{text}"
    );
    // Bob reaches Alice by her FakeIP only.
    let (_, got) = exchange(&bob, &format!("ip:{ip_a}:{}", ports_a[1]), &alice_rx, b"hi");
    assert!(matches!(got, Incoming::Signal { from, .. } if from == "str:bob"));
    server.stats_until(|s| s["fakeips"] == 2 && s["fakeip_relayed"] >= 1);

    // Killed without warning, restarted on the same address with the same file.
    drop(server);
    let addr_arg = addr.to_string();
    let mut restarted = start(&["--fakeip-state", &state_arg, "--listen", &addr_arg]);
    assert!(
        restarted.logged("2 allocation(s) loaded"),
        "{:?}",
        restarted.drain()
    );
    // The clients register again on their own and get what they had.
    assert_eq!(
        fake_ip(&alice, &alice_rx, 2).unwrap(),
        (ip_a, ports_a.clone())
    );
    assert_eq!(fake_ip(&bob, &bob_rx, 1).unwrap(), (ip_b, ports_b));
    let (_, got) = exchange(
        &bob,
        &format!("ip:{ip_a}:{}", ports_a[0]),
        &alice_rx,
        b"again",
    );
    assert!(matches!(got, Incoming::Signal { from, .. } if from == "str:bob"));
    // A newcomer gets a new address.
    let (carol, carol_rx) = client(addr, "str:carol");
    let (ip_c, _) = fake_ip(&carol, &carol_rx, 4).unwrap();
    assert!(ip_c != ip_a && ip_c != ip_b);
    restarted.stats_until(|s| s["fakeips"] == 3);
}

#[test]
fn the_cap_refuses_new_identities_and_memory_only_mode_says_so() {
    let mut server = start(&["--max-fakeips", "1"]);
    assert!(server.logged("kept in memory only"));
    let (alice, alice_rx) = client(server.addr, "str:alice");
    let (bob, bob_rx) = client(server.addr, "str:bob");
    wait_until("both registered", || alice.registered() && bob.registered());
    fake_ip(&alice, &alice_rx, 1).unwrap();
    assert_eq!(
        fake_ip(&bob, &bob_rx, 1),
        Err(FakeIpFailure::Refused(FakeIpRefuseReason::Full))
    );
    assert!(!bob.request_fake_ip(5, WAIT), "more than 4 ports");
    assert!(!bob.request_fake_ip(0, WAIT));
    server.stats_until(|s| s["fakeip_refused"] == 1 && s["fakeip_granted"] == 1);
}

#[test]
fn an_unreachable_service_times_the_request_out() {
    // A bound socket nobody answers on.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (c, rx) = client(silent.local_addr().unwrap(), "str:alice");
    assert!(c.request_fake_ip(1, Duration::from_millis(300)));
    let got = loop {
        match rx.recv_timeout(WAIT).unwrap() {
            Incoming::FakeIpFailed { reason } => break reason,
            _ => continue,
        }
    };
    assert_eq!(got, FakeIpFailure::Timeout);
}

#[test]
fn a_corrupt_state_file_or_a_bad_cap_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    fs::write(&junk, "not a state file\n").unwrap();
    let junk = junk.to_str().unwrap();
    fails_to_start(
        &["--listen", "127.0.0.1:0", "--fakeip-state", junk],
        "not a FakeIP state file",
    );
    fails_to_start(
        &["--listen", "127.0.0.1:0", "--max-fakeips", "0"],
        "--max-fakeips",
    );
    fails_to_start(
        &["--listen", "127.0.0.1:0", "--max-fakeips", "50000"],
        "--max-fakeips",
    );
}
