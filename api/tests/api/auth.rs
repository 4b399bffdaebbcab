//! Identity and certificates end to end over 127.0.0.1: instances with certificates from one
//! CA (issued here with the engine's CA code), trust required or not, revocation and expiry,
//! `SetCertificate`'s refusals, `ResetIdentity`, and the request → sign → install round trip.

#![allow(clippy::unwrap_used, reason = "tests")]

use std::sync::{Arc, Mutex};

use sockworks::engine::crypto::TrustedCa;
use sockworks::engine::crypto::ca::{self, CaKey, CertParams, IssuePolicy};
use sockworks::engine::crypto::keys::IdentityKey;
use sockworks::engine::crypto::pem;
use sockworks::engine::proto::end_reason;
use sockworks::engine::shard::Clock;
use sockworks::engine::wire::identity::Identity;
use sockworks::engine::wire::proto::{CertificateRequest, CertificateSigned};
use sockworks::{
    AuthStatus, Availability, ConfigValue, Connection, ConnectionState, ListenSocket, Sockets,
    SocketsConfig, StatusChanged, TrustConfig, info_flags,
};

use super::common::{Seen, accept_next, wait_until};

/// Wall-clock now, as the shards see it.
fn now() -> u64 {
    Clock::new().unix_secs()
}

fn ca_key(n: u8) -> CaKey {
    CaKey::from_seed([n; 32])
}

fn trusting(ca: &CaKey, require: bool) -> TrustConfig {
    TrustConfig {
        cas: vec![TrustedCa::new(ca.public_key())],
        require_trusted: require,
        ..TrustConfig::default()
    }
}

/// An instance with `identity` and `trust`, recording its status changes.
fn instance(identity: Option<&str>, trust: TrustConfig, seed: u64) -> (Sockets, Seen) {
    let s = Sockets::with_config(SocketsConfig {
        shards: 1,
        seed: Some(seed),
        identity: identity.map(|i| i.parse().unwrap()),
        trust,
        ..SocketsConfig::default()
    })
    .expect("instance");
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    assert!(
        s.set_global_config_value(&ConfigValue::ConnectionStatusChanged(Arc::new(
            move |ev: &StatusChanged| sink.lock().unwrap().push(ev.clone())
        )))
    );
    (s, seen)
}

/// Signs `s`'s certificate request with `ca`, valid from an hour ago until `expiry`.
fn sign_request(s: &Sockets, ca: &CaKey, expiry: u64) -> CertificateSigned {
    let raw = s.get_certificate_request().unwrap();
    let request = <CertificateRequest as prost::Message>::decode(raw.as_slice()).unwrap();
    let policy = IssuePolicy {
        app_ids: vec![0],
        pop_ids: None,
        time_created: (now() - 3600) as u32,
        time_expiry: expiry as u32,
        identity: None,
    };
    ca::issue_for_request(ca, &request, &policy).unwrap()
}

/// Gives `s` a certificate from `ca` for its own key and identity.
fn certify(s: &Sockets, ca: &CaKey) {
    let cert = sign_request(s, ca, now() + 86_400);
    s.set_certificate(&prost::Message::encode_to_vec(&cert))
        .unwrap();
}

/// A listen socket on 127.0.0.1 and its address.
fn listen(s: &Sockets) -> (ListenSocket, std::net::SocketAddr) {
    let l = s.create_listen_socket_ip("127.0.0.1:0".parse().unwrap(), &[]);
    assert_ne!(l, ListenSocket::INVALID);
    (l, s.get_listen_socket_address(l).unwrap())
}

fn both_connected(a: &Sockets, ac: Connection, b: &Sockets, bc: Connection) -> bool {
    wait_until(&[a, b], || {
        a.connection_state(ac) == ConnectionState::Connected
            && b.connection_state(bc) == ConnectionState::Connected
    })
}

/// Waits until `conn` of `s` has ended, and returns its end reason.
fn ended(s: &Sockets, seen: &Seen, conn: Connection) -> i32 {
    let mut reason = None;
    assert!(
        wait_until(&[s], || {
            reason = seen
                .lock()
                .unwrap()
                .iter()
                .find(|e| {
                    e.conn == conn
                        && matches!(
                            e.info.state,
                            ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally
                        )
                })
                .map(|e| e.info.end_reason);
            reason.is_some()
        }),
        "connection ended"
    );
    reason.unwrap()
}

