//! Fuzz entry point (feature `fuzzing`) for the wire decoder and the service's datagram
//! handler, driven by the `rendezvous_service` target in `fuzz/`.
//!
//! The input is a sequence of records `ctl u8, len u16 LE, datagram` (a short last record
//! takes what is left). The first byte of the input picks the service: bit 0, one that
//! requires a certificate from a fixed CA; bit 1, one that persists FakeIPs (the harness
//! "saves" after every record, reloading the snapshot's text, and sends the grants that
//! waited for it). `ctl` picks the source address (bits 0-1), whether to patch
//! the datagram with what the service issued to that address (bit 2: the cookie of its last
//! Challenge into a Register, the session of its last RegisterOk into a Refresh, Signal or
//! Unregister; bit 3: re-sign a Register with the fixed client's key), and how far the clock
//! moves first (bits 4-7, up to past the TTL; the largest step also sweeps).
//!
//! Checks: every datagram that decodes re-encodes to a datagram, no longer, that decodes the
//! same; every reply decodes; a reply to a sender that held no registration is never larger
//! than its request; a Deliver goes only to a registered address; the registry stays within
//! `max_peers` and the FakeIP table within `max_fakeips`; every FakeIP granted is a global one
//! with ports above 1024, and goes to a registered address; every state snapshot loads back;
//! nothing panics.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use sockworks_engine::crypto::TrustedCa;
use sockworks_engine::crypto::ca::{self, CaKey, CertParams};
use sockworks_engine::crypto::keys::IdentityKey;
use sockworks_engine::wire::fakeip::{FakeIpType, fake_ip_type};
use sockworks_engine::wire::identity::Identity;

use crate::auth::{ClientAuth, Verifier};
use crate::fakeip::FakeIpTable;
use crate::server::{Service, ServiceConfig};
use crate::wire::{FakeIpPorts, HEADER_LEN, Message};

/// Wall clock the service sees (certificates are valid around it).
pub const UNIX_NOW: u64 = 1_800_000_000;
/// The identity the fixed client's certificate names.
pub const CERT_IDENTITY: &str = "str:alice";
/// Registrations the fuzzed service holds at most (small, so `Full` is reachable).
pub const MAX_PEERS: usize = 3;
/// FakeIP allocations the fuzzed service holds at most (small, so `Full` is reachable).
pub const MAX_FAKEIPS: usize = 2;

/// The four source addresses a record can pick.
pub fn source(i: u8) -> SocketAddr {
    match i & 3 {
        0 => SocketAddr::from(([192, 0, 2, 1], 5000)),
        1 => SocketAddr::from(([192, 0, 2, 1], 5001)),
        2 => SocketAddr::from(([198, 51, 100, 7], 27015)),
        _ => "[2001:db8::5]:6000"
            .parse()
            .unwrap_or(SocketAddr::from(([0; 4], 0))),
    }
}

/// Clock steps (ms) selected by a record's high nibble: up to past the 30 s TTL.
const STEPS_MS: [u64; 16] = [
    0, 1, 10, 100, 250, 500, 1_000, 2_000, 3_000, 4_000, 5_000, 9_000, 15_000, 29_000, 31_000,
    61_000,
];

/// The fixed CA and a client it certified for [`CERT_IDENTITY`].
pub fn fixed_auth() -> &'static (TrustedCa, ClientAuth) {
    static AUTH: OnceLock<(TrustedCa, ClientAuth)> = OnceLock::new();
    AUTH.get_or_init(|| {
        let ca_key = CaKey::from_seed([1; 32]);
        let key = IdentityKey::from_seed([5; 32]);
        let cert = ca::issue(
            &ca_key,
            &CertParams {
                identity: Identity::parse(CERT_IDENTITY).ok(),
                public_key: key.public_bytes(),
                app_ids: vec![0],
                pop_ids: vec![],
                time_created: (UNIX_NOW - 1) as u32,
                time_expiry: (UNIX_NOW + 1_000_000) as u32,
            },
        )
        .ok()
        .unwrap_or_default();
        (
            TrustedCa::new(ca_key.public_key()),
            ClientAuth::new(&cert, key),
        )
    })
}

/// The service the input's first byte picks.
pub fn service(auth: bool) -> Service {
    service_with(auth, false)
}

