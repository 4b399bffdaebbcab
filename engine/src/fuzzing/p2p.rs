//! Fuzz entry points for the P2P parsers: rendezvous signals (and the per-connection
//! [`Signaling`] state they drive), STUN datagrams (and the [`IceAgent`] they reach), and ICE
//! candidate lines. The agents are built the same way every run ([`stun_agent`]), so seeds
//! answering its transactions stay valid (`tests::write_seed_corpora` writes them).

use std::net::SocketAddr;
use std::time::Duration;

use prost::Message;

use crate::datagram::LocalSocket;
use crate::proto::ice::candidate::Candidate;
use crate::proto::ice::cred::ufrag_from_connection_id;
use crate::proto::ice::stun::{
    StunError, StunMessage, attr, fuzz_resign, is_stun, msg, transaction_id, username_local_ufrag,
};
use crate::proto::ice::{CandidateTypes, IceAgent, IceConfig, LocalInterface, TurnServer};
use crate::proto::p2p::route::{connect_request, parse_signal, route_signal};
use crate::proto::p2p::{
    IceAuth, IceRendezvous, P2pConnectOk, P2pRendezvous, SignalRoute, Signaling, SignalingConfig,
};
use crate::time::Timestamp;
use crate::wire::identity::Identity;
use crate::wire::proto::{CertificateSigned, CryptInfoSigned};

/// Start of every run's clock.
const T0: Timestamp = Timestamp::from_micros(1_000_000);
/// Our identity in the signaling target.
const LOCAL_IDENTITY: &str = "str:fuzz-local";
/// Our connection id when a signal names none.
const LOCAL_ID: u32 = 0x5eed_0001;
/// Most signals a (re)poll may return at one instant before it counts as a spin.
const MAX_SIGNALS_PER_POLL: usize = 4;

/// Rendezvous signals. The input is a sequence of records `ctl u8, len u16 LE, bytes` (a
/// short last record takes what is left); each record's bytes are one signal. Every signal
/// that parses re-encodes to bytes that parse to the same message, and routes consistently
/// with its fields. It then goes to an initiator's [`Signaling`] (live from the start) and to
/// an acceptor's (created by the first `NewRequest`, as the endpoint does). `ctl`'s low 4
/// bits advance the clock by 40 ms steps before the signal, its high bits pick a local action
/// (queue an ICE message, connected, close, ICE off). After each step both sides are polled:
/// every signal they emit parses, a poll at one instant ends, and the next wake-up is later
/// than now.
pub fn rendezvous_signal(data: &[u8]) {
    let mut now = T0;
    let mut initiator = Signaling::new(
        now,
        SignalingConfig {
            local_id: LOCAL_ID,
            local_identity: LOCAL_IDENTITY.to_owned(),
            remote_identity: None,
            initiator: true,
        },
    );
    initiator.set_connect_request(
        now,
        connect_request(
            CryptInfoSigned::default(),
            CertificateSigned::default(),
            0,
            1,
        ),
    );
    initiator.queue_ice(now, ice_auth("pwd01"));
    let mut acceptor: Option<Signaling> = None;
    poll_side(&mut initiator, now);

    let mut rest = data;
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = match tail {
            [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
            _ => tail.len(),
        };
        let body = tail.get(2..).unwrap_or_default();
        let (signal, next) = body.split_at(len.min(body.len()));
        rest = next;

        now = now + Duration::from_millis(40 * u64::from(ctl & 0x0f));
        for side in std::iter::once(&mut initiator).chain(acceptor.as_mut()) {
            local_action(side, now, ctl >> 4);
        }
        if let Ok(msg) = parse_signal(signal) {
            check_round_trip(&msg);
            let route = route_signal(&msg, |_, remote_id| remote_id & 1 == 1);
            check_route(&msg, &route);
            if acceptor.is_none()
                && let SignalRoute::NewRequest {
                    identity,
                    remote_id,
                    ..
                } = &route
            {
                let mut a = Signaling::new(
                    now,
                    SignalingConfig {
                        local_id: LOCAL_ID ^ 1,
                        local_identity: LOCAL_IDENTITY.to_owned(),
                        remote_identity: Some(identity.to_string()),
                        initiator: false,
                    },
                );
                a.set_remote(*remote_id, identity.to_string());
                a.queue_connect_ok(now, P2pConnectOk::default());
                a.queue_ice(now, ice_auth("pwd02"));
                acceptor = Some(a);
            }
            if let Ok(input) = initiator.handle_signal(now, &msg)
                && input.connect_ok.is_some()
            {
                initiator.connected(now);
            }
            if let Some(a) = &mut acceptor {
                let _ = a.handle_signal(now, &msg);
            }
        }
        poll_side(&mut initiator, now);
        if let Some(a) = &mut acceptor {
            poll_side(a, now);
        }
    }
    // Later on, with no input, every pending signal still goes out and the timers settle.
    for step in 1..=4u64 {
        let later = now + Duration::from_millis(600 * step);
        poll_side(&mut initiator, later);
        if let Some(a) = &mut acceptor {
            poll_side(a, later);
        }
    }
}

