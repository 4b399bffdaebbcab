//! The identity and certificate calls through the C ABI, as a C program makes them: Init's
//! identity, `GetIdentity`, `GetCertificateRequest` with GNS's size convention, signing the
//! request with a CA, `SetCertificate` (and its refusal text), `GetAuthenticationStatus`.
//! A process of its own: the library has one instance per process.

#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test]: a failed unwrap is a failed test"
)]

use std::ffi::{CString, c_char, c_int, c_void};
use std::ptr::{null, null_mut};

use GameNetworkingSockets::auth::*;
use GameNetworkingSockets::identity::SteamNetworkingIdentity_ParseString;
use GameNetworkingSockets::instance::{GameNetworkingSockets_Init, GameNetworkingSockets_Kill};
use GameNetworkingSockets::types::*;
use prost::Message;
use sockworks_engine::crypto::ca::{CaKey, IssuePolicy, issue_for_request};
use sockworks_engine::wire::proto::CertificateRequest;

fn identity(text: &str) -> SteamNetworkingIdentity {
    let mut id = SteamNetworkingIdentity::zeroed();
    let t = CString::new(text).unwrap();
    // SAFETY: valid pointers and the struct's own size.
    assert!(unsafe { SteamNetworkingIdentity_ParseString(&mut id, size_of_val(&id), t.as_ptr()) });
    id
}

#[test]
fn certificate_request_sign_install_through_the_c_abi() {
    let s = null_mut::<c_void>();
    let mut err = [0 as c_char; 1024];
    let me = identity("str:capi-server");
    assert!(
        // SAFETY: a valid identity and error buffer.
        unsafe { GameNetworkingSockets_Init(&me, err.as_mut_ptr()) },
        "{}",
        read_c_chars(&err)
    );

    // Init's identity is ours.
    let mut got = SteamNetworkingIdentity::zeroed();
    // SAFETY: a writable identity.
    assert!(unsafe { SteamAPI_ISteamNetworkingSockets_GetIdentity(s, &mut got) });
    assert_eq!(got.to_identity(), me.to_identity());

    // Without a CA service: CannotTry, GNS's "No certificate authority".
    let mut status = SteamNetAuthenticationStatus_t {
        m_eAvail: 0,
        m_debugMsg: [0; 256],
    };
    // SAFETY: a writable struct.
    let avail = unsafe { SteamAPI_ISteamNetworkingSockets_GetAuthenticationStatus(s, &mut status) };
    assert_eq!(avail, k_ESteamNetworkingAvailability_CannotTry);

    // GetCertificateRequest: the size first, then a buffer too small, then the bytes.
    let mut size: c_int = 0;
    // SAFETY: a writable size; null blob asks for the size only.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingSockets_GetCertificateRequest(
            s,
            &mut size,
            null_mut(),
            err.as_mut_ptr(),
        )
    });
    assert!(size > 32, "{size}");
    let mut small = [0u8; 8];
    let mut small_size: c_int = 8;
    // SAFETY: an 8-byte buffer and its size.
    let ok = unsafe {
        SteamAPI_ISteamNetworkingSockets_GetCertificateRequest(
            s,
            &mut small_size,
            small.as_mut_ptr().cast(),
            err.as_mut_ptr(),
        )
    };
    assert!(!ok);
    assert_eq!(small_size, size, "the size needed is written back");
    assert!(
        read_c_chars(&err).contains("not big enough"),
        "{}",
        read_c_chars(&err)
    );
    let mut blob = vec![0u8; size as usize];
    // SAFETY: a buffer of the size asked for.
    assert!(unsafe {
        SteamAPI_ISteamNetworkingSockets_GetCertificateRequest(
            s,
            &mut size,
            blob.as_mut_ptr().cast(),
            err.as_mut_ptr(),
        )
    });
    let request = CertificateRequest::decode(&blob[..size as usize]).unwrap();

    // A CA signs it; SetCertificate takes GNS's raw protobuf.
    let ca = CaKey::from_seed([7; 32]);
    let policy = IssuePolicy {
        app_ids: vec![0],
        pop_ids: None,
        time_created: 1_700_000_000,
        time_expiry: 4_000_000_000,
        identity: me.to_identity(),
    };
    let cert = issue_for_request(&ca, &request, &policy)
        .unwrap()
        .encode_to_vec();

    // Garbage is refused with a reason, and null data too.
    let junk = [1u8, 2, 3];
    // SAFETY: readable bytes of the stated length.
    assert!(!unsafe {
        SteamAPI_ISteamNetworkingSockets_SetCertificate(
            s,
            junk.as_ptr().cast(),
            3,
            err.as_mut_ptr(),
        )
    });
    assert!(!read_c_chars(&err).is_empty());
    // SAFETY: null data is allowed and refused.
    assert!(!unsafe {
        SteamAPI_ISteamNetworkingSockets_SetCertificate(s, null(), 0, err.as_mut_ptr())
    });

    // SAFETY: the certificate's bytes.
    let ok = unsafe {
        SteamAPI_ISteamNetworkingSockets_SetCertificate(
            s,
            cert.as_ptr().cast(),
            cert.len() as c_int,
            err.as_mut_ptr(),
        )
    };
    assert!(ok, "{}", read_c_chars(&err));
    // SAFETY: a writable struct.
    let avail = unsafe { SteamAPI_ISteamNetworkingSockets_GetAuthenticationStatus(s, &mut status) };
    assert_eq!(
        avail,
        k_ESteamNetworkingAvailability_Current,
        "{}",
        read_c_chars(&status.m_debugMsg)
    );

    GameNetworkingSockets_Kill();
}