#[test]
fn certified_peers_see_each_others_identity_authenticated() {
    let ca = ca_key(1);
    let (server, server_seen) = instance(Some("str:server"), trusting(&ca, true), 1);
    let (client, _) = instance(Some("str:alice"), trusting(&ca, true), 2);
    certify(&server, &ca);
    certify(&client, &ca);
    assert_eq!(server.get_identity(), Some("str:server".parse().unwrap()));
    assert_eq!(
        server.get_authentication_status(),
        AuthStatus {
            avail: Availability::Current,
            debug: "OK".into()
        }
    );
    let (_, addr) = listen(&server);
    let c = client.connect_by_ip_address(addr, &[]);
    let s = accept_next(&server, &server_seen, &[]);
    assert!(both_connected(&client, c, &server, s));
    let ci = client.get_connection_info(c).unwrap();
    let si = server.get_connection_info(s).unwrap();
    assert_eq!(ci.identity_remote, Some("str:server".parse().unwrap()));
    assert_eq!(si.identity_remote, Some("str:alice".parse().unwrap()));
    assert_eq!(ci.flags & info_flags::UNAUTHENTICATED, 0, "{ci:?}");
    assert_eq!(si.flags & info_flags::UNAUTHENTICATED, 0, "{si:?}");
}

#[test]
fn a_client_meaning_one_server_refuses_another_with_a_valid_cert() {
    // Both servers hold valid certificates from the trusted CA; only one is the server the
    // client meant.
    let ca = ca_key(9);
    let (right, right_seen) = instance(Some("str:game-1"), trusting(&ca, true), 21);
    let (wrong, wrong_seen) = instance(Some("str:game-2"), trusting(&ca, true), 22);
    let (client, client_seen) = instance(Some("str:carol"), trusting(&ca, true), 23);
    for s in [&right, &wrong, &client] {
        certify(s, &ca);
    }
    let meant: Identity = "str:game-1".parse().unwrap();
    let (_, right_addr) = listen(&right);
    let (_, wrong_addr) = listen(&wrong);

    let c = client.connect_by_ip_address_expecting(right_addr, meant.clone(), &[]);
    let s = accept_next(&right, &right_seen, &[]);
    assert!(both_connected(&client, c, &right, s));

    let c2 = client.connect_by_ip_address_expecting(wrong_addr, meant, &[]);
    let _s2 = accept_next(&wrong, &wrong_seen, &[]);
    assert_eq!(
        ended(&client, &client_seen, c2),
        end_reason::REMOTE_BAD_CERT as i32
    );
    // The first connection is undisturbed.
    assert_eq!(client.connection_state(c), ConnectionState::Connected);
}

#[test]
fn a_client_requiring_trust_refuses_an_anonymous_server() {
    let ca = ca_key(2);
    let (server, server_seen) = instance(None, TrustConfig::default(), 3);
    let (client, client_seen) = instance(Some("str:bob"), trusting(&ca, true), 4);
    certify(&client, &ca);
    let (_, addr) = listen(&server);
    let c = client.connect_by_ip_address(addr, &[]);
    let _s = accept_next(&server, &server_seen, &[]);
    let reason = ended(&client, &client_seen, c);
    assert_eq!(reason, end_reason::REMOTE_BAD_CERT as i32);
}

#[test]
fn a_server_requiring_trust_refuses_an_anonymous_client_and_keeps_serving_others() {
    let ca = ca_key(3);
    let (server, server_seen) = instance(Some("str:srv3"), trusting(&ca, true), 5);
    certify(&server, &ca);
    let (anon, anon_seen) = instance(None, TrustConfig::default(), 6);
    let (good, _) = instance(Some("str:carol"), trusting(&ca, false), 7);
    certify(&good, &ca);
    let (_, addr) = listen(&server);
    let a = anon.connect_by_ip_address(addr, &[]);
    assert_eq!(
        ended(&anon, &anon_seen, a),
        end_reason::REMOTE_BAD_CERT as i32
    );
    let g = good.connect_by_ip_address(addr, &[]);
    let s = accept_next(&server, &server_seen, &[]);
    assert!(both_connected(&good, g, &server, s));
    assert_eq!(
        server.get_connection_info(s).unwrap().identity_remote,
        Some("str:carol".parse().unwrap())
    );
}

