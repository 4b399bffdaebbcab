use super::*;
use crate::auth::ClientAuth;
use sockworks_engine::crypto::TrustedCa;
use sockworks_engine::crypto::ca::{self, CaKey, CertParams};
use sockworks_engine::crypto::keys::IdentityKey;

pub(super) const UNIX: u64 = 1_800_000_000;

pub(super) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(super) struct Harness {
    pub(super) svc: Service,
    out: Vec<u8>,
}

impl Harness {
    pub(super) fn new(config: ServiceConfig) -> Self {
        Self {
            svc: Service::new(config),
            out: Vec::new(),
        }
    }

    /// Sends `msg` from `from`; returns the reply's destination and its decoded bytes.
    pub(super) fn send(
        &mut self,
        now: Duration,
        from: SocketAddr,
        msg: Message<'_>,
    ) -> Option<(SocketAddr, Vec<u8>)> {
        let mut dgram = Vec::new();
        msg.encode(&mut dgram).unwrap();
        let to = self
            .svc
            .handle_datagram(now, UNIX, from, &dgram, &mut self.out)?;
        if to == from {
            assert!(
                self.out.len() <= dgram.len(),
                "reply to the sender larger than its request: {msg:?}"
            );
        }
        Some((to, self.out.clone()))
    }

    fn cookie(&mut self, now: Duration, from: SocketAddr) -> u64 {
        let (_, reply) = self.send(now, from, Message::Hello).unwrap();
        match Message::decode(&reply).unwrap() {
            Message::Challenge { cookie, .. } => cookie,
            other => panic!("{other:?}"),
        }
    }

    pub(super) fn register_with(
        &mut self,
        now: Duration,
        from: SocketAddr,
        identity: &str,
        auth: Option<&ClientAuth>,
    ) -> Message<'static> {
        let cookie = self.cookie(now, from);
        let sig = auth.map(|a| a.sign(cookie, identity));
        let reply = self
            .send(
                now,
                from,
                Message::Register {
                    cookie,
                    identity,
                    cert: auth.map_or(&[][..], |a| a.cert_bytes()),
                    signature: sig.as_ref().map_or(&[][..], |s| &s[..]),
                },
            )
            .unwrap()
            .1;
        match Message::decode(&reply).unwrap() {
            Message::RegisterOk {
                session,
                interval_secs,
                ttl_secs,
            } => Message::RegisterOk {
                session,
                interval_secs,
                ttl_secs,
            },
            Message::RegisterRefused { reason } => Message::RegisterRefused { reason },
            other => panic!("{other:?}"),
        }
    }

    pub(super) fn register(&mut self, now: Duration, from: SocketAddr, identity: &str) -> u64 {
        match self.register_with(now, from, identity, None) {
            Message::RegisterOk { session, .. } => session,
            other => panic!("{other:?}"),
        }
    }

    pub(super) fn signal(
        &mut self,
        now: Duration,
        from: SocketAddr,
        session: u64,
        to: &str,
    ) -> Option<(SocketAddr, Vec<u8>)> {
        self.send(
            now,
            from,
            Message::Signal {
                session,
                to,
                payload: b"offer",
            },
        )
    }
}

fn open() -> Harness {
    Harness::new(ServiceConfig::new([9; 32]))
}

#[test]
fn signals_are_relayed_with_the_registered_identity_as_sender() {
    let mut h = open();
    let a = h.register(secs(1), addr(1), "str:alice");
    h.register(secs(1), addr(2), "str:bob");
    let (to, bytes) = h.signal(secs(1), addr(1), a, "str:bob").unwrap();
    assert_eq!(to, addr(2));
    assert_eq!(
        Message::decode(&bytes).unwrap(),
        Message::Deliver {
            from: "str:alice",
            payload: b"offer"
        }
    );
    let (to, bytes) = h.signal(secs(1), addr(1), a, "str:carol").unwrap();
    assert_eq!(to, addr(1));
    assert_eq!(
        Message::decode(&bytes).unwrap(),
        Message::UnknownPeer { to: "str:carol" }
    );
    assert_eq!(h.svc.stats().relayed, 1);
    assert_eq!(h.svc.stats().unknown_peer, 1);
}

#[test]
fn signals_from_unregistered_addresses_or_with_a_wrong_session_get_unknown_sender() {
    let mut h = open();
    let a = h.register(secs(1), addr(1), "str:alice");
    h.register(secs(1), addr(2), "str:bob");
    for (from, session) in [(addr(3), a), (addr(1), a ^ 1)] {
        let (to, bytes) = h.signal(secs(1), from, session, "str:bob").unwrap();
        assert_eq!(to, from);
        assert_eq!(Message::decode(&bytes).unwrap(), Message::UnknownSender);
    }
    assert_eq!(h.svc.stats().relayed, 0);
}

#[test]
fn registration_needs_a_fresh_cookie_for_the_same_address() {
    let mut h = open();
    let cookie = h.cookie(secs(1), addr(1));
    for (now, from) in [(secs(1), addr(2)), (secs(10), addr(1))] {
        let (_, reply) = h
            .send(
                now,
                from,
                Message::Register {
                    cookie,
                    identity: "str:alice",
                    cert: b"",
                    signature: b"",
                },
            )
            .unwrap();
        assert!(matches!(
            Message::decode(&reply).unwrap(),
            Message::Challenge { .. }
        ));
    }
    assert_eq!(h.svc.peers(), 0);
    assert_eq!(h.svc.stats().bad_cookie, 2);
}

