//! An in-memory GNS handshake for the pipeline and handshake modes: the engine's own handshake
//! steps (`proto::handshake`) over encoded and decoded control messages — certificates,
//! signatures, X25519, the GNS key schedule — with no network and no timers. Secrets come
//! from a seeded RNG.
//!
//! Each step is timed on the side that runs it, so the handshake mode reports the server's
//! CPU per handshake apart from the client's:
//!
//! ```text
//!  client: on_challenge_reply, encode ConnectRequest          (client time)
//!  server: decode, check_connect_request, accept, encode OK   (server time)
//!  client: decode ConnectOK, on_connect_ok, key the ciphers   (client time)
//! ```
//!
//! With [`Certs::CaSigned`] both sides present certificates from one CA and require the
//! peer's to chain to it: one more Ed25519 verify per side, and longer certificates.

use std::time::Duration;

use anyhow::{bail, ensure};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng as _};
use sockworks_engine::crypto::ca::{CaKey, CertParams, issue};
use sockworks_engine::crypto::negotiate::cipher_preferences;
use sockworks_engine::crypto::{
    AeadBackend, EphemeralKeyPair, IdentityKey, SessionCipher, TrustStore, TrustedCa,
};
use sockworks_engine::proto::handshake::{
    AuthPolicy, ClientHandshake, Established, LocalIdentity, PeerAuth, SessionSecrets,
    check_connect_request,
};
use sockworks_engine::time::Timestamp;
use sockworks_engine::wire::control::{ControlMessage, decode_control};
use sockworks_engine::wire::identity::Identity;
use sockworks_engine::wire::proto::ChallengeReply;

/// One side's keyed ciphers, as a connected endpoint holds them.
pub(crate) struct Endpoint {
    /// Seals what this side sends.
    pub send: SessionCipher,
    /// Opens what this side receives.
    pub recv: SessionCipher,
    /// This side's connection id (the peer puts it in every data packet).
    pub local_id: u32,
}

/// A connected client/server pair.
pub(crate) struct Session {
    /// Client side.
    pub client: Endpoint,
    /// Server side.
    pub server: Endpoint,
}

/// Which certificates both sides present and require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Certs {
    /// GNS's self-issued certificates, unsigned peers allowed (open-source GNS's only kind).
    Anonymous,
    /// Certificates from one CA; each side trusts the CA and requires a trusted peer.
    CaSigned,
}

/// The long-lived part of both sides: identities, policy, trust (made once, not per
/// handshake, as a server keeps one identity for all its connections).
pub(crate) struct Sides {
    certs: Certs,
    client: LocalIdentity,
    server: LocalIdentity,
    policy: AuthPolicy,
    trust: TrustStore,
}

/// Unix time of the handshakes (inside the CA-signed certificates' validity).
const UNIX_NOW: u64 = 1_750_000_000;

fn ca_identity(ca: &CaKey, name: &str, seed: [u8; 32]) -> anyhow::Result<LocalIdentity> {
    let params = CertParams {
        identity: Some(Identity::parse(name)?),
        public_key: IdentityKey::from_seed(seed).public_bytes(),
        app_ids: vec![0],
        pop_ids: Vec::new(),
        time_created: 1_700_000_000,
        time_expiry: 1_800_000_000,
    };
    Ok(LocalIdentity::with_ca_certificate(
        seed,
        issue(ca, &params)?,
    )?)
}

impl Sides {
    /// Both sides' identities and trust for `certs`, keys from `rng`.
    pub(crate) fn new(certs: Certs, rng: &mut ChaCha8Rng) -> anyhow::Result<Self> {
        let (client_seed, server_seed) = (seed32(rng), seed32(rng));
        let mut trust = TrustStore::new();
        let (client, server) = match certs {
            Certs::Anonymous => (
                LocalIdentity::anonymous(client_seed),
                LocalIdentity::anonymous(server_seed),
            ),
            Certs::CaSigned => {
                let ca = CaKey::from_seed(seed32(rng));
                trust.add_ca(TrustedCa::new(ca.public_key()));
                trust.require_trusted = true;
                (
                    ca_identity(&ca, "str:loadgen-client", client_seed)?,
                    ca_identity(&ca, "str:loadgen-server", server_seed)?,
                )
            }
        };
        Ok(Sides {
            certs,
            client,
            server,
            policy: AuthPolicy::default(),
            trust,
        })
    }

