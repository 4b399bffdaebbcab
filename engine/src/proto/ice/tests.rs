//! Agent scenarios over an in-memory network: direct, lossy, NATed (srflx through a fake STUN
//! server), relayed (a fake TURN server with a 401 challenge), plus the check schedule and
//! the drop rules.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use md5::{Digest, Md5};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::stun::{self, StunMessage, StunWriter, attr, msg};
use super::*;
use crate::datagram::LocalSocket;
use crate::time::Timestamp;

const LATENCY: Duration = Duration::from_millis(10);
const STUN_SERVER: &str = "198.18.0.1:3478";
const TURN_SERVER: &str = "198.18.0.2:3478";
const TURN_USER: &str = "alice";
const TURN_PASS: &str = "secret";
const TURN_REALM: &str = "sockworks";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ms(m: u64) -> Timestamp {
    Timestamp::from_micros(m * 1000)
}

fn all_config() -> IceConfig {
    IceConfig {
        enable_mask: CandidateTypes::ENABLE_ALL,
        stun_servers: vec![],
        turn_servers: vec![],
    }
}

/// A fake TURN server: one allocation per client address, 401 first, then long-term auth.
#[derive(Default)]
struct FakeTurn {
    /// (client address as seen, relayed address)
    allocs: Vec<(SocketAddr, SocketAddr)>,
    challenges: u32,
    permissions: Vec<IpAddr>,
}

impl FakeTurn {
    fn key() -> [u8; 16] {
        let mut k = [0u8; 16];
        k.copy_from_slice(&Md5::digest(format!(
            "{TURN_USER}:{TURN_REALM}:{TURN_PASS}"
        )));
        k
    }
}

/// Two agents, optional one-to-one NATs, a STUN and a TURN server.
struct World {
    now: Timestamp,
    agents: Vec<IceAgent>,
    ifaces: Vec<Vec<LocalInterface>>,
    /// Public IP of each agent's one-to-one NAT (same ports).
    nat: Vec<Option<IpAddr>>,
    /// Direct agent-to-agent packets are dropped (only servers pass).
    direct_blocked: bool,
    loss: f64,
    rng: ChaCha8Rng,
    /// (deliver at, from as seen, to, bytes)
    wire: VecDeque<(Timestamp, SocketAddr, SocketAddr, Vec<u8>)>,
    turn: FakeTurn,
    selected: Vec<Option<IceEvent>>,
}

impl World {
    fn new(
        configs: [IceConfig; 2],
        ifaces: [Vec<LocalInterface>; 2],
        nat: [Option<&str>; 2],
    ) -> World {
        let ids = [1_848_967_564u32, 714_086_808];
        let mut agents = Vec::new();
        for (i, c) in configs.into_iter().enumerate() {
            // The acceptor (agent 0 here) is controlling, as in GNS.
            agents.push(IceAgent::new(ms(0), i == 0, ids[i], 7 + i as u64, c, &ifaces[i]).unwrap());
        }
        for i in 0..2 {
            let pwd = agents[1 - i].local_password().to_string();
            agents[i].set_remote_connection_id(ids[1 - i]);
            agents[i].handle_remote_password(&pwd);
        }
        World {
            now: ms(0),
            agents,
            ifaces: ifaces.to_vec(),
            nat: nat.iter().map(|n| n.map(|s| s.parse().unwrap())).collect(),
            direct_blocked: false,
            loss: 0.0,
            rng: ChaCha8Rng::seed_from_u64(99),
            wire: VecDeque::new(),
            turn: FakeTurn::default(),
            selected: vec![None, None],
        }
    }

    fn public(&self, agent: usize, local: SocketAddr) -> SocketAddr {
        match self.nat[agent] {
            Some(ip) => SocketAddr::new(ip, local.port()),
            None => local,
        }
    }

    /// Which agent and socket an address reaches from outside.
    fn owner(&self, to: SocketAddr) -> Option<(usize, LocalSocket)> {
        for a in 0..2 {
            for i in &self.ifaces[a] {
                if self.public(a, i.addr) == to {
                    return Some((a, i.socket));
                }
            }
        }
        None
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        if self.loss > 0.0 && (self.rng.next_u32() as f64 / u32::MAX as f64) < self.loss {
            return;
        }
        self.wire.push_back((self.now + LATENCY, from, to, bytes));
    }

