//! CA trust against the real library (issue 13). Open-source GNS's only trust root is Valve's
//! hard-coded key and it has no call to add another, so a GNS peer can never be given our CA:
//!
//! - a GNS client still connects to a Sockworks server that trusts a CA but allows unsigned
//!   peers (GNS's `IP_AllowWithoutAuth` default), and is flagged unauthenticated there;
//! - a GNS client connects to a Sockworks server presenting a CA-signed certificate: GNS
//!   cannot check the signature, ignores the failure (its default policy) and treats the cert
//!   as unsigned, but takes the identity the cert names;
//! - a Sockworks client that requires a trusted certificate refuses a GNS server (whose cert
//!   is self-issued) with `Remote_BadCert` (4003), and the GNS server, which had already
//!   accepted and counted itself Connected, sees `ClosedByPeer` with that reason.
//!
//! The Sockworks side is the protocol core over a blocking UDP socket, as in
//! `sockworks_vs_gns.rs`. Every wait is bounded (`LIMIT` here, `process::WAIT` for the peer).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed set-up is a failed test"
)]

use std::net::SocketAddr;
use std::time::Duration;

use sockworks_engine::blocking::UdpDriver;
use sockworks_engine::crypto::ca::{CaKey, CertParams, issue};
use sockworks_engine::crypto::{IdentityKey, TrustStore, TrustedCa};
use sockworks_engine::proto::connection::{ApiState, ConnectionInfo};
use sockworks_engine::proto::endpoint::{ConnectionId, EndpointConfig};
use sockworks_engine::proto::handshake::LocalIdentity;
use sockworks_engine::wire::identity::Identity;
use sockworks_interop::process::{FAST, PeerProc};

const LIMIT: Duration = Duration::from_secs(20);
/// `k_ESteamNetConnectionEnd_Remote_BadCert`.
const REMOTE_BAD_CERT: u32 = 4003;
/// The Unix time the Sockworks side is told (tests read no wall clock); the certificates below
/// are valid from well before it until 2096, so GNS's own clock is inside them too.
const UNIX_NOW: u64 = 1_750_000_000;
/// The name our CA certifies for the Sockworks server.
const SERVER_NAME: &str = "str:sockworks-server";

fn gns(name: &'static str, args: &[&str]) -> PeerProc {
    PeerProc::spawn(env!("CARGO_BIN_EXE_gns-peer"), name, args)
}

fn ca() -> CaKey {
    CaKey::from_seed([0x5c; 32])
}

/// Trusts our CA; `require_trusted` as given.
fn trust(require_trusted: bool) -> TrustStore {
    let mut t = TrustStore::new();
    t.add_ca(TrustedCa::new(ca().public_key()));
    t.require_trusted = require_trusted;
    t
}

/// An identity `name` whose certificate our CA signed, for AppID 0 (what GNS checks).
fn ca_identity(name: &str, seed: [u8; 32]) -> LocalIdentity {
    let params = CertParams {
        identity: Some(Identity::parse(name).unwrap()),
        public_key: IdentityKey::from_seed(seed).public_bytes(),
        app_ids: vec![0],
        pop_ids: Vec::new(),
        time_created: 1_700_000_000,
        time_expiry: 4_000_000_000,
    };
    LocalIdentity::with_ca_certificate(seed, issue(&ca(), &params).unwrap()).unwrap()
}

/// A Sockworks endpoint on 127.0.0.1 with `trust`, told the time, presenting `identity` (GNS's
/// kind of self-issued cert when `None`).
fn sockworks(
    listen: bool,
    seed: u64,
    trust: TrustStore,
    identity: Option<LocalIdentity>,
) -> UdpDriver {
    let mut cfg = EndpointConfig {
        listen,
        ..Default::default()
    };
    cfg.connection.snp.send_rate_min = 4_000_000;
    cfg.connection.snp.send_rate_max = 4_000_000;
    let mut drv = UdpDriver::bind("127.0.0.1:0".parse().unwrap(), cfg, seed).unwrap();
    let now = drv.now();
    drv.endpoint.set_unix_time(now, UNIX_NOW);
    drv.endpoint.set_trust(trust);
    if let Some(identity) = identity {
        drv.endpoint.set_identity(identity);
    }
    drv
}