    fn auth(&self) -> PeerAuth<'_> {
        PeerAuth {
            policy: &self.policy,
            trust: &self.trust,
            unix_now: Some(UNIX_NOW),
        }
    }
}

/// CPU time of one handshake, by side.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cost {
    /// Decoding the ConnectRequest, checking it, accepting, encoding the ConnectOK.
    pub server: Duration,
    /// Building the ConnectRequest, checking the ConnectOK, keying the ciphers.
    pub client: Duration,
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, other: Cost) {
        self.server += other.server;
        self.client += other.client;
    }
}

fn seed32(rng: &mut ChaCha8Rng) -> [u8; 32] {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    b
}

fn secrets(rng: &mut ChaCha8Rng) -> SessionSecrets {
    SessionSecrets {
        ephemeral: EphemeralKeyPair::from_secret_bytes(seed32(rng)),
        nonce: rng.next_u64(),
    }
}

fn conn_id(rng: &mut ChaCha8Rng) -> u32 {
    // GNS: both 16-bit halves non-zero.
    loop {
        let id = rng.next_u32();
        if id & 0xffff != 0 && id >> 16 != 0 {
            return id;
        }
    }
}

fn encode(msg: ControlMessage) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    msg.encode(&mut out)?;
    Ok(out)
}

fn keyed(est: Established, backend: AeadBackend, local_id: u32) -> anyhow::Result<Endpoint> {
    let (send, recv) = est.keys.ciphers(backend, est.cipher)?;
    Ok(Endpoint {
        send,
        recv,
        local_id,
    })
}

/// Runs the handshake (ConnectRequest / ConnectOK over encoded control messages) and returns
/// keyed endpoints and what each side spent.
pub(crate) fn connect(
    rng: &mut ChaCha8Rng,
    backend: AeadBackend,
    sides: &Sides,
) -> anyhow::Result<(Session, Cost)> {
    let prefs = cipher_preferences(0)?;
    let now = Timestamp::from_micros(1_000_000);
    let (client_addr, server_addr) = ("127.0.0.1:50000".parse()?, "127.0.0.1:27015".parse()?);
    let (client_id, server_id) = (conn_id(rng), conn_id(rng));
    let (client_secrets, server_secrets) = (secrets(rng), secrets(rng));
    let challenge = rng.next_u64();
    let mut cost = Cost::default();

    let t = crate::now();
    let mut client =
        ClientHandshake::new(client_id, server_addr, &sides.client, client_secrets, prefs);
    let reply = ChallengeReply {
        connection_id: Some(client_id),
        challenge: Some(challenge),
        your_timestamp: None,
        protocol_version: Some(13),
    };
    let (req, _) = client.on_challenge_reply(now, &reply, &sides.client, None)?;
    let req = encode(req.into())?;
    cost.client += t.elapsed();

    let t = crate::now();
    let ControlMessage::ConnectRequest(req) = decode_control(&req)? else {
        bail!("expected a ConnectRequest");
    };
    let pending = check_connect_request(now, &req, client_addr, sides.auth())?;
    let (ok, server) = pending.accept(now, server_id, &sides.server, &server_secrets, prefs)?;
    let ok = encode(ok.into())?;
    cost.server += t.elapsed();

    let t = crate::now();
    let ControlMessage::ConnectOk(ok) = decode_control(&ok)? else {
        bail!("expected a ConnectOK");
    };
    let (client_est, _) = client.on_connect_ok(now, &ok, &sides.client, sides.auth())?;
    let client_trusts_server = client_est.trusted_ca.is_some();
    let client = keyed(client_est, backend, client_id)?;
    cost.client += t.elapsed();

    // `require_trusted` refuses untrusted peers, so this only guards the set-up itself.
    let ca_signed = sides.certs == Certs::CaSigned;
    if ca_signed != server.trusted_ca.is_some() || ca_signed != client_trusts_server {
        bail!(
            "{:?}: a side's trust in its peer is not what the set-up says",
            sides.certs
        );
    }
    Ok((
        Session {
            client,
            server: keyed(server, backend, server_id)?,
        },
        cost,
    ))
}