fn ice_auth(pwd: &str) -> IceRendezvous {
    IceRendezvous {
        add_candidate: None,
        auth: Some(IceAuth {
            pwd_frag: Some(pwd.to_owned()),
        }),
    }
}

fn local_action(side: &mut Signaling, now: Timestamp, action: u8) {
    match action {
        1 => side.queue_ice(now, ice_auth("again")),
        2 => side.connected(now),
        3 => side.close(4000, "fuzz close"),
        4 => side.disable_ice(),
        5 => {
            let signal = side.close_signal(4001, "fuzz close signal");
            assert!(parse_signal(&signal.encode_to_vec()).is_ok());
        }
        _ => {}
    }
}

/// Decode, encode, decode: the same message.
fn check_round_trip(msg: &P2pRendezvous) {
    let bytes = msg.encode_to_vec();
    let again = parse_signal(&bytes).expect("re-encoded signal parses");
    assert_eq!(&again, msg, "signal changed through encode and parse");
}

/// The route follows from the fields.
fn check_route(msg: &P2pRendezvous, route: &SignalRoute) {
    match route {
        SignalRoute::ToConnection(id) => assert_eq!(msg.to_connection_id, Some(*id)),
        SignalRoute::Known(_, id) => {
            assert!(msg.to_connection_id.is_none() && msg.from_connection_id == Some(*id));
        }
        SignalRoute::NewRequest { remote_id, .. } => {
            assert_eq!(msg.from_connection_id, Some(*remote_id));
            assert_ne!(*remote_id, 0);
            let req = msg
                .connect_request
                .as_ref()
                .expect("request has connect_request");
            assert!(req.cert.is_some() && req.crypt.is_some());
        }
        SignalRoute::Bad(_) => assert!(msg.to_connection_id.is_none()),
    }
}

/// Polls one side dry at `now`: each signal it sends parses and routes back to us; the poll
/// ends; the next wake-up is in the future.
fn poll_side(side: &mut Signaling, now: Timestamp) {
    let mut sent = 0;
    while let Some(signal) = side.poll_signal(now) {
        sent += 1;
        assert!(
            sent <= MAX_SIGNALS_PER_POLL,
            "poll_signal spins at one instant"
        );
        let parsed = parse_signal(&signal.encode_to_vec()).expect("our own signal parses");
        assert_eq!(
            crate::proto::p2p::route::from_identity(&parsed),
            Ok(Identity::parse(LOCAL_IDENTITY).expect("valid identity"))
        );
    }
    if let Some(t) = side.poll_timeout() {
        assert!(
            t > now,
            "poll_timeout {t:?} not after now {now:?} with nothing to send"
        );
    }
}

/// The socket of the agent's one interface.
pub const STUN_SOCKET: LocalSocket = 3;
/// The agent's one interface.
pub const STUN_LOCAL: &str = "10.0.0.1:40001";
/// The remote candidate signaled to the agent.
pub const STUN_REMOTE: &str = "10.0.0.2:40002";
/// The agent's STUN server.
pub const STUN_SERVER: &str = "198.18.0.1:3478";
/// The agent's TURN server.
pub const STUN_TURN: &str = "198.18.0.2:3478";
/// The remote side's connection id (its ufrag follows).
pub const STUN_REMOTE_ID: u32 = 0x2222_2222;
/// The remote side's ICE password.
pub const STUN_REMOTE_PWD: &str = "rPWD9";
/// The fixed key the bare decoder's MESSAGE-INTEGRITY is checked with.
pub const STUN_FIXED_KEY: &[u8] = b"sockworks-fuzz-key";

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("constant address")
}

/// An agent on interface 10.0.0.1:40001 with a STUN and a TURN server, the remote password,
/// connection id and one host candidate known, polled once at `T0` (so its discovery, TURN
/// allocation and first check are in flight). Returns it with what it sent.
pub fn stun_agent(controlling: bool) -> (IceAgent, Vec<(LocalSocket, SocketAddr, Vec<u8>)>) {
    let mut agent = IceAgent::new(
        T0,
        controlling,
        0x1111_1111,
        42,
        IceConfig {
            enable_mask: CandidateTypes::ENABLE_ALL,
            stun_servers: vec![sa(STUN_SERVER)],
            turn_servers: vec![TurnServer {
                addr: sa(STUN_TURN),
                user: "fuzz".to_owned(),
                pass: "secret".to_owned(),
            }],
        },
        &[LocalInterface {
            socket: STUN_SOCKET,
            addr: sa(STUN_LOCAL),
            prefix_len: 24,
        }],
    )
    .expect("ICE enabled with candidates");
    agent.set_remote_connection_id(STUN_REMOTE_ID);
    agent.handle_remote_password(STUN_REMOTE_PWD);
    agent
        .handle_remote_candidate("candidate:1 0 udp 2130706431 10.0.0.2 40002 typ host")
        .expect("valid candidate");
    let sent = drain(&mut agent, T0);
    (agent, sent)
}

