use prost::Message;
use sockworks_engine::crypto::ca;
use sockworks_engine::crypto::keys::verify_signature;
use sockworks_engine::crypto::pem;

use super::*;

const PLAYER_TOKEN: &str = "player-token-0123456789";
const SERVER_TOKEN: &str = "server-token-0123456789";
const NOW: u64 = 1_800_000_000;

fn service() -> Service {
    Service {
        ca_key: CaKey::from_seed([1; 32]),
        tokens: Tokens::parse(&format!(
            "{PLAYER_TOKEN} str:player-*\n{SERVER_TOKEN} str:server-1\n"
        ))
        .unwrap(),
        app_ids: vec![0, 480],
        pop_ids: None,
        lifetime: 2 * 86_400,
        backdate: 0,
    }
}

fn post(token: Option<&str>, body: Vec<u8>) -> Request {
    let mut headers = Vec::new();
    if let Some(t) = token {
        headers.push(("authorization".to_owned(), format!("Bearer {t}")));
    }
    Request {
        method: "POST".to_owned(),
        path: SIGN_PATH.to_owned(),
        headers,
        body,
    }
}

fn request_for(identity: &str) -> Vec<u8> {
    let key = CaKey::from_seed([9; 32]);
    let req = ca::make_request(&Identity::parse(identity).unwrap(), &key.public_key());
    pem::write_cert_request_pem(&req).into_bytes()
}

#[test]
fn signs_a_pem_request_for_an_allowed_identity() {
    let s = service();
    let o = s.handle(&post(Some(PLAYER_TOKEN), request_for("str:player-7")), NOW);
    assert_eq!(o.response.status, 200, "{}", o.note);
    let text = String::from_utf8(o.response.body).unwrap();
    let signed = pem::read_cert_pem(&text).unwrap();
    let cert_bytes = signed.cert.clone().unwrap();
    verify_signature(
        &s.ca_key.public_key(),
        &cert_bytes,
        signed.ca_signature.as_deref().unwrap(),
    )
    .unwrap();
    let summary = ca::inspect(&signed, Some(&s.ca_key.public_key())).unwrap();
    assert_eq!(summary.identity, Identity::parse("str:player-7"));
    assert_eq!(summary.app_ids, [0, 480]);
    assert_eq!(summary.time_created, Some(NOW as u32));
    assert_eq!(summary.time_expiry, Some(NOW as u32 + 2 * 86_400));
    assert_eq!(summary.ca_key_id, Some(s.ca_key.key_id()));
    assert_eq!(
        summary.public_key,
        Some(CaKey::from_seed([9; 32]).public_key())
    );
}

#[test]
fn signs_a_raw_request_and_fills_in_an_exact_token_identity() {
    let s = service();
    let key = CaKey::from_seed([9; 32]);
    let anonymous = ca::make_request(&Identity::localhost(), &key.public_key());
    let o = s.handle(&post(Some(SERVER_TOKEN), anonymous.encode_to_vec()), NOW);
    assert_eq!(o.response.status, 200, "{}", o.note);
    let signed = pem::read_cert_pem(&String::from_utf8_lossy(&o.response.body)).unwrap();
    let summary = ca::inspect(&signed, None).unwrap();
    assert_eq!(summary.identity, Identity::parse("str:server-1"));
    // A pattern token cannot imply an identity.
    let o = s.handle(&post(Some(PLAYER_TOKEN), anonymous.encode_to_vec()), NOW);
    assert_eq!(o.response.status, 400);
}

#[test]
fn refuses_missing_and_unknown_tokens_with_401() {
    let s = service();
    for token in [None, Some("nope-nope-nope-nope"), Some("")] {
        let o = s.handle(&post(token, request_for("str:player-1")), NOW);
        assert_eq!(o.response.status, 401);
        assert!(
            o.response
                .headers
                .iter()
                .any(|(n, _)| *n == "WWW-Authenticate")
        );
    }
    let mut basic = post(None, request_for("str:player-1"));
    basic
        .headers
        .push(("authorization".to_owned(), format!("Basic {PLAYER_TOKEN}")));
    assert_eq!(s.handle(&basic, NOW).response.status, 401);
}

#[test]
fn refuses_identities_outside_the_token_and_malformed_bodies_with_400() {
    let s = service();
    let o = s.handle(&post(Some(PLAYER_TOKEN), request_for("str:server-1")), NOW);
    assert_eq!(o.response.status, 400);
    assert!(String::from_utf8_lossy(&o.response.body).contains("may not get"));
    for body in [
        &b""[..],
        b"hello",
        b"-----BEGIN SOCKWORKS CERT REQUEST-----\n!!\n",
    ] {
        let o = s.handle(&post(Some(PLAYER_TOKEN), body.to_vec()), NOW);
        assert_eq!(o.response.status, 400, "{body:?}");
    }
    let mut req = ca::make_request(&Identity::parse("str:player-1").unwrap(), &[9; 32]);
    if let Some(c) = req.cert.as_mut() {
        c.identity_string = Some("foo:bar".to_owned());
    }
    let o = s.handle(&post(Some(PLAYER_TOKEN), req.encode_to_vec()), NOW);
    assert_eq!(o.response.status, 400);
    assert!(String::from_utf8_lossy(&o.response.body).contains("unknown"));
}

#[test]
fn routes_methods_and_paths() {
    let s = service();
    let get = |path: &str, method: &str| {
        s.handle(
            &Request {
                method: method.to_owned(),
                path: path.to_owned(),
                headers: Vec::new(),
                body: Vec::new(),
            },
            NOW,
        )
        .response
    };
    let ca_resp = get(CA_PATH, "GET");
    assert_eq!(ca_resp.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&ca_resp.body).trim_end(),
        s.ca_line()
    );
    assert_eq!(get(CA_PATH, "POST").status, 405);
    assert_eq!(get(SIGN_PATH, "GET").status, 405);
    assert_eq!(get("/", "GET").status, 404);
}

#[test]
fn backdates_time_created_for_clock_skew() {
    let s = Service {
        backdate: 300,
        ..service()
    };
    let o = s.handle(&post(Some(PLAYER_TOKEN), request_for("str:player-7")), NOW);
    assert_eq!(o.response.status, 200, "{}", o.note);
    let signed = pem::read_cert_pem(&String::from_utf8_lossy(&o.response.body)).unwrap();
    let summary = ca::inspect(&signed, None).unwrap();
    assert_eq!(summary.time_created, Some(NOW as u32 - 300));
    assert_eq!(summary.time_expiry, Some(NOW as u32 - 300 + 2 * 86_400));
}