    fn flush_agent(&mut self, a: usize) {
        while let Some((sock, to, bytes)) = self.agents[a].poll_transmit(self.now) {
            let local = self.ifaces[a]
                .iter()
                .find(|i| i.socket == sock)
                .unwrap()
                .addr;
            let from = self.public(a, local);
            self.send(from, to, bytes);
        }
        while let Some(line) = self.agents[a].poll_local_candidate() {
            self.agents[1 - a].handle_remote_candidate(&line).unwrap();
        }
        while let Some(ev) = self.agents[a].poll_event() {
            self.selected[a] = Some(ev);
        }
    }

    fn deliver(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        if to == sa(STUN_SERVER) {
            let m = StunMessage::decode(&bytes).unwrap();
            assert!(
                !m.has_integrity(),
                "discovery requests carry no MESSAGE-INTEGRITY"
            );
            let mut w = StunWriter::new(msg::BINDING_SUCCESS, m.txid);
            w.xor_addr(attr::XOR_MAPPED_ADDRESS, from);
            self.send(to, from, w.finish_with_fingerprint());
            return;
        }
        if to == sa(TURN_SERVER) {
            self.turn_server(from, bytes);
            return;
        }
        if let Some(&(client, relayed)) = self.turn.allocs.iter().find(|(_, r)| *r == to) {
            if !self.turn.permissions.contains(&from.ip()) {
                return; // no permission yet: the server drops it
            }
            let mut w = StunWriter::new(msg::DATA_INDICATION, [5; 12]);
            w.xor_addr(attr::XOR_PEER_ADDRESS, from)
                .attr(attr::DATA, &bytes);
            let _ = relayed;
            self.send(sa(TURN_SERVER), client, w.finish());
            return;
        }
        let Some((a, sock)) = self.owner(to) else {
            return; // unroutable (a private address behind a NAT)
        };
        let from_agent = self.owner(from).is_some();
        if self.direct_blocked && from_agent {
            return;
        }
        if is_stun(&bytes) {
            let _ = self.agents[a].handle_stun(self.now, sock, from, &bytes);
        }
    }

    fn turn_server(&mut self, from: SocketAddr, bytes: Vec<u8>) {
        let m = StunMessage::decode(&bytes).unwrap();
        let reply = |typ: u16| StunWriter::new(typ, m.txid);
        if m.msg_type == msg::SEND_INDICATION {
            let peer = m.xor_addr(attr::XOR_PEER_ADDRESS).unwrap();
            let data = m.get(attr::DATA).unwrap().to_vec();
            let relayed = self.turn.allocs.iter().find(|(c, _)| *c == from).unwrap().1;
            if !self.turn.permissions.contains(&peer.ip()) {
                return;
            }
            self.send(relayed, peer, data);
            return;
        }
        let key = FakeTurn::key();
        if !m.has_integrity() {
            self.turn.challenges += 1;
            let mut w = reply(m.msg_type | msg::CLASS_ERROR);
            w.attr(attr::ERROR_CODE, &[0, 0, 4, 1])
                .attr(attr::REALM, TURN_REALM.as_bytes())
                .attr(attr::NONCE, b"nonce-1");
            self.send(sa(TURN_SERVER), from, w.finish_with_fingerprint());
            return;
        }
        m.verify_integrity(&key).unwrap();
        assert_eq!(m.get(attr::USERNAME), Some(TURN_USER.as_bytes()));
        let mut w = reply(m.msg_type | msg::CLASS_SUCCESS);
        match m.msg_type {
            msg::ALLOCATE_REQUEST => {
                let relayed =
                    SocketAddr::new(sa(TURN_SERVER).ip(), 50_000 + self.turn.allocs.len() as u16);
                self.turn.allocs.push((from, relayed));
                w.xor_addr(attr::XOR_RELAYED_ADDRESS, relayed)
                    .xor_addr(attr::XOR_MAPPED_ADDRESS, from)
                    .u32_attr(attr::LIFETIME, 600);
            }
            msg::CREATE_PERMISSION_REQUEST => {
                let mut off = 20;
                while off + 4 <= bytes.len() {
                    let t = u16::from_be_bytes([bytes[off], bytes[off + 1]]);
                    let l = u16::from_be_bytes([bytes[off + 2], bytes[off + 3]]) as usize;
                    if t == attr::XOR_PEER_ADDRESS {
                        let mut one = StunWriter::new(0x0101, m.txid);
                        one.attr(attr::XOR_PEER_ADDRESS, &bytes[off + 4..off + 4 + l]);
                        let b = one.finish();
                        let ip = StunMessage::decode(&b)
                            .unwrap()
                            .xor_addr(attr::XOR_PEER_ADDRESS)
                            .unwrap()
                            .ip();
                        self.turn.permissions.push(ip);
                    }
                    off += 4 + l.div_ceil(4) * 4;
                }
            }
            _ => {}
        }
        w.integrity(&key);
        self.send(sa(TURN_SERVER), from, w.finish_with_fingerprint());
    }

