//! The one-shot commands: help, key generation, issue/inspect round trips, requests,
//! revocation, and clean refusals of bad input.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use prost::Message;
use serde_json::Value;
use sockworks_cert::revocation;
use sockworks_engine::crypto::ca::{self, CaKey};
use sockworks_engine::crypto::keys::verify_signature;
use sockworks_engine::crypto::pem;
use sockworks_engine::wire::identity::Identity;

use super::{run, run_in};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A directory with `ca.key` and `peer.key` (and their `.pub` files).
fn keys() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["gen-ca", "--out", "ca.key"]).ok();
    run(dir.path(), &["gen-key", "--out", "peer.key"]).ok();
    dir
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn help_lists_every_command_and_each_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["--help"]);
    r.ok();
    for cmd in [
        "gen-ca",
        "gen-key",
        "issue",
        "inspect",
        "revoke",
        "request",
        "serve",
        "create-hostedserver-ticket",
    ] {
        assert!(r.stdout.contains(cmd), "{cmd} missing from --help");
        let sub = run(dir.path(), &[cmd, "--help"]);
        sub.ok();
        assert!(sub.stdout.contains("Usage: sockworks-cert"), "{cmd}");
    }
    assert!(
        run(dir.path(), &["serve", "--help"])
            .stdout
            .contains("--max-connections")
    );
    // Usage errors are clap's: exit status 2.
    assert_eq!(run(dir.path(), &["frobnicate"]).code, Some(2));
    assert_eq!(run(dir.path(), &[]).code, Some(2));
}

#[test]
fn gen_ca_writes_a_0600_key_prints_its_id_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["gen-ca", "--out", "ca.key"]);
    r.ok();
    let key_path = dir.path().join("ca.key");
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(mode(&dir.path().join("ca.key.pub")), 0o644);
    let key = CaKey::from_pem(&fs::read_to_string(&key_path).unwrap()).unwrap();
    let line = r.stdout.trim_end();
    assert_eq!(line, key.public_key_line());
    assert!(line.starts_with("ssh-ed25519 AAAA"));
    assert!(line.ends_with(&format!(" ID{}", ca::key_id(&key.public_key()))));
    // OpenSSH reads our key files (GNS's own layout it refuses).
    if let Ok(out) = std::process::Command::new("ssh-keygen")
        .args(["-y", "-f"])
        .arg(&key_path)
        .output()
    {
        let derived = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let b64 = line.split(' ').nth(1).unwrap();
        assert_eq!(derived.split(' ').nth(1).map(str::trim), Some(b64));
    }
    assert_eq!(
        fs::read_to_string(dir.path().join("ca.key.pub"))
            .unwrap()
            .trim_end(),
        line
    );

    let before = fs::read(&key_path).unwrap();
    run(dir.path(), &["gen-ca", "--out", "ca.key"]).fails_with("already exists");
    assert_eq!(fs::read(&key_path).unwrap(), before);
    run(dir.path(), &["gen-ca", "--out", "ca.key", "--force"]).ok();
    assert_ne!(fs::read(&key_path).unwrap(), before);
    assert_eq!(mode(&key_path), 0o600);
}