#[test]
fn the_cap_refuses_new_identities_but_not_renewals() {
    let mut config = ServiceConfig::new([9; 32]);
    config.max_peers = 2;
    let mut h = Harness::new(config);
    h.register(secs(1), addr(1), "str:a");
    h.register(secs(1), addr(2), "str:b");
    assert_eq!(
        h.register_with(secs(1), addr(3), "str:c", None),
        Message::RegisterRefused {
            reason: RefuseReason::Full
        }
    );
    h.register(secs(2), addr(1), "str:a");
    // An identity moving to a new address replaces its old entry.
    h.register(secs(2), addr(4), "str:b");
    assert_eq!(h.svc.peers(), 2);
    assert_eq!(h.svc.stats().refused_full, 1);
}

#[test]
fn unrefreshed_registrations_expire_and_refreshed_ones_stay() {
    let mut h = open();
    let a = h.register(secs(1), addr(1), "str:a");
    h.register(secs(1), addr(2), "str:b");
    let (_, ok) = h
        .send(secs(20), addr(1), Message::Refresh { session: a })
        .unwrap();
    assert!(matches!(
        Message::decode(&ok).unwrap(),
        Message::RegisterOk { session, .. } if session == a
    ));
    assert_eq!(h.svc.sweep(secs(32)), 1);
    assert_eq!(h.svc.peers(), 1);
    let (_, bytes) = h.signal(secs(32), addr(1), a, "str:b").unwrap();
    assert!(matches!(
        Message::decode(&bytes).unwrap(),
        Message::UnknownPeer { .. }
    ));
    // Past its TTL, even before a sweep, the entry no longer counts.
    let (_, bytes) = h
        .send(secs(60), addr(1), Message::Refresh { session: a })
        .unwrap();
    assert_eq!(Message::decode(&bytes).unwrap(), Message::UnknownSender);
}

#[test]
fn the_token_bucket_limits_each_peer() {
    let mut config = ServiceConfig::new([9; 32]);
    config.rate = 2.0;
    config.burst = 3.0;
    let mut h = Harness::new(config);
    let a = h.register(secs(1), addr(1), "str:a");
    h.register(secs(1), addr(2), "str:b");
    let relayed = (0..10)
        .filter(|_| h.signal(secs(1), addr(1), a, "str:b").is_some())
        .count();
    assert_eq!(relayed, 3);
    assert!(h.signal(secs(2), addr(1), a, "str:b").is_some());
    assert_eq!(h.svc.stats().rate_limited, 7);
}

#[test]
fn unregister_removes_the_entry() {
    let mut h = open();
    let a = h.register(secs(1), addr(1), "str:a");
    assert!(
        h.send(secs(1), addr(1), Message::Unregister { session: a ^ 1 })
            .is_none()
    );
    assert_eq!(h.svc.peers(), 1);
    assert!(
        h.send(secs(1), addr(1), Message::Unregister { session: a })
            .is_none()
    );
    assert_eq!(h.svc.peers(), 0);
}

#[test]
fn identities_are_matched_in_canonical_form_and_bad_ones_refused() {
    let mut h = open();
    h.register(secs(1), addr(1), "ip:127.0.0.1:0");
    let b = h.register(secs(1), addr(2), "str:b");
    let (to, _) = h.signal(secs(1), addr(2), b, "ip:127.0.0.1").unwrap();
    assert_eq!(to, addr(1));
    assert_eq!(
        h.register_with(secs(1), addr(3), "no prefix", None),
        Message::RegisterRefused {
            reason: RefuseReason::BadIdentity
        }
    );
}

#[test]
fn garbage_and_service_only_messages_are_counted_and_dropped() {
    let mut h = open();
    let mut out = Vec::new();
    for junk in [
        &b""[..],
        b"SR",
        b"XX\x01\x01",
        b"SR\x01\x63",
        b"SR\x01\x07\x00",
    ] {
        assert!(
            h.svc
                .handle_datagram(secs(1), UNIX, addr(1), junk, &mut out)
                .is_none()
        );
    }
    assert!(h.send(secs(1), addr(1), Message::UnknownSender).is_none());
    let s = h.svc.stats();
    assert_eq!((s.malformed, s.unexpected), (5, 1));
}

#[test]
fn with_a_ca_only_a_matching_certificate_and_signature_register() {
    let ca = CaKey::from_seed([1; 32]);
    let key = IdentityKey::from_seed([5; 32]);
    let cert = ca::issue(
        &ca,
        &CertParams {
            identity: Some(Identity::parse("str:alice").unwrap()),
            public_key: key.public_bytes(),
            app_ids: vec![0],
            pop_ids: vec![],
            time_created: (UNIX - 1) as u32,
            time_expiry: (UNIX + 100) as u32,
        },
    )
    .unwrap();
    let auth = ClientAuth::new(&cert, key);
    let mut config = ServiceConfig::new([9; 32]);
    config.verifier = Some(Verifier::new(vec![TrustedCa::new(ca.public_key())]));
    let mut h = Harness::new(config);
    assert_eq!(
        h.register_with(secs(1), addr(1), "str:alice", None),
        Message::RegisterRefused {
            reason: RefuseReason::CertRequired
        }
    );
    assert_eq!(
        h.register_with(secs(1), addr(1), "str:mallory", Some(&auth)),
        Message::RegisterRefused {
            reason: RefuseReason::IdentityMismatch
        }
    );
    assert!(matches!(
        h.register_with(secs(1), addr(1), "str:alice", Some(&auth)),
        Message::RegisterOk { .. }
    ));
    assert_eq!(h.svc.stats().refused_auth, 2);
}
