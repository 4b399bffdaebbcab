//! Identity and certificates through GNS's C ABI: `GetIdentity`, `ResetIdentity`,
//! `GetCertificateRequest`, `SetCertificate`, `InitAuthentication`, `GetAuthenticationStatus`
//! over the Rust API's calls, with GNS's size convention and error texts. The
//! authentication-status callback (202) is a config value (`crate::config`); trust and the CA
//! service come from the environment (`crate::auth_env`).

use std::ffi::{c_char, c_int, c_void};

use sockworks::{AuthStatus, AuthStatusFn, Availability};

use crate::guard::{fail_with, guard, write_c_str};
use crate::instance::with;
use crate::types::{SteamNetAuthenticationStatus_t, SteamNetworkingIdentity};

/// `k_ESteamNetworkingAvailability_CannotTry`.
const CANNOT_TRY: i32 = Availability::CannotTry as i32;
/// Before Init or after Kill.
const NO_INSTANCE: &str = "GameNetworkingSockets_Init has not been called";

/// Writes `status` into the C struct.
fn fill(d: &mut SteamNetAuthenticationStatus_t, status: &AuthStatus) {
    d.m_eAvail = status.avail as i32;
    // SAFETY: the array is the struct's own, its length is passed.
    unsafe { write_c_str(d.m_debugMsg.as_mut_ptr(), d.m_debugMsg.len(), &status.debug) };
}

/// The C authentication-status callback's type.
pub type CAuthStatus = unsafe extern "C" fn(*mut SteamNetAuthenticationStatus_t);

/// Wraps a C callback (202) as the Rust API's callback.
pub fn auth_status_fn(f: CAuthStatus) -> AuthStatusFn {
    std::sync::Arc::new(move |status: &AuthStatus| {
        let mut c = SteamNetAuthenticationStatus_t {
            m_eAvail: 0,
            m_debugMsg: [0; 256],
        };
        fill(&mut c, status);
        // SAFETY: the application registered `f` for exactly this struct; it lives for the call.
        unsafe { f(&mut c) };
    })
}

/// `GetIdentity`: our identity (localhost `ip:::1` when Init got none, as GNS); false and a
/// cleared identity after `ResetIdentity(NULL)` until `SetCertificate`, or without an instance.
///
/// # Safety
/// `out` null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_GetIdentity(
    _self: *mut c_void,
    out: *mut SteamNetworkingIdentity,
) -> bool {
    guard(false, || {
        let id = with(None, |s| s.get_identity());
        if !out.is_null() {
            let c = id.as_ref().map_or_else(
                SteamNetworkingIdentity::zeroed,
                SteamNetworkingIdentity::from_identity,
            );
            // SAFETY: non-null and writable (the caller's promise).
            unsafe { out.write(c) };
        }
        id.is_some()
    })
}

/// `ResetIdentity` (a virtual method only; no flat export in GNS 1.6): closes every
/// connection and listen socket, discards key and certificate, takes `identity` (null:
/// invalid until `SetCertificate`).
pub(crate) extern "C" fn reset_identity(
    _self: *mut c_void,
    identity: *const SteamNetworkingIdentity,
) {
    guard((), || {
        // SAFETY: GNS's contract: the caller passes null or a valid identity.
        let id = unsafe { identity.as_ref() }.and_then(SteamNetworkingIdentity::to_identity);
        with((), |s| s.reset_identity(id.as_ref()));
    });
}

/// `InitAuthentication`: with `SOCKWORKS_CA_URL`, starts fetching our certificate in the
/// background (Attempting); without, CannotTry ("No certificate authority").
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingSockets_InitAuthentication(_self: *mut c_void) -> i32 {
    guard(CANNOT_TRY, || {
        with(CANNOT_TRY, |s| s.init_authentication() as i32)
    })
}

/// `GetAuthenticationStatus`: the availability, and its reason in `details`.
///
/// # Safety
/// `details` null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_GetAuthenticationStatus(
    _self: *mut c_void,
    details: *mut SteamNetAuthenticationStatus_t,
) -> i32 {
    guard(CANNOT_TRY, || {
        let status = with(
            AuthStatus {
                avail: Availability::CannotTry,
                debug: NO_INSTANCE.to_owned(),
            },
            |s| s.get_authentication_status(),
        );
        // SAFETY: the caller passes null or a writable struct.
        if let Some(d) = unsafe { details.as_mut() } {
            fill(d, &status);
        }
        status.avail as i32
    })
}

/// `GetCertificateRequest`: the serialized request for our key (made now if needed) and
/// identity. On entry `*size` is the buffer's size; on success it is the bytes written.
/// `blob` null: only the size. A buffer too small fails with the size needed in `*size`.
///
/// # Safety
/// `size` null or read/writable; `blob` null or `*size` writable bytes; `err_msg` null or a
/// `SteamNetworkingErrMsg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_GetCertificateRequest(
    _self: *mut c_void,
    size: *mut c_int,
    blob: *mut c_void,
    err_msg: *mut c_char,
) -> bool {
    guard(false, || {
        // SAFETY: the caller passes null or a SteamNetworkingErrMsg.
        let fail = |why: &str| unsafe { fail_with(err_msg, why) };
        if size.is_null() {
            return fail("pcbBlob is NULL");
        }
        let request = match with(Err(NO_INSTANCE.to_owned()), |s| s.get_certificate_request()) {
            Ok(r) => r,
            Err(e) => return fail(&e),
        };
        let need = c_int::try_from(request.len()).unwrap_or(c_int::MAX);
        // SAFETY: `size` is non-null and read/writable (the caller's promise).
        let have = unsafe { size.read() };
        // SAFETY: as above.
        unsafe { size.write(need) };
        if blob.is_null() {
            return true;
        }
        if have < need {
            return fail(&format!(
                "{have} byte buffer not big enough; {need} bytes required"
            ));
        }
        // SAFETY: `blob` holds at least `have >= need` writable bytes (the caller's promise).
        unsafe {
            std::ptr::copy_nonoverlapping(request.as_ptr(), blob.cast::<u8>(), request.len());
        }
        true
    })
}

/// `SetCertificate`: installs a CA-signed certificate (raw protobuf as GNS takes it, or our
/// PEM text, with or without the private key); false with the reason in `err_msg`.
///
/// # Safety
/// `cert` null or `size` readable bytes; `err_msg` null or a `SteamNetworkingErrMsg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingSockets_SetCertificate(
    _self: *mut c_void,
    cert: *const c_void,
    size: c_int,
    err_msg: *mut c_char,
) -> bool {
    guard(false, || {
        let result = match usize::try_from(size) {
            Ok(n) if !cert.is_null() && n > 0 => {
                // SAFETY: `cert` holds `size` readable bytes (the caller's promise).
                let bytes = unsafe { std::slice::from_raw_parts(cert.cast::<u8>(), n) };
                with(Err(NO_INSTANCE.to_owned()), |s| s.set_certificate(bytes))
            }
            _ => Err("No certificate data".to_owned()),
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                // SAFETY: the caller passes null or a SteamNetworkingErrMsg.
                unsafe { fail_with(err_msg, &e) }
            }
        }
    })
}