#[test]
fn expired_and_revoked_clients_are_refused_while_a_valid_one_keeps_working() {
    let ca = ca_key(4);
    let (server, server_seen) = instance(Some("str:srv4"), trusting(&ca, true), 8);
    certify(&server, &ca);
    let (_, addr) = listen(&server);
    let (good, _) = instance(Some("str:good"), TrustConfig::default(), 9);
    certify(&good, &ca);
    let g = good.connect_by_ip_address(addr, &[]);
    let gs = accept_next(&server, &server_seen, &[]);
    assert!(both_connected(&good, g, &server, gs));

    // Expired: a cert installed just before it expires (SetCertificate refuses expired ones).
    let (late, late_seen) = instance(Some("str:late"), TrustConfig::default(), 10);
    let cert = sign_request(&late, &ca, now() + 2);
    late.set_certificate(&prost::Message::encode_to_vec(&cert))
        .unwrap();
    let clock = Clock::new();
    let start = clock.now();
    while now() <= u64::from(expiry_of(&cert)) + 1 {
        assert!(clock.now().saturating_since(start).as_secs() < 10);
        std::thread::yield_now();
        good.wait_for_activity(good.activity(), std::time::Duration::from_millis(100));
    }
    let l = late.connect_by_ip_address(addr, &[]);
    assert_eq!(
        ended(&late, &late_seen, l),
        end_reason::REMOTE_BAD_CERT as i32
    );

    // Revoked: the server revokes the key of a client's certificate.
    let (bad, bad_seen) = instance(Some("str:bad"), TrustConfig::default(), 11);
    certify(&bad, &ca);
    let bad_key = bad_public_key(&bad);
    let mut t = trusting(&ca, true);
    t.revoked
        .push(sockworks::engine::crypto::keys::ca_key_id(&bad_key));
    server.set_trust(&t);
    let b = bad.connect_by_ip_address(addr, &[]);
    assert_eq!(
        ended(&bad, &bad_seen, b),
        end_reason::REMOTE_BAD_CERT as i32
    );

    // The valid client is undisturbed.
    assert_eq!(good.connection_state(g), ConnectionState::Connected);
    assert!(
        good.send_message_to_connection(g, b"still here", sockworks::send_flags::RELIABLE)
            .is_ok()
    );
    let got = super::common::recv_n(&server, gs, 1);
    assert_eq!(got[0].data, b"still here");
}

fn expiry_of(cert: &CertificateSigned) -> u32 {
    let body = <sockworks::engine::wire::proto::Certificate as prost::Message>::decode(
        cert.cert.as_deref().unwrap(),
    )
    .unwrap();
    body.time_expiry.unwrap()
}

/// The public key `s`'s certificate request names (its instance key).
fn bad_public_key(s: &Sockets) -> [u8; 32] {
    let raw = s.get_certificate_request().unwrap();
    let request = <CertificateRequest as prost::Message>::decode(raw.as_slice()).unwrap();
    request.cert.unwrap().key_data.unwrap().try_into().unwrap()
}

#[test]
fn set_certificate_refuses_another_key_and_an_untrusted_ca_saying_why() {
    let ca = ca_key(5);
    let (s, _) = instance(Some("str:dave"), trusting(&ca, false), 12);
    // A cert for a key that is not ours.
    let foreign = ca::issue(
        &ca,
        &CertParams {
            identity: Some("str:dave".parse().unwrap()),
            public_key: IdentityKey::from_seed([42; 32]).public_bytes(),
            app_ids: vec![0],
            pop_ids: vec![],
            time_created: (now() - 60) as u32,
            time_expiry: (now() + 3600) as u32,
        },
    )
    .unwrap();
    let e = s
        .set_certificate(&prost::Message::encode_to_vec(&foreign))
        .unwrap_err();
    assert!(e.contains("another key"), "{e}");
    // Our key, but a CA we do not trust (as PEM text).
    let other = ca_key(6);
    let untrusted = sign_request(&s, &other, now() + 3600);
    let e = s
        .set_certificate(pem::write_cert_pem(&untrusted).as_bytes())
        .unwrap_err();
    assert!(e.contains("not trusted"), "{e}");
    // Another identity.
    let (x, _) = instance(Some("str:eve"), TrustConfig::default(), 13);
    let for_eve = sign_request(&x, &ca, now() + 3600);
    let e = s
        .set_certificate(&prost::Message::encode_to_vec(&for_eve))
        .unwrap_err();
    assert!(e.contains("We are 'str:dave'"), "{e}");
    assert_eq!(
        s.get_authentication_status().avail,
        Availability::CannotTry,
        "refusals change nothing"
    );
    // A bundle with its own private key (sockworks-cert issue --with-private-key) is taken.
    let mut bundle = foreign;
    bundle.private_key_data = Some(vec![42; 32]);
    s.set_certificate(pem::write_cert_pem(&bundle).as_bytes())
        .unwrap();
    assert_eq!(s.get_authentication_status().avail, Availability::Current);
}

