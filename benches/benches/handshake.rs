//! CPU per handshake, with and without CA-signed certificates, side by side in one run.
//!
//! Two in-memory [`Endpoint`]s hand each other the real datagrams of a full handshake:
//!
//! ```text
//!  client                      server (timed)
//!  connect ── ChallengeRequest ──► handle_datagram, poll_transmit
//!          ◄── ChallengeReply ────
//!          ── ConnectRequest ────► handle_datagram (cert + crypt-info checks), poll_event,
//!                                  accept (X25519, sign, key schedule), poll_transmit
//!          ◄── ConnectOK ─────────
//!  handle_datagram (checks, keys) -> Connected
//! ```
//!
//! - `anonymous`: both sides present GNS's self-issued certificate (open-source GNS's only
//!   kind); nobody trusts a CA; unsigned peers allowed (`IP_AllowWithoutAuth` default).
//! - `ca-signed`: both sides present a certificate our CA issued, and both trust stores hold the
//!   CA and set `require_trusted`: each side verifies one more Ed25519 signature (the CA's over
//!   the peer's certificate) and decodes a longer certificate.
//!
//! `reference/ed25519-verify` is one such verify alone, the unit of the difference.
//!
//! `server/*` counts only the server endpoint's calls (what a game server spends per
//! connecting client); `both-sides/*` counts client and server. The endpoints are rebuilt,
//! untimed, every [`PER_ENDPOINT`] handshakes so connection tables stay small.
//! Run: `cargo bench -p sockworks-benches --bench handshake`. Compare ratios within one run.

#![expect(
    clippy::disallowed_methods,
    reason = "benchmarks measure wall-clock time"
)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sockworks_engine::crypto::ca::{CaKey, CertParams, issue};
use sockworks_engine::crypto::keys::verify_signature;
use sockworks_engine::crypto::{IdentityKey, TrustStore, TrustedCa};
use sockworks_engine::proto::connection::ApiState;
use sockworks_engine::proto::endpoint::{Endpoint, EndpointConfig};
use sockworks_engine::proto::handshake::LocalIdentity;
use sockworks_engine::testing::sim_secret;
use sockworks_engine::time::Timestamp;
use sockworks_engine::wire::identity::Identity;

/// Handshakes per pair of endpoints before both are rebuilt.
const PER_ENDPOINT: u64 = 256;
/// The Unix time both endpoints are told (inside the certificates' validity).
const UNIX_NOW: u64 = 1_750_000_000;

/// Which certificates the two sides present and require.
#[derive(Clone, Copy, Debug)]
enum Certs {
    Anonymous,
    CaSigned,
}

impl Certs {
    fn name(self) -> &'static str {
        match self {
            Certs::Anonymous => "anonymous",
            Certs::CaSigned => "ca-signed",
        }
    }
}

/// A CA-signed identity `name` with the key from `seed`.
fn ca_identity(ca: &CaKey, name: &str, seed: [u8; 32]) -> LocalIdentity {
    let params = CertParams {
        identity: Some(Identity::parse(name).expect("literal identity")),
        public_key: IdentityKey::from_seed(seed).public_bytes(),
        app_ids: vec![0],
        pop_ids: Vec::new(),
        time_created: 1_700_000_000,
        time_expiry: 1_800_000_000,
    };
    let cert = issue(ca, &params).expect("valid parameters");
    LocalIdentity::with_ca_certificate(seed, cert).expect("cert for this key")
}

/// A client and a server endpoint, handshaking over datagrams passed by hand.
struct Rig {
    certs: Certs,
    round: u64,
    client: Endpoint,
    server: Endpoint,
    now: Timestamp,
    buf: Vec<u8>,
}

const CLIENT: &str = "127.0.0.1:50000";
const SERVER: &str = "127.0.0.1:27015";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

impl Rig {
    fn new(certs: Certs) -> Self {
        let (client, server) = Self::endpoints(certs, 0);
        Rig {
            certs,
            round: 0,
            client,
            server,
            now: Timestamp::from_micros(1_000_000),
            buf: Vec::with_capacity(1500),
        }
    }