/// What the Sockworks server saw of one GNS client's run.
struct Served {
    /// The connection, as it was once Connected.
    connected: ConnectionInfo,
    /// Reliable payloads received.
    got: Vec<Vec<u8>>,
    /// The client's close (reason, debug).
    closed: (u32, String),
}

/// Accepts one GNS client, collects what it sends, until it closes.
fn serve_one(drv: &mut UdpDriver) -> Served {
    let (mut conn, mut connected, mut closed) = (None::<ConnectionId>, None, None);
    let mut got = Vec::new();
    let finished = drv
        .run_until(LIMIT, |ep, now| {
            while let Some(ev) = ep.poll_event() {
                if ev.change.new == ApiState::Connecting && ev.incoming {
                    ep.accept(now, ev.connection).unwrap();
                    conn = Some(ev.connection);
                }
                if ev.change.new == ApiState::Connected {
                    connected = ep.connection(ev.connection).map(|c| c.info());
                }
                if ev.change.new == ApiState::ClosedByPeer {
                    closed = Some((ev.change.end_reason, ev.change.end_debug.clone()));
                }
            }
            if let Some(c) = conn {
                got.extend(std::iter::from_fn(|| ep.poll_message(c)).map(|m| m.data));
            }
            closed.is_some()
        })
        .unwrap();
    assert!(finished, "the GNS client connected, sent and closed");
    if let Some(c) = conn {
        let now = drv.now();
        let _ = drv.endpoint.close(now, c, 0, "", false);
    }
    Served {
        connected: connected.expect("the connection reached Connected"),
        got,
        closed: closed.expect("closed"),
    }
}

/// Runs a GNS client against `drv` (script: one reliable message, then the script's own close).
fn gns_client_run(drv: &mut UdpDriver) -> (Served, PeerProc) {
    let addr = drv.local_addr().unwrap().to_string();
    let mut cli = gns(
        "gns-client",
        &[
            &[
                "client",
                "--connect",
                &addr,
                "--script",
                "send r 0 hello; waitsent 5000",
            ][..],
            &FAST[..],
        ]
        .concat(),
    );
    let served = serve_one(drv);
    let (done, status) = cli.finish();
    assert_eq!(done.get("ok"), Some("1"), "{done:?}");
    assert!(status.success());
    (served, cli)
}

#[test]
fn gns_client_connects_to_a_server_that_trusts_a_ca_but_allows_unsigned_peers() {
    let mut drv = sockworks(true, 31, trust(false), None);
    let (served, cli) = gns_client_run(&mut drv);

    assert_eq!(served.got, [b"hello".to_vec()]);
    assert_eq!(served.closed, (1000, "script end".to_owned()));
    let info = &served.connected;
    assert!(
        info.unauthenticated,
        "GNS's self-issued cert is not CA-signed: {info:?}"
    );
    // GNS's anonymous localhost identity becomes the client's address (GNS does the same).
    assert!(
        matches!(&info.remote_identity, Some(Identity::IpAddress(a)) if a.ip().is_loopback() && a.port() != 0),
        "{info:?}"
    );

    // GNS, too, flags us unauthenticated (our anonymous cert is self-issued, like its own),
    // and names us by our address.
    let auth = cli.of_kind("AUTH");
    assert_eq!(auth.len(), 1, "{auth:?}");
    assert_eq!(auth[0].get("unauthenticated"), Some("1"), "{auth:?}");
    let ours = format!("ip:{}", drv.local_addr().unwrap());
    assert_eq!(auth[0].get("identity"), Some(ours.as_str()), "{auth:?}");
}