/// `poll_transmit` until `None` (bounded: a spin is a finding), then the candidate and event
/// queues. Everything the agent sends is STUN from its one socket.
fn drain(agent: &mut IceAgent, now: Timestamp) -> Vec<(LocalSocket, SocketAddr, Vec<u8>)> {
    let mut sent = Vec::new();
    while let Some(out) = agent.poll_transmit(now) {
        assert!(sent.len() < 256, "poll_transmit does not run dry");
        assert_eq!(out.0, STUN_SOCKET);
        assert!(is_stun(&out.2), "agent sent a non-STUN datagram");
        sent.push(out);
    }
    while let Some(line) = agent.poll_local_candidate() {
        let c = Candidate::parse(&line).expect("our own candidate line parses");
        assert_eq!(c.to_string(), line);
    }
    while agent.poll_event().is_some() {}
    let _ = agent.poll_timeout();
    sent
}

/// STUN datagrams: the bare decoder and its accessors (integrity checked with a fixed key),
/// the routing helpers, then the bytes fed to an agent as if from its remote candidate, its
/// STUN server and its TURN server (`handle_stun`, `decapsulate`), and once more from the
/// remote with MESSAGE-INTEGRITY and FINGERPRINT recomputed with the agent's keys, so that
/// mutations reach the checks' handling. The first byte's low bit picks the agent's role.
pub fn stun(data: &[u8]) {
    let decoded = StunMessage::decode(data);
    assert_eq!(transaction_id(data).is_some(), is_stun(data));
    match &decoded {
        Ok(m) => {
            assert!(is_stun(data));
            assert_eq!(transaction_id(data), Some(m.txid));
            let _ = m.verify_integrity(STUN_FIXED_KEY);
            let _ = (m.is_request(), m.is_response(), m.has_integrity());
            let _ = (
                m.mapped_address(),
                m.error_code(),
                m.u32_attr(attr::PRIORITY),
            );
            let _ = (
                m.addr(attr::MAPPED_ADDRESS),
                m.xor_addr(attr::XOR_PEER_ADDRESS),
            );
            let _ = (m.get(attr::USERNAME), m.has(attr::USE_CANDIDATE));
        }
        Err(StunError::NotStun) => assert!(!is_stun(data)),
        Err(_) => assert!(is_stun(data)),
    }
    if let Some(ufrag) = username_local_ufrag(data) {
        let m = decoded
            .as_ref()
            .expect("a ufrag comes from a decoded message");
        assert_eq!(m.msg_type, msg::BINDING_REQUEST);
        let user = m.get(attr::USERNAME).expect("a ufrag comes from USERNAME");
        assert!(user.starts_with(&ufrag));
    }

    let controlling = data.first().is_some_and(|b| b & 1 == 1);
    let (mut agent, _) = stun_agent(controlling);
    let now = T0 + Duration::from_millis(20);
    for from in [STUN_REMOTE, STUN_SERVER, STUN_TURN].map(sa) {
        let _ = agent.handle_stun(now, STUN_SOCKET, from, data);
        if let Some((_, inner)) = agent.decapsulate(STUN_SOCKET, from, data) {
            assert!(!is_stun(inner));
            assert_eq!(
                from,
                sa(STUN_TURN),
                "data from a non-TURN source decapsulated"
            );
        }
        drain(&mut agent, now);
    }
    if is_stun(data) {
        let mut signed = data.to_vec();
        let key = if signed[0] & 0x01 == 0 && signed[1] & 0x10 == 0 {
            agent.local_password().to_owned()
        } else {
            STUN_REMOTE_PWD.to_owned()
        };
        fuzz_resign(&mut signed, key.as_bytes());
        let _ = agent.handle_stun(now, STUN_SOCKET, sa(STUN_REMOTE), &signed);
        drain(&mut agent, now);
    }
    let later = now + Duration::from_millis(600);
    agent.handle_timeout(later);
    drain(&mut agent, later);
}

/// ICE candidate lines, one per input line: whatever parses prints as a line that parses to
/// the same candidate; every line then goes to an agent (`handle_remote_candidate`), which
/// pairs, checks and sends without spinning.
pub fn ice_candidate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (mut agent, _) = stun_agent(false);
    let mut now = T0;
    for line in text.split('\n') {
        let parsed = Candidate::parse(line);
        if let Ok(c) = &parsed {
            let printed = c.to_string();
            assert_eq!(
                Candidate::parse(&printed).as_ref(),
                Ok(c),
                "candidate changed through print and parse: {printed:?}"
            );
        }
        let r = agent.handle_remote_candidate(line);
        assert_eq!(r.is_ok(), parsed.is_ok());
        now = now + Duration::from_millis(50);
        drain(&mut agent, now);
    }
    // The ufrag the agent expects checks under still follows from the connection id.
    assert_eq!(agent.local_ufrag(), ufrag_from_connection_id(0x1111_1111));
}

#[cfg(test)]
mod tests;