/// [`service`], persisting FakeIPs if `persist`.
pub fn service_with(auth: bool, persist: bool) -> Service {
    let mut config = ServiceConfig::new([9; 32]);
    config.max_peers = MAX_PEERS;
    config.max_fakeips = MAX_FAKEIPS;
    config.persist_fakeips = persist;
    config.rate = 2.0;
    config.burst = 3.0;
    if auth {
        config.verifier = Some(Verifier::new(vec![fixed_auth().0.clone()]));
    }
    Service::new(config)
}

/// One record as the harness reads it.
fn record(ctl: u8, datagram: &[u8]) -> Vec<u8> {
    let mut out = vec![ctl];
    out.extend_from_slice(
        &u16::try_from(datagram.len())
            .unwrap_or(u16::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(datagram);
    out
}

/// Encodes records for seeds and tests.
pub fn records(auth: bool, recs: &[(u8, Message<'_>)]) -> Vec<u8> {
    records_mode(u8::from(auth), recs)
}

/// [`records`] with the whole mode byte (bit 1: persist FakeIPs).
pub fn records_mode(mode: u8, recs: &[(u8, Message<'_>)]) -> Vec<u8> {
    let mut out = vec![mode];
    let mut buf = Vec::new();
    for (ctl, m) in recs {
        if m.encode(&mut buf).is_ok() {
            out.extend_from_slice(&record(*ctl, &buf));
        }
    }
    out
}

/// The entry point (see the module documentation).
pub fn service_bytes(data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let persist = mode & 2 == 2;
    let mut svc = service_with(mode & 1 == 1, persist);
    let mut now = Duration::from_secs(100);
    let mut cookies = [None::<u64>; 4];
    let mut sessions = [None::<u64>; 4];
    let mut out = Vec::new();
    let mut patched = Vec::new();
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = match tail {
            [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
            _ => tail.len(),
        };
        let body = tail.get(2..).unwrap_or_default();
        let (datagram, next) = body.split_at(len.min(body.len()));
        rest = next;

        let step = usize::from(ctl >> 4);
        now += Duration::from_millis(STEPS_MS[step]);
        if step == 15 {
            svc.sweep(now);
        }
        let who = usize::from(ctl & 3);
        let from = source(ctl);
        let datagram = if ctl & 0x0c != 0 {
            patch(datagram, ctl, cookies[who], sessions[who], &mut patched);
            &patched[..]
        } else {
            datagram
        };
        check_codec(datagram);

        let registered = svc.is_registered(now, from);
        out.clear();
        let to = svc.handle_datagram(now, UNIX_NOW, from, datagram, &mut out);
        assert!(svc.peers() <= MAX_PEERS, "registry over max_peers");
        let Some(to) = to else {
            continue;
        };
        let reply = Message::decode(&out).expect("the service's reply decodes");
        if to == from && !registered {
            assert!(
                out.len() <= datagram.len(),
                "{} byte reply to an unregistered sender's {} bytes: {reply:?}",
                out.len(),
                datagram.len()
            );
        }
        match reply {
            Message::Challenge { cookie, .. } if to == from => cookies[who] = Some(cookie),
            Message::RegisterOk { session, .. } if to == from => {
                sessions[who] = Some(session);
                assert!(svc.is_registered(now, from));
            }
            Message::FakeIpGranted { ip, ports } => check_grant(&svc, now, to, ip, &ports),
            Message::Deliver { .. } => {
                assert!(
                    svc.is_registered(now, to),
                    "Deliver to an unregistered address"
                );
                assert!(registered, "relayed a signal from an unregistered sender");
            }
            _ => {}
        }
        if persist {
            save(&mut svc, now, &mut out);
        }
    }
}

/// What a saving caller does: the snapshot must load back; then the waiting grants go out.
fn save(svc: &mut Service, now: Duration, out: &mut Vec<u8>) {
    let Some((generation, text)) = svc.fake_ip_snapshot() else {
        return;
    };
    let loaded = FakeIpTable::from_text(&text, MAX_FAKEIPS, [0; 32]).expect("snapshot loads");
    assert_eq!(loaded.len(), svc.fake_ips().len());
    svc.fake_ips_saved(generation);
    while let Some(to) = svc.poll_grant(now, out) {
        match Message::decode(out) {
            Ok(Message::FakeIpGranted { ip, ports }) => check_grant(svc, now, to, ip, &ports),
            other => panic!("poll_grant wrote {other:?}"),
        }
    }
}

fn check_grant(svc: &Service, now: Duration, to: SocketAddr, ip: Ipv4Addr, ports: &FakeIpPorts) {
    assert!(svc.is_registered(now, to), "FakeIP granted to a stranger");
    assert_eq!(fake_ip_type(ip), FakeIpType::GlobalIpv4, "{ip}");
    assert!(!ports.as_slice().is_empty() && ports.as_slice().iter().all(|&p| p > 1024));
    assert!(
        svc.fake_ips().len() <= MAX_FAKEIPS,
        "FakeIP table over max_fakeips"
    );
}

/// Decoded datagrams re-encode, no longer, to a datagram that decodes the same.
fn check_codec(datagram: &[u8]) {
    let Ok(m) = Message::decode(datagram) else {
        return;
    };
    let mut again = Vec::new();
    m.encode(&mut again)
        .expect("a decoded message is within the limits");
    assert!(again.len() <= datagram.len());
    assert_eq!(Message::decode(&again), Ok(m));
    // Only padding, the reserved bytes and the flag byte are not kept as sent.
    if !matches!(
        m,
        Message::Hello
            | Message::Refresh { .. }
            | Message::Challenge { .. }
            | Message::FakeIpRequest { .. }
    ) {
        assert_eq!(again, datagram);
    }
}

/// Copies `datagram` into `out`, with the issued cookie or session put in its first field
/// and, for a Register with bit 3, a valid signature by the fixed client.
fn patch(datagram: &[u8], ctl: u8, cookie: Option<u64>, session: Option<u64>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(datagram);
    let Some(&ty) = datagram.get(3) else {
        return;
    };
    let value = if ty == 3 { cookie } else { session };
    if let (Some(v), Some(field)) = (value, out.get_mut(HEADER_LEN..HEADER_LEN + 8))
        && ctl & 0x04 != 0
    {
        field.copy_from_slice(&v.to_le_bytes());
    }
    if ctl & 0x08 == 0 || ty != 3 {
        return;
    }
    let copy = out.clone();
    if let Ok(Message::Register {
        cookie,
        identity,
        cert,
        ..
    }) = Message::decode(&copy)
    {
        let auth = &fixed_auth().1;
        let cert = if cert.is_empty() {
            auth.cert_bytes()
        } else {
            cert
        };
        let signature = auth.sign(cookie, identity);
        let _ = Message::Register {
            cookie,
            identity,
            cert,
            signature: &signature,
        }
        .encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds, as `rendezvous_service` inputs: registrations (with and without a CA),
    /// signals between them, refreshes, expiry and unregistering.
    pub(super) fn seeds() -> Vec<Vec<u8>> {
        let reg = |identity| Message::Register {
            cookie: 0,
            identity,
            cert: b"",
            signature: b"",
        };
        let fake_ip = |num_ports| Message::FakeIpRequest {
            session: 0,
            num_ports,
        };
        let signal = |to| Message::Signal {
            session: 0,
            to,
            payload: b"\x0a\x04p2p!",
        };
        vec![
            records(false, &[(0, Message::Hello)]),
            records(
                false,
                &[
                    (0, Message::Hello),
                    (0x14, reg("str:alice")),
                    (1, Message::Hello),
                    (0x15, reg("str:bob")),
                    (0x24, signal("str:bob")),
                    (0x25, signal("str:alice")),
                    (0x24, signal("str:nobody")),
                    (0x64, Message::Refresh { session: 0 }),
                    (0x05, Message::Unregister { session: 0 }),
                    (0x01, signal("str:alice")),
                ],
            ),
            records(
                true,
                &[
                    (0, Message::Hello),
                    (0x1c, reg(CERT_IDENTITY)),
                    (0x14, reg("str:mallory")),
                    (0x24, signal(CERT_IDENTITY)),
                ],
            ),
            records(
                false,
                &[
                    (2, Message::Hello),
                    (0x16, reg("ip:192.0.2.1:5000")),
                    (0xe6, Message::Refresh { session: 0 }),
                    (
                        0xf2,
                        Message::Signal {
                            session: 0,
                            to: "str:x",
                            payload: b"",
                        },
                    ),
                    (3, Message::UnknownSender),
                ],
            ),
            // FakeIPs, persisted: both peers ask, a third is refused (cap 2), signals go to
            // a FakeIP (unknown here: the seed cannot know the address drawn).
            records_mode(
                2,
                &[
                    (0, Message::Hello),
                    (0x14, reg("str:alice")),
                    (1, Message::Hello),
                    (0x15, reg("str:bob")),
                    (2, Message::Hello),
                    (0x16, reg("str:carol")),
                    (0x24, fake_ip(2)),
                    (0x25, fake_ip(4)),
                    (0x26, fake_ip(1)),
                    (0x24, fake_ip(0)),
                    (0x25, signal("ip:169.254.1.1:2000")),
                    (0x34, fake_ip(5)),
                ],
            ),
        ]
    }

    #[test]
    fn seeds_and_edge_inputs_run() {
        for s in seeds() {
            service_bytes(&s);
        }
        for edge in [
            &b""[..],
            b"\x01",
            b"\x00\x04\xff\xff",
            b"\x01\x0c\x03\x00SR\x01",
        ] {
            service_bytes(edge);
        }
    }

    /// The harness reaches registration, relaying and the CA path: a patched cookie registers,
    /// a re-signed Register passes the certificate checks.
    #[test]
    fn patching_reaches_registered_state() {
        let mut svc = service(true);
        let now = Duration::from_secs(100);
        let from = source(0);
        let mut out = Vec::new();
        let mut hello = Vec::new();
        Message::Hello.encode(&mut hello).unwrap();
        svc.handle_datagram(now, UNIX_NOW, from, &hello, &mut out);
        let Ok(Message::Challenge { cookie, .. }) = Message::decode(&out) else {
            panic!("no challenge");
        };
        let mut reg = Vec::new();
        Message::Register {
            cookie: 0,
            identity: CERT_IDENTITY,
            cert: b"",
            signature: b"",
        }
        .encode(&mut reg)
        .unwrap();
        let mut patched = Vec::new();
        patch(&reg, 0x0c, Some(cookie), None, &mut patched);
        svc.handle_datagram(now, UNIX_NOW, from, &patched, &mut out);
        assert!(matches!(
            Message::decode(&out),
            Ok(Message::RegisterOk { .. })
        ));
        assert!(svc.is_registered(now, from));
    }

    /// The persisted-FakeIP mode reaches grants: a patched request from a registered peer is
    /// held until the harness saves, then granted.
    #[test]
    fn the_fake_ip_path_is_reachable() {
        let mut svc = service_with(false, true);
        let now = Duration::from_secs(100);
        let from = source(0);
        let mut out = Vec::new();
        let mut dgram = Vec::new();
        Message::Hello.encode(&mut dgram).unwrap();
        svc.handle_datagram(now, UNIX_NOW, from, &dgram, &mut out);
        let Ok(Message::Challenge { cookie, .. }) = Message::decode(&out) else {
            panic!("no challenge");
        };
        let mut patched = Vec::new();
        Message::Register {
            cookie: 0,
            identity: "str:alice",
            cert: b"",
            signature: b"",
        }
        .encode(&mut dgram)
        .unwrap();
        patch(&dgram, 0x04, Some(cookie), None, &mut patched);
        svc.handle_datagram(now, UNIX_NOW, from, &patched, &mut out);
        let Ok(Message::RegisterOk { session, .. }) = Message::decode(&out) else {
            panic!("not registered");
        };
        Message::FakeIpRequest {
            session: 0,
            num_ports: 2,
        }
        .encode(&mut dgram)
        .unwrap();
        patch(&dgram, 0x04, None, Some(session), &mut patched);
        assert_eq!(
            svc.handle_datagram(now, UNIX_NOW, from, &patched, &mut out),
            None
        );
        let before = svc.stats().fakeip_granted;
        save(&mut svc, now, &mut out);
        assert_eq!(svc.stats().fakeip_granted, before + 1);
    }

    /// With `SOCKWORKS_FUZZ_SEEDS=<corpus dir>`, writes the seeds to
    /// `<dir>/rendezvous_service/<sha1>` (as libFuzzer names corpus files).
    #[test]
    fn write_seed_corpus() {
        let Some(dir) = std::env::var_os("SOCKWORKS_FUZZ_SEEDS") else {
            return;
        };
        let dir = std::path::Path::new(&dir).join("rendezvous_service");
        std::fs::create_dir_all(&dir).unwrap();
        for s in seeds() {
            let name: String = sha1_hex(&s);
            std::fs::write(dir.join(name), &s).unwrap();
        }
    }

    fn sha1_hex(data: &[u8]) -> String {
        use sha1::{Digest, Sha1};
        Sha1::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