#[test]
fn issue_then_inspect_round_trips_identity_apps_pops_and_exact_times() {
    let dir = keys();
    let d = dir.path();
    run(
        d,
        &[
            "issue",
            "--ca-key",
            "ca.key",
            "--pub-key-file",
            "peer.key.pub",
            "--identity",
            "str:game-server-1",
            "--app",
            "0,480",
            "--pop",
            "iad,sto",
            "--not-before",
            "2030-01-02T03:04:05Z",
            "--expires",
            "2031-06-07T08:09:10+02:00",
            "--out",
            "cert.pem",
        ],
    )
    .ok();
    let text = fs::read_to_string(d.join("cert.pem")).unwrap();
    assert!(text.starts_with("-----BEGIN STEAMDATAGRAM CERT-----\n"));
    let signed = pem::read_cert_pem(&text).unwrap();
    let ca_key = CaKey::from_pem(&fs::read_to_string(d.join("ca.key")).unwrap()).unwrap();
    verify_signature(
        &ca_key.public_key(),
        signed.cert.as_deref().unwrap(),
        signed.ca_signature.as_deref().unwrap(),
    )
    .unwrap();
    assert_eq!(signed.ca_key_id, Some(ca_key.key_id()));

    let created = 1_893_553_445_u64; // 2030-01-02T03:04:05Z
    let expiry = 1_938_578_950_u64; // 2031-06-07T06:09:10Z
    let r = run(
        d,
        &[
            "inspect",
            "cert.pem",
            "--json",
            "--ca-pub-key-file",
            "ca.key.pub",
        ],
    );
    let j = json(&r.ok().stdout);
    assert_eq!(j["type"], "certificate");
    assert_eq!(j["identity"], "str:game-server-1");
    assert_eq!(j["app_ids"], serde_json::json!([0, 480]));
    assert_eq!(j["pop_ids"], serde_json::json!(["iad", "sto"]));
    assert_eq!(j["time_created"].as_u64(), Some(created));
    assert_eq!(j["time_expiry"].as_u64(), Some(expiry));
    assert_eq!(j["time_created_rfc3339"], "2030-01-02T03:04:05Z");
    assert_eq!(j["time_expiry_rfc3339"], "2031-06-07T06:09:10Z");
    assert_eq!(j["signature_valid"], true);
    assert_eq!(j["ca_key_id"], ca_key.key_id().to_string());
    let peer_line = fs::read_to_string(d.join("peer.key.pub")).unwrap();
    let peer = pem::read_public_key(&peer_line).unwrap();
    assert_eq!(j["public_key_id"], ca::key_id(&peer).to_string());
    assert_eq!(j["status"], "not_yet_valid");

    let r = run(d, &["inspect", "cert.pem"]);
    let t = &r.ok().stdout;
    assert!(t.contains("#Identity . . . . : str:game-server-1\n"), "{t}");
    assert!(t.contains(&format!(
        "#Created. . . . . : 2030-01-02T03:04:05Z ({created})\n"
    )));
    assert!(t.contains(&format!(
        "#Expires. . . . . : 2031-06-07T06:09:10Z ({expiry})\n"
    )));
    assert!(t.contains("#App ID(s). . . . : 0 480\n"));
    assert!(t.contains("#POP ID(s). . . . : iad sto\n"));
    assert!(t.contains("#Public key . . . : ssh-ed25519 AAAA"));

    // The raw protobuf on stdin reads the same; a wrong CA key does not verify.
    let other = CaKey::from_seed([5; 32]).public_key_line();
    let r = run_in(
        d,
        &["inspect", "-", "--json", "--ca-pub-key", &other],
        &signed.encode_to_vec(),
    );
    let j2 = json(&r.ok().stdout);
    assert_eq!(j2["identity"], "str:game-server-1");
    assert_eq!(j2["signature_valid"], false);
}

#[test]
fn issue_defaults_to_app_0_and_730_days() {
    let dir = keys();
    let d = dir.path();
    let line = fs::read_to_string(d.join("peer.key.pub")).unwrap();
    let r = run(
        d,
        &[
            "issue",
            "--ca-key",
            "ca.key",
            "--pub-key",
            line.trim(),
            "--identity",
            "steamid:76561197960287930",
        ],
    );
    let signed = pem::read_cert_pem(&r.ok().stdout).unwrap();
    let s = ca::inspect(&signed, None).unwrap();
    assert_eq!(s.app_ids, [0]);
    assert_eq!(s.identity, Identity::parse("steamid:76561197960287930"));
    let (c, e) = (s.time_created.unwrap(), s.time_expiry.unwrap());
    assert_eq!(e - c, 730 * 86_400);
}

