//! `serve` as a client sees it: started on a free port, signing with a good token, refusing
//! bad tokens, oversized and malformed bodies, and still serving afterwards.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use prost::Message;
use sockworks_engine::crypto::ca::{self, CaKey};
use sockworks_engine::crypto::keys::verify_signature;
use sockworks_engine::crypto::pem;
use sockworks_engine::wire::identity::Identity;

use super::{bin, run};

pub(super) const PLAYER_TOKEN: &str = "player-token-0123456789abcdef";
pub(super) const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";
/// Longest wait for the service to start, or for one answer.
const WAIT: Duration = Duration::from_secs(20);

/// A running service, killed when dropped.
pub(super) struct Server {
    child: Child,
    pub(super) addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory with a CA key and a tokens file.
pub(super) fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["gen-ca", "--out", "ca.key"]).ok();
    fs::write(
        dir.path().join("tokens.txt"),
        format!("# test tokens\n{PLAYER_TOKEN} str:player-*\n{ADMIN_TOKEN} *\n"),
    )
    .unwrap();
    dir
}

/// Starts `serve` on 127.0.0.1:0 and reads the bound address from its first stdout line.
pub(super) fn start(dir: &Path, extra: &[&str]) -> Server {
    let mut child = bin()
        .args(["serve", "--ca-key", "ca.key", "--tokens", "tokens.txt"])
        .args(["--listen", "127.0.0.1:0", "--app", "0,570"])
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(WAIT).unwrap_or_default();
    let server = Server {
        addr: line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        child,
    };
    assert_ne!(server.addr.port(), 0, "serve did not start: {line:?}");
    server
}

/// One exchange over a fresh connection: the status and the body.
fn exchange(addr: SocketAddr, raw: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s.write_all(raw).expect("send");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read answer");
    let text = String::from_utf8_lossy(&resp);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body_at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |p| p + 4);
    (status, resp[body_at..].to_vec())
}