/// `--mode handshake` from the command line.
#[derive(Debug, Clone)]
pub(crate) struct CliRun {
    /// Measured handshakes per kind.
    pub connections: u32,
    pub backend: AeadBackend,
    /// CA-signed handshakes beside anonymous ones.
    pub ca_certs: bool,
    pub seed: u64,
    /// Bound on the run.
    pub max: Duration,
}

/// GNS 1.6's server CPU per handshake with real GNS clients, measured earlier on this machine
/// (issue 13); printed beside ours for scale, not measured by this run.
const GNS_SERVER_US_PER_HANDSHAKE: f64 = 764.0;

/// `--mode handshake`: `--connections` handshakes of each kind, interleaved one by one so
/// that both kinds see the same machine state; the first tenth (at least one) is warm-up.
pub(crate) fn run_cli(args: &CliRun) -> anyhow::Result<()> {
    ensure!(args.connections > 0, "connections must be > 0");
    let backend = args.backend;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let kinds: &[Certs] = if args.ca_certs {
        &[Certs::Anonymous, Certs::CaSigned]
    } else {
        &[Certs::Anonymous]
    };
    let sides = kinds
        .iter()
        .map(|k| Sides::new(*k, &mut rng))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let warmup = (args.connections / 10).max(1);
    let mut costs = vec![Cost::default(); kinds.len()];
    let mut measured = 0u32;
    let (t0, deadline) = (crate::now(), args.max);
    for i in 0..warmup + args.connections {
        for (cost, side) in costs.iter_mut().zip(&sides) {
            let (_, c) = connect(&mut rng, backend, side)?;
            if i >= warmup {
                *cost += c;
            }
        }
        measured += u32::from(i >= warmup);
        if t0.elapsed() > deadline {
            eprintln!("stopping early at the {:?} bound", args.max);
            break;
        }
    }
    ensure!(measured > 0, "no handshake measured within --max-seconds");
    let us = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(measured);
    println!(
        "sockworks loadgen: CPU per handshake, in memory (engine handshake steps, encoded messages), {measured} handshakes per kind, one thread"
    );
    for (kind, cost) in kinds.iter().zip(&costs) {
        println!(
            "  {:<10} server {:>7.1} us   client {:>7.1} us   both {:>7.1} us",
            format!("{kind:?}"),
            us(cost.server),
            us(cost.client),
            us(cost.server + cost.client)
        );
    }
    if let [anon, ca] = costs.as_slice() {
        println!(
            "  ratio CaSigned/Anonymous: server {:.2}x, client {:.2}x, both {:.2}x",
            ca.server.as_secs_f64() / anon.server.as_secs_f64(),
            ca.client.as_secs_f64() / anon.client.as_secs_f64(),
            (ca.server + ca.client).as_secs_f64() / (anon.server + anon.client).as_secs_f64()
        );
    }
    let server_us = costs.last().map_or(0.0, |c| us(c.server));
    println!(
        "  for scale: GNS 1.6 server {GNS_SERVER_US_PER_HANDSHAKE:.0} us per handshake (real GNS clients over UDP, issue 13; not this run): {:.1}x ours{}",
        GNS_SERVER_US_PER_HANDSHAKE / server_us,
        if args.ca_certs {
            " with CA-signed certs"
        } else {
            ""
        }
    );
    Ok(())
}