#[test]
fn request_then_issue_certifies_the_requested_identity() {
    let dir = keys();
    let d = dir.path();
    run(
        d,
        &[
            "request",
            "--key",
            "peer.key",
            "--identity",
            "str:player-9",
            "--out",
            "req.pem",
        ],
    )
    .ok();
    run(
        d,
        &[
            "request",
            "--key",
            "peer.key",
            "--identity",
            "str:player-9",
            "--out",
            "req.bin",
            "--raw",
        ],
    )
    .ok();
    let raw = fs::read(d.join("req.bin")).unwrap();
    let from_pem =
        pem::read_cert_request_pem(&fs::read_to_string(d.join("req.pem")).unwrap()).unwrap();
    assert_eq!(raw, from_pem.encode_to_vec());
    let peer = CaKey::from_pem(&fs::read_to_string(d.join("peer.key")).unwrap()).unwrap();
    // Exactly what GetCertificateRequest builds.
    assert_eq!(
        from_pem,
        ca::make_request(
            &Identity::parse("str:player-9").unwrap(),
            &peer.public_key()
        )
    );
    let j = json(&run(d, &["inspect", "req.bin", "--json"]).ok().stdout);
    assert_eq!(j["type"], "certificate_request");
    assert_eq!(j["identity"], "str:player-9");

    for req in ["req.pem", "req.bin"] {
        let r = run(
            d,
            &[
                "issue",
                "--ca-key",
                "ca.key",
                "--request",
                req,
                "--days",
                "3",
            ],
        );
        let s = ca::inspect(&pem::read_cert_pem(&r.ok().stdout).unwrap(), None).unwrap();
        assert_eq!(s.identity, Identity::parse("str:player-9"));
        assert_eq!(s.public_key, Some(peer.public_key()));
        assert_eq!(s.time_expiry.unwrap() - s.time_created.unwrap(), 3 * 86_400);
    }
    run(
        d,
        &[
            "issue",
            "--ca-key",
            "ca.key",
            "--request",
            "req.pem",
            "--identity",
            "str:other",
        ],
    )
    .fails_with("differs");
}

#[test]
fn inspect_shows_keys_without_their_secrets() {
    let dir = keys();
    let d = dir.path();
    let key_text = fs::read_to_string(d.join("peer.key")).unwrap();
    let r = run(d, &["inspect", "peer.key"]);
    let out = &r.ok().stdout;
    assert!(out.contains("#Key ID"));
    let body = pem::find_pem_body(&key_text, pem::PRIVATE_KEY_PEM_TYPE).unwrap();
    let first_line = body.lines().next().unwrap();
    assert!(!out.contains(first_line));
    let j = json(&run(d, &["inspect", "peer.key.pub", "--json"]).ok().stdout);
    assert_eq!(j["type"], "public_key");
    run(d, &["inspect", "peer.key", "--ca-pub-key", "nonsense"]).fails_with("--ca-pub-key");
}

#[test]
fn revoke_appends_key_ids_the_trust_config_can_load() {
    let dir = keys();
    let d = dir.path();
    run(
        d,
        &[
            "issue",
            "--ca-key",
            "ca.key",
            "--pub-key-file",
            "peer.key",
            "--identity",
            "str:lost",
            "--out",
            "c.pem",
        ],
    )
    .ok();
    run(
        d,
        &[
            "revoke",
            "--cert",
            "c.pem",
            "--list",
            "revoked.txt",
            "--reason",
            "laptop stolen",
        ],
    )
    .ok();
    run(d, &["revoke", "--key-id", "42", "--list", "revoked.txt"]).ok();
    let r = run(d, &["revoke", "--key-id", "42", "--list", "revoked.txt"]);
    assert!(r.ok().stdout.contains("already"));
    let peer = CaKey::from_pem(&fs::read_to_string(d.join("peer.key")).unwrap()).unwrap();
    let ids = revocation::load(&d.join("revoked.txt")).unwrap();
    assert_eq!(ids.into_iter().collect::<Vec<_>>().len(), 2);
    assert!(
        revocation::load(&d.join("revoked.txt"))
            .unwrap()
            .contains(&peer.key_id())
    );
    let text = fs::read_to_string(d.join("revoked.txt")).unwrap();
    assert!(text.contains("str:lost laptop stolen"), "{text}");
    run(d, &["revoke", "--list", "revoked.txt"])
        .code
        .filter(|c| *c == 2)
        .unwrap();
}