    /// Runs until both agents selected or `until`.
    fn run(&mut self, until: Timestamp) -> bool {
        loop {
            for a in 0..2 {
                self.flush_agent(a);
            }
            if self.selected.iter().all(Option::is_some) {
                return true;
            }
            let next_pkt = self.wire.iter().map(|p| p.0).min();
            let next_agent = self.agents.iter().filter_map(IceAgent::poll_timeout).min();
            let Some(next) = [next_pkt, next_agent].into_iter().flatten().min() else {
                return false;
            };
            if next > until {
                return false;
            }
            self.now = self.now.max(next);
            let due: Vec<_> = {
                let (due, rest): (Vec<_>, Vec<_>) =
                    self.wire.drain(..).partition(|p| p.0 <= self.now);
                self.wire = rest.into();
                due
            };
            for (_, from, to, bytes) in due {
                self.deliver(from, to, bytes);
            }
            for a in 0..2 {
                self.agents[a].handle_timeout(self.now);
            }
        }
    }

    fn assert_same_pair(&self) {
        let (l0, r0) = self.agents[0].selected().unwrap();
        let (l1, r1) = self.agents[1].selected().unwrap();
        let addr = |a: usize, s: LocalSocket| {
            self.public(
                a,
                self.ifaces[a].iter().find(|i| i.socket == s).unwrap().addr,
            )
        };
        assert_eq!(r0, addr(1, l1), "agent 0 sends where agent 1 listens");
        assert_eq!(r1, addr(0, l0), "agent 1 sends where agent 0 listens");
    }
}

fn iface(socket: LocalSocket, addr: &str, prefix_len: u8) -> LocalInterface {
    LocalInterface {
        socket,
        addr: sa(addr),
        prefix_len,
    }
}

#[test]
fn two_agents_select_the_same_pair() {
    let mut w = World::new(
        [all_config(), all_config()],
        [
            vec![
                iface(0, "192.0.2.1:40001", 24),
                iface(1, "[fd00::1]:40002", 64),
            ],
            vec![
                iface(0, "192.0.2.2:40003", 24),
                iface(1, "[fd00::2]:40004", 64),
            ],
        ],
        [None, None],
    );
    assert!(w.run(ms(5_000)));
    w.assert_same_pair();
    // Same-subnet first: the ULA pair wins over the (public-classified) IPv4 one, as in GNS.
    assert_eq!(w.agents[0].selected().unwrap().1, sa("[fd00::2]:40004"));
    let Some(IceEvent::Selected {
        relayed, rtt_ms, ..
    }) = &w.selected[0]
    else {
        panic!()
    };
    assert!(!relayed);
    assert!(*rtt_ms >= 20);
}

#[test]
fn agents_select_under_30pct_loss() {
    for seed in 0..8 {
        let mut w = World::new(
            [all_config(), all_config()],
            [
                vec![iface(0, "192.0.2.1:40001", 24)],
                vec![iface(0, "192.0.2.2:40003", 24)],
            ],
            [None, None],
        );
        w.loss = 0.3;
        w.rng = ChaCha8Rng::seed_from_u64(seed);
        assert!(w.run(ms(20_000)), "seed {seed}");
        w.assert_same_pair();
    }
}

#[test]
fn nated_agents_connect_through_srflx_candidates() {
    let cfg = || IceConfig {
        stun_servers: vec![sa(STUN_SERVER)],
        ..all_config()
    };
    let mut w = World::new(
        [cfg(), cfg()],
        [
            vec![iface(0, "10.0.0.1:40001", 24)],
            vec![iface(0, "192.168.1.1:40003", 24)],
        ],
        [Some("203.0.113.1"), Some("198.51.100.1")],
    );
    assert!(w.run(ms(10_000)));
    w.assert_same_pair();
    assert_eq!(w.agents[0].selected().unwrap().1, sa("198.51.100.1:40003"));
}