#[test]
fn request_sign_install_round_trip_fires_the_auth_callback() {
    let ca = ca_key(7);
    let (s, _) = instance(None, trusting(&ca, false), 14);
    assert_eq!(s.get_identity(), Some(Identity::localhost()));
    let events: Arc<Mutex<Vec<AuthStatus>>> = Arc::default();
    let sink = events.clone();
    assert!(
        s.set_global_config_value(&ConfigValue::AuthStatusChanged(Arc::new(
            move |st: &AuthStatus| sink.lock().unwrap().push(st.clone())
        )))
    );
    let raw = s.get_certificate_request().unwrap();
    assert_eq!(s.get_certificate_request().unwrap(), raw, "the key is kept");
    let request = <CertificateRequest as prost::Message>::decode(raw.as_slice()).unwrap();
    // An anonymous instance's request names no identity: the CA decides it.
    let policy = IssuePolicy {
        app_ids: vec![0],
        pop_ids: None,
        time_created: (now() - 60) as u32,
        time_expiry: (now() + 3600) as u32,
        identity: Some("str:assigned".parse().unwrap()),
    };
    let cert = ca::issue_for_request(&ca, &request, &policy).unwrap();
    s.set_certificate(&prost::Message::encode_to_vec(&cert))
        .unwrap();
    assert_eq!(s.get_identity(), Some("str:assigned".parse().unwrap()));
    s.run_callbacks();
    let got = events.lock().unwrap().clone();
    assert_eq!(got.last().map(|e| e.avail), Some(Availability::Current));
    // Without a CA service, InitAuthentication keeps reporting what is there.
    assert_eq!(s.init_authentication(), Availability::Current);
}

#[test]
fn reset_identity_closes_connections_and_discards_the_certificate() {
    let ca = ca_key(8);
    let (server, server_seen) = instance(Some("str:srv8"), TrustConfig::default(), 15);
    let (client, client_seen) = instance(Some("str:frank"), TrustConfig::default(), 16);
    certify(&client, &ca);
    let old_request = client.get_certificate_request().unwrap();
    let (_, addr) = listen(&server);
    let c = client.connect_by_ip_address(addr, &[]);
    let s = accept_next(&server, &server_seen, &[]);
    assert!(both_connected(&client, c, &server, s));
    client.reset_identity(Some(&"str:grace".parse().unwrap()));
    assert_eq!(client.get_identity(), Some("str:grace".parse().unwrap()));
    assert_eq!(
        client.get_authentication_status().avail,
        Availability::CannotTry
    );
    assert_ne!(client.get_certificate_request().unwrap(), old_request);
    assert_eq!(
        ended(&server, &server_seen, s),
        end_reason::APP_EXCEPTION_MAX as i32
    );
    assert!(client.get_connection_info(c).is_none(), "closed by reset");
    drop(client_seen);
    // New connections present the new identity.
    let c2 = client.connect_by_ip_address(addr, &[]);
    let s2 = accept_next(&server, &server_seen, &[s]);
    assert!(both_connected(&client, c2, &server, s2));
    assert_eq!(
        server.get_connection_info(s2).unwrap().identity_remote,
        Some("str:grace".parse().unwrap())
    );
    client.reset_identity(None);
    assert_eq!(client.get_identity(), None);
}

#[test]
fn an_expired_certificate_reads_as_previously() {
    let ca = ca_key(11);
    let (s, _) = instance(Some("str:short"), trusting(&ca, false), 31);
    let cert = sign_request(&s, &ca, now() + 2);
    s.set_certificate(&prost::Message::encode_to_vec(&cert))
        .unwrap();
    assert_eq!(s.get_authentication_status().avail, Availability::Current);
    // Bounded: at most 4 s of 50 ms sleeps.
    for _ in 0..80 {
        if s.get_authentication_status().avail != Availability::Current {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        s.get_authentication_status(),
        AuthStatus {
            avail: Availability::Previously,
            debug: "Certificate expired".into()
        }
    );
}
