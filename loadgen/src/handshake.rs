//! An in-memory GNS handshake for the pipeline mode: the engine's own handshake steps
//! (`proto::handshake`) over encoded and decoded control messages — certificates, signatures,
//! X25519, the GNS key schedule — with no network and no timers. Secrets come from a seeded RNG.

use anyhow::bail;
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use sockworks_engine::crypto::negotiate::cipher_preferences;
use sockworks_engine::crypto::{AeadBackend, EphemeralKeyPair, SessionCipher};
use sockworks_engine::proto::handshake::{
    AuthPolicy, ClientHandshake, Established, LocalIdentity, SessionSecrets, check_connect_request,
};
use sockworks_engine::time::Timestamp;
use sockworks_engine::wire::control::{ControlMessage, decode_control};
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

/// Sends `msg` through the real encoder and decoder, as the wire would.
fn over_wire(msg: ControlMessage) -> anyhow::Result<ControlMessage> {
    let mut out = Vec::with_capacity(256);
    msg.encode(&mut out)?;
    Ok(decode_control(&out)?)
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
/// keyed endpoints.
pub(crate) fn connect(rng: &mut ChaCha8Rng, backend: AeadBackend) -> anyhow::Result<Session> {
    let prefs = cipher_preferences(0)?;
    let policy = AuthPolicy::default();
    let now = Timestamp::from_micros(1_000_000);
    let (client_addr, server_addr) = ("127.0.0.1:50000".parse()?, "127.0.0.1:27015".parse()?);
    let client_identity = LocalIdentity::anonymous(seed32(rng));
    let server_identity = LocalIdentity::anonymous(seed32(rng));
    let (client_id, server_id) = (conn_id(rng), conn_id(rng));

    let mut client = ClientHandshake::new(
        client_id,
        server_addr,
        &client_identity,
        secrets(rng),
        prefs,
    );
    let reply = ChallengeReply {
        connection_id: Some(client_id),
        challenge: Some(rng.next_u64()),
        your_timestamp: None,
        protocol_version: Some(13),
    };
    let (req, _) = client.on_challenge_reply(now, &reply, &client_identity, None)?;
    let ControlMessage::ConnectRequest(req) = over_wire(req.into())? else {
        bail!("expected a ConnectRequest");
    };
    let pending = check_connect_request(now, &req, client_addr, &policy)?;
    let (ok, server) = pending.accept(now, server_id, &server_identity, &secrets(rng), prefs)?;
    let ControlMessage::ConnectOk(ok) = over_wire(ok.into())? else {
        bail!("expected a ConnectOK");
    };
    let (client_est, _) = client.on_connect_ok(now, &ok, &client_identity, &policy)?;
    Ok(Session {
        client: keyed(client_est, backend, client_id)?,
        server: keyed(server, backend, server_id)?,
    })
}