#[test]
fn relayed_agents_connect_through_turn_after_401() {
    let turn = IceConfig {
        enable_mask: CandidateTypes::ENABLE_RELAY,
        stun_servers: vec![],
        turn_servers: vec![TurnServer {
            addr: sa(TURN_SERVER),
            user: TURN_USER.into(),
            pass: TURN_PASS.into(),
        }],
    };
    let mut w = World::new(
        [all_config(), turn],
        [
            vec![iface(0, "192.0.2.1:40001", 24)],
            vec![iface(0, "192.0.2.2:40003", 24)],
        ],
        [None, None],
    );
    w.direct_blocked = true;
    assert!(w.run(ms(10_000)));
    assert_eq!(w.turn.challenges, 1);
    assert_eq!(w.turn.allocs.len(), 1);
    let relayed = w.turn.allocs[0].1;
    assert_eq!(w.agents[0].selected().unwrap().1, relayed);
    assert_eq!(w.agents[1].selected().unwrap(), (0, sa("192.0.2.1:40001")));
    let Some(IceEvent::Selected { relayed: r1, .. }) = &w.selected[1] else {
        panic!()
    };
    assert!(*r1);

    // Data path: the relayed side wraps payloads in Send indications to the server.
    let mut out = Vec::new();
    let (sock, to) = w.agents[1].encapsulate(b"hello", &mut out).unwrap();
    assert_eq!((sock, to), (0, sa(TURN_SERVER)));
    let m = StunMessage::decode(&out).unwrap();
    assert_eq!(m.msg_type, msg::SEND_INDICATION);
    assert_eq!(m.txid, [0; 12]);
    assert_eq!(m.get(attr::DATA), Some(&b"hello"[..]));
    // ...and unwraps Data indications from it.
    let mut di = StunWriter::new(msg::DATA_INDICATION, [1; 12]);
    di.xor_addr(attr::XOR_PEER_ADDRESS, sa("192.0.2.1:40001"))
        .attr(attr::DATA, &[0x81, 1, 2]);
    let di = di.finish();
    let got = w.agents[1].decapsulate(0, sa(TURN_SERVER), &di).unwrap();
    assert_eq!(got, (sa("192.0.2.1:40001"), &[0x81u8, 1, 2][..]));
    assert!(w.agents[1].decapsulate(0, sa("192.0.2.9:1"), &di).is_none());
    // The direct side sends as is.
    let (_, to) = w.agents[0].encapsulate(b"x", &mut out).unwrap();
    assert_eq!((to, out.as_slice()), (relayed, &b"x"[..]));
}

#[test]
fn checks_follow_gns_schedule_and_fail_at_5_3s() {
    let mut a = IceAgent::new(
        ms(0),
        true,
        1,
        1,
        all_config(),
        &[iface(0, "192.0.2.1:40001", 24)],
    )
    .unwrap();
    a.set_remote_connection_id(2);
    a.handle_remote_password("ABCDE");
    a.handle_remote_candidate("candidate:1 0 udp 2130706431 192.0.2.9 5000 typ host")
        .unwrap();
    let mut sends = Vec::new();
    let mut now = ms(0);
    while let Some(t) = a.poll_timeout() {
        now = now.max(t);
        if now > ms(20_000) {
            break;
        }
        a.handle_timeout(now);
        while let Some((_, to, _)) = a.poll_transmit(now) {
            assert_eq!(to, sa("192.0.2.9:5000"));
            sends.push(now.as_micros() / 1000);
        }
    }
    let t0 = sends[0];
    let rel: Vec<u64> = sends.iter().map(|s| s - t0).collect();
    assert_eq!(rel, vec![0, 400, 1000, 1900, 3250]);
    assert!(
        a.poll_timeout().is_none(),
        "the failed pair leaves nothing to do after ≈5.3 s"
    );
    assert!(now.as_micros() / 1000 - t0 >= 5275);
}

