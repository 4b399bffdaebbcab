//! An in-memory GNS handshake between a client and a server: the real control messages
//! (ConnectRequest / ConnectOK, encoded and decoded), certificate and crypt-info checks, cipher
//! negotiation, X25519 and the GNS key schedule. What the load generator exercises until the
//! connection core and runtime exist; each side's secrets come from a seeded RNG.

use anyhow::{Context, bail};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use sockworks_engine::crypto::cert::{
    check_peer_cert, crypt_info, default_self_issued, sign_crypt_info, verify_peer_crypt_info,
};
use sockworks_engine::crypto::kdf::derive;
use sockworks_engine::crypto::negotiate::{
    cipher_preferences, client_accept_cipher, server_choose_cipher,
};
use sockworks_engine::crypto::{
    AeadBackend, EphemeralKeyPair, IdentityKey, KdfInput, PeerCert, PeerCryptInfo, Role,
    SessionCipher, SessionKeys,
};
use sockworks_engine::wire::control::{ControlMessage, decode_control};
use sockworks_engine::wire::proto::{
    CertificateSigned, Cipher, ConnectOk, ConnectRequest, CryptInfoSigned,
};

/// One direction-pair of keyed ciphers, as a connected endpoint holds them.
pub struct Endpoint {
    /// Seals what this side sends.
    pub send: SessionCipher,
    /// Opens what this side receives.
    pub recv: SessionCipher,
    /// This side's connection id (the peer puts it in every data packet).
    pub local_id: u32,
}

/// A connected client/server pair.
pub struct Session {
    /// Client side.
    pub client: Endpoint,
    /// Server side.
    pub server: Endpoint,
}

struct Offer {
    key: IdentityKey,
    eph: EphemeralKeyPair,
    cert: CertificateSigned,
    conn_id: u32,
}

fn seed32(rng: &mut ChaCha8Rng) -> [u8; 32] {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    b
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

fn offer(rng: &mut ChaCha8Rng) -> Offer {
    let key = IdentityKey::from_seed(seed32(rng));
    let cert = default_self_issued(&key, "ip:::1");
    Offer {
        key,
        eph: EphemeralKeyPair::from_secret_bytes(seed32(rng)),
        cert,
        conn_id: conn_id(rng),
    }
}

fn crypt(o: &Offer, nonce: u64, ciphers: &[Cipher]) -> CryptInfoSigned {
    sign_crypt_info(&crypt_info(&o.eph.public_bytes(), nonce, ciphers), &o.key)
}

fn check(
    cert: Option<&CertificateSigned>,
    crypt: Option<&CryptInfoSigned>,
) -> anyhow::Result<(PeerCert, PeerCryptInfo)> {
    let cert = check_peer_cert(cert.context("no cert")?, 0, &[])?;
    let info = verify_peer_crypt_info(crypt.context("no crypt info")?, &cert)?;
    Ok((cert, info))
}

/// Runs the handshake over encoded control messages and returns keyed endpoints.
pub fn connect(rng: &mut ChaCha8Rng, backend: AeadBackend) -> anyhow::Result<Session> {
    let prefs = cipher_preferences(0)?;
    let client = offer(rng);
    let client_crypt = crypt(&client, rng.next_u64(), prefs);
    let mut datagram = Vec::with_capacity(256);
    ControlMessage::from(ConnectRequest {
        client_connection_id: Some(client.conn_id),
        challenge: Some(rng.next_u64()),
        my_timestamp: Some(0),
        cert: Some(client.cert.clone()),
        crypt: Some(client_crypt.clone()),
        ..ConnectRequest::default()
    })
    .encode(&mut datagram)?;

    // Server: decode, check the client's material, choose a cipher, answer ConnectOK.
    let ControlMessage::ConnectRequest(req) = decode_control(&datagram)? else {
        bail!("expected a ConnectRequest");
    };
    req_valid(&ControlMessage::ConnectRequest(req.clone()))?;
    let (c_cert, c_info) = check(req.cert.as_ref(), req.crypt.as_ref())?;
    let chosen = server_choose_cipher(prefs, &c_info.ciphers)?;
    let server = offer(rng);
    let server_crypt = crypt(&server, rng.next_u64(), &[chosen]);
    datagram.clear();
    ControlMessage::from(ConnectOk {
        client_connection_id: req.client_connection_id,
        server_connection_id: Some(server.conn_id),
        your_timestamp: req.my_timestamp,
        delay_time_usec: Some(0),
        crypt: Some(server_crypt),
        cert: Some(server.cert.clone()),
        ..ConnectOk::default()
    })
    .encode(&mut datagram)?;
    let server_shared = server.eph.agree(&c_info.public_key)?;

    // Client: decode ConnectOK, check, accept the cipher.
    let ControlMessage::ConnectOk(ok) = decode_control(&datagram)? else {
        bail!("expected a ConnectOK");
    };
    let (s_cert, s_info) = check(ok.cert.as_ref(), ok.crypt.as_ref())?;
    let accepted = client_accept_cipher(prefs, &s_info.ciphers)?;
    let client_shared = client.eph.agree(&s_info.public_key)?;
    let server_id = ok.server_connection_id.context("no server id")?;

    let schedule = |shared: &[u8; 32]| {
        derive(&KdfInput {
            shared_secret: shared,
            client_nonce: c_info.nonce,
            server_nonce: s_info.nonce,
            client_connection_id: client.conn_id,
            server_connection_id: server_id,
            server_cert: &s_cert.cert_bytes,
            client_cert: &c_cert.cert_bytes,
            server_crypt_info: &s_info.info_bytes,
            client_crypt_info: &c_info.info_bytes,
        })
    };
    let (c_send, c_recv) = SessionKeys::from_schedule(&schedule(&client_shared), Role::Client)
        .ciphers(backend, accepted)?;
    let (s_send, s_recv) = SessionKeys::from_schedule(&schedule(&server_shared), Role::Server)
        .ciphers(backend, chosen)?;
    Ok(Session {
        client: Endpoint {
            send: c_send,
            recv: c_recv,
            local_id: client.conn_id,
        },
        server: Endpoint {
            send: s_send,
            recv: s_recv,
            local_id: server.conn_id,
        },
    })
}

fn req_valid(msg: &ControlMessage) -> anyhow::Result<()> {
    msg.validate()
        .map_err(|e| anyhow::anyhow!("invalid ConnectRequest: {e}"))
}
