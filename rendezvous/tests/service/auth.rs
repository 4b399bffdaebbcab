//! CA-required mode against unauthenticated mode, and clean startup errors.

use std::fs;
use std::path::Path;

use sockworks_engine::crypto::ca::{self, CaKey, CertParams};
use sockworks_engine::crypto::keys::IdentityKey;
use sockworks_engine::crypto::pem;
use sockworks_engine::wire::identity::Identity;
use sockworks_rendezvous::wire::RefuseReason;
use sockworks_rendezvous::{ClientAuth, ClientConfig, Incoming, RendezvousClient};
use wait_timeout::ChildExt;

use super::{WAIT, bin, clock, exchange, start, wait_until};

fn cert_pem(ca: &CaKey, identity: &str, key: &IdentityKey) -> String {
    let now = clock::unix_now() as u32;
    let cert = ca::issue(
        ca,
        &CertParams {
            identity: Some(Identity::parse(identity).unwrap()),
            public_key: key.public_bytes(),
            app_ids: vec![0],
            pop_ids: vec![],
            time_created: now - 60,
            time_expiry: now + 3600,
        },
    )
    .unwrap();
    pem::write_cert_pem(&cert)
}

/// Credentials: a certificate for `named` from `ca`, signed in use by `signer`.
fn auth(ca: &CaKey, named: &str, key_seed: u8, signer_seed: u8) -> ClientAuth {
    let key = IdentityKey::from_seed([key_seed; 32]);
    let signer_pem = pem::write_openssh_private_key(&[signer_seed; 32]);
    ClientAuth::from_pem(&cert_pem(ca, named, &key), Some(&signer_pem)).unwrap()
}

fn start_client(
    addr: std::net::SocketAddr,
    identity: &str,
    auth: Option<ClientAuth>,
) -> (RendezvousClient, std::sync::mpsc::Receiver<Incoming>) {
    RendezvousClient::start(ClientConfig {
        auth,
        ..ClientConfig::new(addr, identity)
    })
    .unwrap()
}

fn refusal(rx: &std::sync::mpsc::Receiver<Incoming>) -> RefuseReason {
    loop {
        if let Incoming::Refused { reason } = rx.recv_timeout(WAIT).unwrap() {
            return reason;
        }
    }
}

fn write_ca_file(dir: &Path, ca: &CaKey) -> String {
    let path = dir.join("ca.key.pub");
    fs::write(&path, format!("{}\n", ca.public_key_line())).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn with_a_ca_only_peers_proving_their_identity_register_and_refusals_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CaKey::from_seed([1; 32]);
    let other_ca = CaKey::from_seed([2; 32]);
    let ca_file = write_ca_file(dir.path(), &ca);
    let mut server = start(&["--ca-certs", &ca_file]);
    assert!(
        server.logged(&ca.key_id().to_string()),
        "{:?}",
        server.drain()
    );

    let (alice, _alice_rx) = start_client(
        server.addr,
        "str:alice",
        Some(auth(&ca, "str:alice", 10, 10)),
    );
    let (bob, bob_rx) = start_client(server.addr, "str:bob", Some(auth(&ca, "str:bob", 11, 11)));
    wait_until("alice and bob registered", || {
        alice.registered() && bob.registered()
    });
    exchange(&alice, "str:bob", &bob_rx, b"authenticated");

    let cases = [
        (
            "no certificate",
            "str:carol",
            None,
            RefuseReason::CertRequired,
        ),
        (
            "another CA",
            "str:carol",
            Some(auth(&other_ca, "str:carol", 12, 12)),
            RefuseReason::UntrustedCert,
        ),
        (
            "wrong key signs",
            "str:carol",
            Some(auth(&ca, "str:carol", 12, 13)),
            RefuseReason::BadSignature,
        ),
        (
            "cert names someone else",
            "str:bob",
            Some(auth(&ca, "str:carol", 12, 12)),
            RefuseReason::IdentityMismatch,
        ),
    ];
    for (what, identity, creds, expected) in cases {
        let (c, rx) = start_client(server.addr, identity, creds);
        assert_eq!(refusal(&rx), expected, "{what}");
        assert!(!c.registered(), "{what}");
    }
    // bob's registration survived the impostor.
    exchange(&alice, "str:bob", &bob_rx, b"still bob");
    server.stats_until(|s| s["refused_auth"] >= 4 && s["peers"] == 2);
}

#[test]
fn without_a_ca_anyone_registers_and_the_log_says_so() {
    let mut server = start(&[]);
    let ca = CaKey::from_seed([1; 32]);
    let (plain, _) = start_client(server.addr, "str:plain", None);
    let (with_cert, _) = start_client(
        server.addr,
        "str:certified",
        Some(auth(&ca, "str:certified", 3, 3)),
    );
    wait_until("both registered", || {
        plain.registered() && with_cert.registered()
    });
    assert!(server.logged("NOT authenticated"), "{:?}", server.drain());
}

pub(super) fn fails_to_start(args: &[&str], needle: &str) {
    let mut child = bin()
        .args(args)
        .args(["--stats-interval", "0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait_timeout(WAIT).unwrap();
    let Some(status) = status else {
        let _ = child.kill();
        panic!("{args:?} did not exit");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
    assert!(
        stderr.contains("error: ") && stderr.contains(needle),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn startup_errors_are_clean_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&[]);
    let taken = server.addr.to_string();
    fails_to_start(&["--listen", &taken], "binding UDP");
    let missing = dir.path().join("missing.pub");
    fails_to_start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--ca-certs",
            missing.to_str().unwrap(),
        ],
        "reading --ca-certs",
    );
    let junk = dir.path().join("junk.pub");
    fs::write(&junk, "not a key\n").unwrap();
    fails_to_start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--ca-certs",
            junk.to_str().unwrap(),
        ],
        "line 1",
    );
    fails_to_start(
        &["--listen", "127.0.0.1:0", "--max-peers", "0"],
        "--max-peers",
    );
    let help = bin().arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--ca-certs",
        "--max-peers",
        "--ttl-seconds",
        "--rate",
        "--stats-interval",
        "--fakeip-state",
        "--max-fakeips",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
}