#[test]
fn bad_inputs_fail_cleanly() {
    let dir = keys();
    let d = dir.path();
    let issue = |extra: &[&str]| {
        let mut args = vec!["issue", "--ca-key", "ca.key"];
        args.extend_from_slice(extra);
        run(d, &args)
    };
    issue(&[
        "--pub-key",
        "ssh-ed25519 AAAAnotakey",
        "--identity",
        "str:x",
    ])
    .fails_with("--pub-key");
    issue(&["--pub-key", "ssh-rsa AAAAB3", "--identity", "str:x"]).fails_with("ssh-ed25519");
    issue(&["--pub-key-file", "peer.key.pub", "--identity", "foo:bar"])
        .fails_with("unknown to GNS");
    issue(&["--pub-key-file", "peer.key.pub", "--identity", "player"]).fails_with("does not parse");
    issue(&["--pub-key-file", "peer.key.pub", "--identity", "ip:::1"]).fails_with("localhost");
    issue(&[
        "--pub-key-file",
        "peer.key.pub",
        "--identity",
        "str:0123456789012345678901234567890123456",
    ])
    .fails_with("does not parse");
    issue(&["--pub-key-file", "peer.key.pub"]).fails_with("--identity is required");
    issue(&[
        "--pub-key-file",
        "peer.key.pub",
        "--identity",
        "str:x",
        "--expires",
        "next week",
    ])
    .fails_with("RFC 3339");
    issue(&[
        "--pub-key-file",
        "peer.key.pub",
        "--identity",
        "str:x",
        "--not-before",
        "2030-01-01T00:00:00Z",
        "--expires",
        "2029-01-01T00:00:00Z",
    ])
    .fails_with("not after");
    issue(&[
        "--pub-key-file",
        "peer.key.pub",
        "--identity",
        "str:x",
        "--days",
        "100000",
    ])
    .fails_with("2106");
    issue(&[
        "--pub-key-file",
        "peer.key.pub",
        "--identity",
        "str:x",
        "--pop",
        "IAD",
    ])
    .fails_with("POP");
    issue(&["--pub-key-file", "missing.pub", "--identity", "str:x"]).fails_with("missing.pub");
    run(
        d,
        &[
            "issue",
            "--ca-key",
            "nope.key",
            "--pub-key-file",
            "peer.key.pub",
            "--identity",
            "str:x",
        ],
    )
    .fails_with("nope.key");
    fs::set_permissions(d.join("ca.key"), fs::Permissions::from_mode(0o640)).unwrap();
    issue(&["--pub-key-file", "peer.key.pub", "--identity", "str:x"]).fails_with("chmod 600");
    fs::set_permissions(d.join("ca.key"), fs::Permissions::from_mode(0o600)).unwrap();
    run(
        d,
        &[
            "issue",
            "--ca-key",
            "peer.key.pub",
            "--pub-key-file",
            "peer.key.pub",
            "--identity",
            "str:x",
        ],
    )
    .fails_with("chmod 600");
    fs::write(d.join("junk"), b"\x01\x02garbage").unwrap();
    run(d, &["inspect", "junk"]).fails_with("not a certificate");
    fs::write(
        d.join("junk.pem"),
        "-----BEGIN STEAMDATAGRAM CERT-----\n%%%\n-----END STEAMDATAGRAM CERT-----\n",
    )
    .unwrap();
    run(d, &["inspect", "junk.pem"]).fails_with("junk.pem");
    run(
        d,
        &["request", "--key", "peer.key", "--identity", "bogus_type:1"],
    )
    .fails_with("unknown");
    fs::write(d.join("bad.list"), "not-a-number\n").unwrap();
    run(d, &["revoke", "--key-id", "1", "--list", "bad.list"]).fails_with("line 1");
}

#[test]
fn issued_certs_pass_the_engines_trust_store_until_revoked() {
    use sockworks_engine::crypto::trust::{TrustError, TrustStore, TrustedCa};
    use sockworks_engine::wire::proto::Certificate;

    let dir = keys();
    let d = dir.path();
    run(
        d,
        &[
            "issue",
            "--ca-key",
            "ca.key",
            "--pub-key-file",
            "peer.key.pub",
            "--identity",
            "str:srv",
            "--out",
            "c.pem",
        ],
    )
    .ok();
    let signed = pem::read_cert_pem(&fs::read_to_string(d.join("c.pem")).unwrap()).unwrap();
    let cert = Certificate::decode(signed.cert.as_deref().unwrap()).unwrap();
    let ca_public =
        pem::read_public_key(&fs::read_to_string(d.join("ca.key.pub")).unwrap()).unwrap();
    let now = u64::from(cert.time_created.unwrap()) + 60;

    let load = || {
        let mut store = TrustStore::new();
        store.add_ca(TrustedCa::new(ca_public));
        let text = fs::read_to_string(d.join("revoked.txt")).unwrap_or_default();
        for id in sockworks_engine::crypto::revocation::parse(&text).unwrap() {
            store.revoke(id);
        }
        store
    };
    assert_eq!(
        load().check(&signed, &cert, 0, Some(now)),
        Ok(ca::key_id(&ca_public))
    );
    run(d, &["revoke", "--cert", "c.pem", "--list", "revoked.txt"]).ok();
    assert!(matches!(
        load().check(&signed, &cert, 0, Some(now)),
        Err(TrustError::RevokedKey(_))
    ));
}