fn post(addr: SocketAddr, token: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let mut raw = format!(
        "POST /v1/sign HTTP/1.1\r\nHost: ca\r\n{auth}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    exchange(addr, &raw)
}

fn request_pem(identity: &str, key: &CaKey) -> Vec<u8> {
    let req = ca::make_request(&Identity::parse(identity).unwrap(), &key.public_key());
    pem::write_cert_request_pem(&req).into_bytes()
}

#[test]
fn signs_requests_for_good_tokens_and_refuses_the_rest_while_serving_on() {
    let dir = setup();
    let server = start(dir.path(), &["--max-body", "2048", "--days", "7"]);
    let addr = server.addr;

    // The CA public key, as peers will configure it.
    let (status, body) = exchange(addr, b"GET /v1/ca HTTP/1.1\r\nHost: ca\r\n\r\n");
    assert_eq!(status, 200);
    let ca_line = String::from_utf8(body).unwrap();
    let ca_public = pem::read_public_key(&ca_line).unwrap();
    assert!(
        ca_line
            .trim_end()
            .ends_with(&format!("ID{}", ca::key_id(&ca_public)))
    );

    let peer = CaKey::from_seed([42; 32]);
    let good = request_pem("str:player-1", &peer);
    let check = |body: &[u8], identity: &str| {
        let signed = pem::read_cert_pem(&String::from_utf8_lossy(body)).unwrap();
        verify_signature(
            &ca_public,
            signed.cert.as_deref().unwrap(),
            signed.ca_signature.as_deref().unwrap(),
        )
        .unwrap();
        let s = ca::inspect(&signed, Some(&ca_public)).unwrap();
        assert_eq!(s.identity, Identity::parse(identity));
        assert_eq!(s.public_key, Some(peer.public_key()));
        assert_eq!(s.app_ids, [0, 570]);
        assert_eq!(s.time_expiry.unwrap() - s.time_created.unwrap(), 7 * 86_400);
        assert_eq!(s.ca_key_id, Some(ca::key_id(&ca_public)));
    };
    let (status, body) = post(addr, Some(PLAYER_TOKEN), &good);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    check(&body, "str:player-1");

    // Raw protobuf, as GetCertificateRequest returns it, with the any-identity token.
    let raw = ca::make_request(
        &Identity::parse("steamid:76561197960287930").unwrap(),
        &peer.public_key(),
    );
    let (status, body) = post(addr, Some(ADMIN_TOKEN), &raw.encode_to_vec());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    check(&body, "steamid:76561197960287930");

    // Refusals.
    assert_eq!(post(addr, None, &good).0, 401);
    assert_eq!(
        post(addr, Some("wrong-token-0123456789abcdef"), &good).0,
        401
    );
    let (status, body) = post(addr, Some(PLAYER_TOKEN), &request_pem("str:admin", &peer));
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("may not get"));
    let (status, body) = post(addr, Some(PLAYER_TOKEN), b"this is not a request");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("not a certificate request"));
    let mut unknown = ca::make_request(
        &Identity::parse("str:player-2").unwrap(),
        &peer.public_key(),
    );
    if let Some(c) = unknown.cert.as_mut() {
        c.identity_string = Some("weird:player-2".to_owned());
    }
    assert_eq!(
        post(addr, Some(ADMIN_TOKEN), &unknown.encode_to_vec()).0,
        400
    );
    let (status, _) = post(addr, Some(PLAYER_TOKEN), &vec![b'A'; 4096]);
    assert_eq!(status, 413);
    assert_eq!(exchange(addr, b"GET /v1/sign HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(exchange(addr, b"GET /admin HTTP/1.1\r\n\r\n").0, 404);
    assert_eq!(exchange(addr, b"BLAH\r\n\r\n").0, 400);
    // A client that goes away mid-request does not disturb the service.
    drop(TcpStream::connect(addr).unwrap());

    // Still serving.
    let (status, body) = post(addr, Some(PLAYER_TOKEN), &good);
    assert_eq!(status, 200);
    check(&body, "str:player-1");
}

#[test]
fn refuses_to_start_with_a_readable_ca_key_or_bad_tokens() {
    let dir = setup();
    let d = dir.path();
    fs::set_permissions(d.join("ca.key"), fs::Permissions::from_mode(0o644)).unwrap();
    let args = [
        "serve",
        "--ca-key",
        "ca.key",
        "--tokens",
        "tokens.txt",
        "--listen",
        "127.0.0.1:0",
    ];
    run(d, &args).fails_with("refusing to start");
    run(d, &args).fails_with("chmod 600");
    fs::set_permissions(d.join("ca.key"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(d.join("tokens.txt"), "short *\n").unwrap();
    run(d, &args).fails_with("line 1");
    fs::write(d.join("tokens.txt"), "# nobody\n").unwrap();
    run(d, &args).fails_with("no tokens");
    run(
        d,
        &[
            "serve",
            "--ca-key",
            "ca.key",
            "--tokens",
            "missing.txt",
            "--listen",
            "127.0.0.1:0",
        ],
    )
    .fails_with("missing.txt");
}

#[test]
fn caps_connections_and_drops_silent_clients() {
    let dir = setup();
    let server = start(
        dir.path(),
        &["--max-connections", "1", "--read-timeout", "1"],
    );
    let addr = server.addr;
    // One client holds the only slot with half a request...
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"POST /v1/sign HTTP/1.1\r\n").unwrap();
    // ...so the next is turned away at once.
    assert_eq!(exchange(addr, b"GET /v1/ca HTTP/1.1\r\n\r\n").0, 503);
    // The silent client is dropped after the read timeout, without an answer.
    slow.set_read_timeout(Some(WAIT)).unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    // The slot comes back (the server frees it just after closing, so allow a few tries).
    let ok = (0..1000).any(|_| exchange(addr, b"GET /v1/ca HTTP/1.1\r\n\r\n").0 == 200);
    assert!(ok, "the service never freed its connection slot");
}