#[test]
fn controlled_answers_before_knowing_the_remote_ufrag() {
    let ifa = [iface(0, "192.0.2.1:40001", 24)];
    let ifb = [iface(0, "192.0.2.2:40003", 24)];
    let mut a = IceAgent::new(ms(0), true, 1_848_967_564, 1, all_config(), &ifa).unwrap();
    let mut b = IceAgent::new(ms(0), false, 714_086_808, 2, all_config(), &ifb).unwrap();
    a.set_remote_connection_id(714_086_808);
    a.handle_remote_password(b.local_password());
    a.handle_remote_candidate(&b.poll_local_candidate().unwrap())
        .unwrap();
    a.handle_timeout(ms(0));
    let (_, to, req) = a.poll_transmit(ms(0)).unwrap();
    assert_eq!(to, sa("192.0.2.2:40003"));
    assert_eq!(username_local_ufrag(&req), Some(*b"qkBmY"));
    // B knows neither A's ufrag nor its password yet.
    b.handle_stun(ms(10), 0, sa("192.0.2.1:40001"), &req)
        .unwrap();
    let (_, to, resp) = b.poll_transmit(ms(10)).unwrap();
    assert_eq!(to, sa("192.0.2.1:40001"));
    let m = StunMessage::decode(&resp).unwrap();
    assert_eq!(m.msg_type, msg::BINDING_SUCCESS);
    assert_eq!(m.get(attr::USERNAME), Some(&b"qkBmY:uNQGM"[..]));
    assert_eq!(
        m.xor_addr(attr::XOR_MAPPED_ADDRESS),
        Some(sa("192.0.2.1:40001"))
    );
    m.verify_integrity(b.local_password().as_bytes()).unwrap();
    a.handle_stun(ms(20), 0, sa("192.0.2.2:40003"), &resp)
        .unwrap();
    // A nominates at once with a USE-CANDIDATE re-check.
    a.handle_timeout(ms(50));
    let (_, _, nom) = a.poll_transmit(ms(50)).unwrap();
    assert!(StunMessage::decode(&nom).unwrap().has(attr::USE_CANDIDATE));
}

#[test]
fn wrong_integrity_and_unknown_responses_are_dropped() {
    let mut b = IceAgent::new(
        ms(0),
        false,
        714_086_808,
        2,
        all_config(),
        &[iface(0, "192.0.2.2:40003", 24)],
    )
    .unwrap();
    b.set_remote_connection_id(1_848_967_564);
    let bad = stun::encode_binding_request(
        [9; 12],
        &stun::BindingRequest {
            username: b"qkBmY:uNQGM",
            priority: 1,
            controlling: true,
            tiebreaker: 0,
            use_candidate: false,
            key: b"WRONG",
        },
    );
    assert_eq!(
        b.handle_stun(ms(0), 0, sa("192.0.2.1:1"), &bad),
        Err(StunError::BadIntegrity)
    );
    let wrong_user = stun::encode_binding_request(
        [9; 12],
        &stun::BindingRequest {
            username: b"AAAAA:uNQGM",
            priority: 1,
            controlling: true,
            tiebreaker: 0,
            use_candidate: false,
            key: b.local_password().as_bytes(),
        },
    );
    let pwd = b.local_password().to_string();
    let _ = pwd;
    assert_eq!(
        b.handle_stun(ms(0), 0, sa("192.0.2.1:1"), &wrong_user),
        Err(StunError::WrongUsername)
    );
    let stray = stun::encode_binding_success([4; 12], sa("192.0.2.1:1"), None, b"x");
    assert_eq!(
        b.handle_stun(ms(0), 0, sa("192.0.2.1:1"), &stray),
        Err(StunError::Unexpected)
    );
    assert_eq!(
        b.handle_stun(ms(0), 0, sa("192.0.2.1:1"), &[0x81; 30]),
        Err(StunError::NotStun)
    );
    assert!(b.poll_transmit(ms(0)).is_none());
    assert_eq!(b.dropped(), 4);
}

#[test]
fn srflx_candidate_from_a_stun_server_answer() {
    let cfg = IceConfig {
        stun_servers: vec![sa(STUN_SERVER)],
        ..all_config()
    };
    let mut a = IceAgent::new(ms(0), true, 1, 3, cfg, &[iface(0, "10.0.0.1:40001", 24)]).unwrap();
    let host = a.poll_local_candidate().unwrap();
    assert!(host.ends_with("10.0.0.1 40001 typ host"), "{host}");
    let (sock, to, req) = a.poll_transmit(ms(0)).unwrap();
    assert_eq!((sock, to), (0, sa(STUN_SERVER)));
    let m = StunMessage::decode(&req).unwrap();
    assert_eq!(
        m.addr(attr::MAPPED_ADDRESS),
        None,
        "no GNS quirk: coturn refuses it"
    );
    assert!(!m.has_integrity());
    let mut w = StunWriter::new(msg::BINDING_SUCCESS, m.txid);
    w.xor_addr(attr::XOR_MAPPED_ADDRESS, sa("203.0.113.7:61000"));
    a.handle_stun(ms(30), 0, sa(STUN_SERVER), &w.finish_with_fingerprint())
        .unwrap();
    let line = a.poll_local_candidate().unwrap();
    let c = Candidate::parse(&line).unwrap();
    assert_eq!(c.kind, CandidateKind::Srflx);
    assert_eq!(c.addr, sa("203.0.113.7:61000"));
    assert_eq!(c.priority, (100 << 24) + (65535 << 8) + 255);
    // Keepalive 15 s later.
    let t = a.poll_timeout().unwrap();
    assert_eq!(t, ms(15_000));
    a.handle_timeout(t);
    let (_, to, _) = a.poll_transmit(t).unwrap();
    assert_eq!(to, sa(STUN_SERVER));
}