    fn endpoints(certs: Certs, round: u64) -> (Endpoint, Endpoint) {
        let seed = 2 * round + 1;
        let mut client = Endpoint::new(EndpointConfig::default(), seed, &sim_secret(seed));
        let server_config = EndpointConfig {
            listen: true,
            ..EndpointConfig::default()
        };
        let mut server = Endpoint::new(server_config, seed + 1, &sim_secret(seed + 1));
        if let Certs::CaSigned = certs {
            let ca = CaKey::from_seed([9; 32]);
            let mut trust = TrustStore::new();
            trust.add_ca(TrustedCa::new(ca.public_key()));
            trust.require_trusted = true;
            for (ep, name, key) in [
                (&mut client, "str:bench-client", 1),
                (&mut server, "str:bench-server", 2),
            ] {
                ep.set_identity(ca_identity(&ca, name, [key; 32]));
                ep.set_trust(trust.clone());
                ep.set_unix_time(Timestamp::ZERO, UNIX_NOW);
            }
        }
        (client, server)
    }

    /// Moves every datagram `from` has queued into `to`; the time spent in `from`'s polls and
    /// in `to` are returned separately (from, to).
    fn hop(&mut self, client_to_server: bool) -> (Duration, Duration) {
        let now = self.now;
        let (from, to, from_addr) = if client_to_server {
            (&mut self.client, &mut self.server, addr(CLIENT))
        } else {
            (&mut self.server, &mut self.client, addr(SERVER))
        };
        let (mut polled, mut handled, mut moved) = (Duration::ZERO, Duration::ZERO, 0);
        loop {
            self.buf.clear();
            let t0 = Instant::now();
            let sent = from.poll_transmit(now, &mut self.buf);
            let t1 = Instant::now();
            polled += t1 - t0;
            if sent.is_none() {
                break;
            }
            to.handle_datagram(now, from_addr.into(), &mut self.buf);
            handled += t1.elapsed();
            moved += 1;
        }
        assert!(moved > 0, "a handshake datagram is due");
        (polled, handled)
    }

    /// One full handshake; returns (server time, client time).
    fn handshake(&mut self) -> (Duration, Duration) {
        if self.round % PER_ENDPOINT == PER_ENDPOINT - 1 {
            (self.client, self.server) = Self::endpoints(self.certs, self.round);
        }
        self.round += 1;
        self.now = self.now + Duration::from_micros(100);
        let now = self.now;
        let (mut server, mut client) = (Duration::ZERO, Duration::ZERO);

        let t = Instant::now();
        let id = self
            .client
            .connect(now, addr(SERVER).into(), None)
            .expect("connection ids left");
        client += t.elapsed();
        // ChallengeRequest, ChallengeReply, ConnectRequest.
        let (c, s) = self.hop(true);
        (client, server) = (client + c, server + s);
        let (s, c) = self.hop(false);
        (client, server) = (client + c, server + s);
        let (c, s) = self.hop(true);
        (client, server) = (client + c, server + s);

        let t = Instant::now();
        let ev = self.server.poll_event().expect("an incoming connection");
        assert_eq!(ev.change.new, ApiState::Connecting, "{ev:?}");
        self.server
            .accept(now, ev.connection)
            .expect("accept the request");
        server += t.elapsed();
        // ConnectOK.
        let (s, c) = self.hop(false);
        (client, server) = (client + c, server + s);
        let info = self.client.connection(id).map(|c| c.info());
        let info = info.expect("the client's connection");
        assert_eq!(info.state, ApiState::Connected, "{:?}", self.certs);
        // With CA-signed certs each side trusted the other's (else `require_trusted` refused).
        assert_eq!(
            info.unauthenticated,
            matches!(self.certs, Certs::Anonymous),
            "{:?}",
            self.certs
        );
        // The status changes since (Connected on both sides) are the application's business.
        while self.server.poll_event().is_some() {}
        while self.client.poll_event().is_some() {}
        (server, client)
    }
}

fn handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    for (side, server_only) in [("server", true), ("both-sides", false)] {
        for certs in [Certs::Anonymous, Certs::CaSigned] {
            let mut rig = Rig::new(certs);
            g.bench_function(BenchmarkId::new(side, certs.name()), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (server, client) = rig.handshake();
                        total += if server_only { server } else { server + client };
                    }
                    total
                })
            });
        }
    }
    // The unit of the difference: what one more Ed25519 verify (the CA's signature over a
    // certificate of the size we issue) costs on this machine, in the same run.
    let ca = CaKey::from_seed([9; 32]);
    let cert = ca_identity(&ca, "str:bench-client", [1; 32]).cert().clone();
    let (body, sig) = (
        cert.cert.unwrap_or_default(),
        cert.ca_signature.unwrap_or_default(),
    );
    g.bench_function("reference/ed25519-verify", |b| {
        b.iter(|| verify_signature(&ca.public_key(), black_box(&body), black_box(&sig)))
    });
    g.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
