//! A server requiring CA-signed client certs: a valid client connects while an expired one on
//! the same endpoint is refused with `Remote_BadCert`, and neither disturbs the other.

use super::*;
use crate::crypto::ca::{CaKey, CertParams, issue};
use crate::crypto::keys::IdentityKey;
use crate::crypto::{TrustStore, TrustedCa};
use crate::proto::handshake::LocalIdentity;
use crate::wire::identity::Identity;

const UNIX: u64 = 1_750_000_000;

fn client_with_cert(seed: u8, name: &str, expiry: u32, ep_seed: u64) -> Endpoint {
    let ca = CaKey::from_seed([100; 32]);
    let cert = issue(
        &ca,
        &CertParams {
            identity: Some(Identity::parse(name).unwrap()),
            public_key: IdentityKey::from_seed([seed; 32]).public_bytes(),
            app_ids: vec![0],
            pop_ids: vec![],
            time_created: 1_700_000_000,
            time_expiry: expiry,
        },
    )
    .unwrap();
    let mut ep = Endpoint::new(EndpointConfig::default(), ep_seed, &sim_secret(ep_seed));
    ep.set_identity(LocalIdentity::with_ca_certificate([seed; 32], cert).unwrap());
    ep
}

#[test]
fn expired_client_refused_valid_client_unaffected() {
    let now = Timestamp::from_micros(1_000_000);
    let mut server = listener();
    let mut trust = TrustStore::new();
    trust.add_ca(TrustedCa::new(CaKey::from_seed([100; 32]).public_key()));
    trust.require_trusted = true;
    server.set_trust(trust);
    server.set_unix_time(Timestamp::ZERO, UNIX - 1);
    assert_eq!(server.unix_time(now), Some(UNIX));

    let mut good = client_with_cert(1, "str:alice", 1_800_000_000, 11);
    let mut stale = client_with_cert(2, "str:mallory", 1_740_000_000, 12);
    let good_id = good
        .connect(now, addr("127.0.0.1:6000").into(), None)
        .unwrap();
    let stale_id = stale
        .connect(now, addr("127.0.0.1:6000").into(), None)
        .unwrap();
    shuttle_from(&mut good, addr("10.0.0.5:5000"), &mut server, 0, now);
    shuttle_from(&mut stale, addr("10.0.0.6:5000"), &mut server, 0, now);

    let ev = server.poll_event().expect("the valid client's request");
    assert!(
        server.poll_event().is_none(),
        "the expired one makes no connection"
    );
    assert_eq!(server.counters().refused, 1);
    server.accept(now, ev.connection).unwrap();
    shuttle_from(&mut good, addr("10.0.0.5:5000"), &mut server, 0, now);
    shuttle_from(&mut stale, addr("10.0.0.6:5000"), &mut server, 0, now);

    let info = server.connection(ev.connection).unwrap().info();
    assert_eq!(
        info.remote_identity,
        Some(Identity::parse("str:alice").unwrap())
    );
    assert!(!info.unauthenticated);
    assert_eq!(good.connection(good_id).unwrap().state(), State::Connected);
    let refused = stale.connection(stale_id).unwrap().info();
    assert_eq!(refused.end_reason, end_reason::REMOTE_BAD_CERT);
    assert!(
        refused.end_debug.contains("expired"),
        "{}",
        refused.end_debug
    );
}