/// Found by the `stun` fuzz target: a STUN server answering with XOR-MAPPED-ADDRESS 0.0.0.0
/// made the agent advertise `srflx 0.0.0.0`, a candidate line every parser (ours included)
/// refuses. Unusable mapped addresses now count as no answer.
#[test]
fn unusable_mapped_or_relayed_addresses_are_not_advertised() {
    for mapped in ["0.0.0.0:5140", "127.0.0.1:5140", "255.255.255.255:1"] {
        let cfg = IceConfig {
            stun_servers: vec![sa(STUN_SERVER)],
            ..all_config()
        };
        let mut a =
            IceAgent::new(ms(0), true, 1, 3, cfg, &[iface(0, "10.0.0.1:40001", 24)]).unwrap();
        a.poll_local_candidate().unwrap();
        let (_, _, req) = a.poll_transmit(ms(0)).unwrap();
        let m = StunMessage::decode(&req).unwrap();
        let mut w = StunWriter::new(msg::BINDING_SUCCESS, m.txid);
        w.xor_addr(attr::XOR_MAPPED_ADDRESS, sa(mapped));
        a.handle_stun(ms(30), 0, sa(STUN_SERVER), &w.finish_with_fingerprint())
            .unwrap();
        assert_eq!(a.poll_local_candidate(), None, "advertised {mapped}");
    }
    // The same for a TURN allocation answered with an unusable relayed address.
    let cfg = IceConfig {
        turn_servers: vec![TurnServer {
            addr: sa(TURN_SERVER),
            user: TURN_USER.to_owned(),
            pass: TURN_PASS.to_owned(),
        }],
        ..all_config()
    };
    let mut a = IceAgent::new(ms(0), true, 1, 3, cfg, &[iface(0, "10.0.0.1:40001", 24)]).unwrap();
    a.poll_local_candidate().unwrap();
    let (_, to, req) = a.poll_transmit(ms(0)).unwrap();
    assert_eq!(to, sa(TURN_SERVER));
    let m = StunMessage::decode(&req).unwrap();
    let mut w = StunWriter::new(msg::ALLOCATE_REQUEST | msg::CLASS_SUCCESS, m.txid);
    w.xor_addr(attr::XOR_RELAYED_ADDRESS, sa("0.0.0.0:49152"))
        .xor_addr(attr::XOR_MAPPED_ADDRESS, sa("203.0.113.7:61000"));
    a.handle_stun(ms(30), 0, sa(TURN_SERVER), &w.finish_with_fingerprint())
        .unwrap();
    assert_eq!(
        a.poll_local_candidate(),
        None,
        "advertised a relay at 0.0.0.0"
    );
}

#[test]
fn creation_fails_like_gns_when_nothing_is_allowed() {
    let ifs = [iface(0, "192.0.2.1:1", 24)];
    let off = IceConfig {
        enable_mask: 0,
        ..all_config()
    };
    assert_eq!(
        IceAgent::new(ms(0), true, 1, 1, off, &ifs).unwrap_err(),
        IceError::NotEnabled
    );
    let relay_only = IceConfig {
        enable_mask: 1,
        ..all_config()
    };
    let e = IceAgent::new(ms(0), true, 1, 1, relay_only, &ifs).unwrap_err();
    assert_eq!(e, IceError::NoAllowedTypes);
    assert_eq!(e.close_code(), 3998);
    // Loopback and link-local are never candidates; private-only advertises nothing public.
    let priv_only = IceConfig {
        enable_mask: 2,
        ..all_config()
    };
    let mut a = IceAgent::new(
        ms(0),
        true,
        1,
        1,
        priv_only,
        &[
            iface(0, "127.0.0.1:1", 8),
            iface(1, "192.0.2.1:2", 24),
            iface(2, "10.1.1.1:3", 8),
        ],
    )
    .unwrap();
    let line = a.poll_local_candidate().unwrap();
    assert!(line.contains("10.1.1.1 3 typ host"), "{line}");
    assert!(a.poll_local_candidate().is_none());
}