#[test]
fn gns_client_accepts_a_ca_signed_server_cert_as_unsigned_and_takes_its_identity() {
    let identity = ca_identity(SERVER_NAME, [0x21; 32]);
    assert!(identity.is_ca_signed());
    let mut drv = sockworks(true, 32, trust(false), Some(identity));
    let (served, cli) = gns_client_run(&mut drv);

    assert_eq!(served.got, [b"hello".to_vec()]);
    assert_eq!(served.closed, (1000, "script end".to_owned()));
    assert!(served.connected.unauthenticated, "{:?}", served.connected);

    // GNS cannot check our CA's signature ("CA key .. is not known to us"); under its default
    // IP_AllowWithoutAuth=2 it goes on as with an unsigned cert, so the connection is
    // Unauthenticated, but it does take the identity our certificate names.
    let auth = cli.of_kind("AUTH");
    assert_eq!(auth.len(), 1, "{auth:?}");
    assert_eq!(auth[0].get("unauthenticated"), Some("1"), "{auth:?}");
    assert_eq!(auth[0].get("identity"), Some(SERVER_NAME), "{auth:?}");
    let flags: i32 = auth[0].num("flags").unwrap();
    assert_eq!(flags & 2, 0, "AES-GCM, not the NULL cipher: {auth:?}");
}

#[test]
fn sockworks_client_requiring_trust_refuses_a_gns_server_with_bad_cert() {
    let (mut srv, port) = {
        let mut p = gns(
            "gns-server",
            &[
                &["server", "--bind", "127.0.0.1:0", "--once"][..],
                &FAST[..],
            ]
            .concat(),
        );
        let port: u16 = p
            .wait_for("LISTENING", |e| e.kind == "LISTENING")
            .num("port")
            .unwrap();
        (p, port)
    };
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    // Our client presents a CA-signed cert of its own (GNS cannot check it either).
    let mut drv = sockworks(
        false,
        33,
        trust(true),
        Some(ca_identity("str:sockworks-client", [0x22; 32])),
    );
    let now = drv.now();
    let c = drv.endpoint.connect(now, server.into(), None).unwrap();
    let mut changes = Vec::new();
    let ended = drv
        .run_until(LIMIT, |ep, _| {
            changes.extend(
                std::iter::from_fn(|| ep.poll_event())
                    .filter(|ev| ev.connection == c)
                    .map(|ev| ev.change),
            );
            changes
                .iter()
                .any(|ch| ch.new == ApiState::ProblemDetectedLocally)
        })
        .unwrap();
    assert!(ended, "the handshake ended: {changes:?}");
    let states: Vec<ApiState> = changes.iter().map(|ch| ch.new).collect();
    assert!(!states.contains(&ApiState::Connected), "{states:?}");
    let end = changes.last().unwrap();
    assert_eq!(end.end_reason, REMOTE_BAD_CERT, "{end:?}");
    assert_eq!(
        end.end_debug, "bad certificate: unsigned certificate not allowed",
        "{end:?}"
    );
    // Let the close reach GNS before we stop answering.
    drv.run_until(Duration::from_millis(300), |_, _| false)
        .unwrap();

    // GNS accepted the request (our CA-signed cert is just "unsigned" to it, but it takes the
    // identity), counts itself Connected once its ConnectOK is out (as a GNS server does),
    // and then learns from our ConnectionClosed why we left.
    srv.wait_for("ACCEPTED", |e| e.kind == "ACCEPTED");
    let closed = srv.wait_for("CLOSED", |e| e.kind == "CLOSED");
    assert_eq!(closed.get("state"), Some("ClosedByPeer"), "{closed:?}");
    assert_eq!(
        closed.num::<u32>("reason"),
        Some(REMOTE_BAD_CERT),
        "{closed:?}"
    );
    assert_eq!(
        closed.get("debug"),
        Some("bad certificate: unsigned certificate not allowed"),
        "{closed:?}"
    );
    let auth = srv.of_kind("AUTH");
    assert_eq!(auth.len(), 1, "{auth:?}");
    assert_eq!(auth[0].get("unauthenticated"), Some("1"), "{auth:?}");
    assert_eq!(
        auth[0].get("identity"),
        Some("str:sockworks-client"),
        "{auth:?}"
    );
    let (done, _) = srv.finish();
    assert!(done.get("ok").is_some(), "{done:?}");
    let now = drv.now();
    let _ = drv.endpoint.close(now, c, 0, "", false);
}