#[test]
fn with_private_key_makes_a_0600_bundle_that_still_verifies() {
    let dir = keys();
    let d = dir.path();
    let args = [
        "issue",
        "--ca-key",
        "ca.key",
        "--pub-key-file",
        "peer.key.pub",
        "--identity",
        "str:srv",
    ];
    let mut bundle_args = args.to_vec();
    bundle_args.extend(["--with-private-key", "peer.key", "--out", "bundle.pem"]);
    run(d, &bundle_args).ok();
    assert_eq!(mode(&d.join("bundle.pem")), 0o600);
    let signed = pem::read_cert_pem(&fs::read_to_string(d.join("bundle.pem")).unwrap()).unwrap();
    let peer = CaKey::from_pem(&fs::read_to_string(d.join("peer.key")).unwrap()).unwrap();
    assert_eq!(signed.private_key_data, Some(peer.seed().to_vec()));
    let ca_key = CaKey::from_pem(&fs::read_to_string(d.join("ca.key")).unwrap()).unwrap();
    let s = ca::inspect(&signed, Some(&ca_key.public_key())).unwrap();
    assert_eq!(s.signature_valid, Some(true));
    assert!(s.has_private_key);
    let mut wrong = args.to_vec();
    wrong.extend(["--with-private-key", "ca.key"]);
    run(d, &wrong).fails_with("not the key the certificate certifies");
}

#[test]
fn hosted_server_tickets_verify_with_the_ca_and_bad_input_is_refused() {
    let dir = keys();
    let key = [3u8; 32];
    let server: std::net::SocketAddr = "10.9.8.7:27015".parse().unwrap();
    let routing = sockworks_relay::routing::seal(
        "fra",
        server,
        &sockworks_relay::routing::RoutingKey::new(&key),
        [1; 12],
    )
    .unwrap();
    let routing_hex = hex::encode(&routing);
    // The command for `gameserver` (client str:player-7) with `extra` arguments.
    let ticket = |gameserver: &str, extra: &[&str]| {
        let mut args = vec![
            "create-hostedserver-ticket",
            "--ca-key",
            "ca.key",
            "--gameserver",
            gameserver,
            "--client-identity",
            "str:player-7",
        ];
        args.extend_from_slice(extra);
        run(dir.path(), &args)
    };
    let r = ticket("str:arena-1", &["--routing", &routing_hex, "--vport", "-1"]);
    r.ok();
    let line = r.stdout.trim();
    let bytes = hex::decode(line.strip_prefix("SOCKWORKS_TICKET=").unwrap()).unwrap();
    assert!(bytes.len() <= 512);
    let ca = CaKey::from_pem(&fs::read_to_string(dir.path().join("ca.key")).unwrap()).unwrap();
    let trust = sockworks_relay::ticket::trust_of(&[ca.public_key()]);
    let now = sockworks_cert::clock::unix_now();
    let t = sockworks_relay::ticket::verify(&bytes, &trust, now).unwrap();
    assert_eq!(t.gameserver, "str:arena-1");
    assert_eq!(t.authorized_client, "str:player-7");
    assert_eq!(t.routing, routing);
    assert_eq!(t.restrict_to_vport, -1);
    // Valve's recommended six hours, to the second's rounding.
    assert!((now + 6 * 3600 - 5..=now + 6 * 3600 + 5).contains(&t.expiry_unix));
    // Another CA's relays refuse it.
    let other = sockworks_relay::ticket::trust_of(&[[9u8; 32]]);
    assert!(sockworks_relay::ticket::verify(&bytes, &other, now).is_err());

    ticket("str:arena-1", &["--routing", "zz"]).fails_with("--routing is not hex");
    ticket("str:arena-1", &["--routing", &routing_hex, "--hours", "48"]).fails_with("--hours");
    ticket("str:arena-1", &["--routing", &"ab".repeat(200)]).fails_with("ticket");
    ticket("not an identity", &["--routing", &routing_hex]).fails_with("not a GNS identity");
}
