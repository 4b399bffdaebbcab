//! The flat `ISteamNetworkingUtils` calls other than configuration (in `config`) and
//! `AllocateMessage` (in `message`): the relay-network and ping-location calls answer as GNS's
//! open-source build does without SDR, the clock is GNS's, debug output goes to `debug`, and
//! the FakeIP calls classify and resolve FakeIPs (`sockworks::engine::wire::fakeip`).
//! `self_` is ignored everywhere.

use std::ffi::{c_char, c_int, c_void};
use std::sync::LazyLock;

use sockworks::engine::shard::Clock;

use crate::guard::guard;
use crate::types::{
    EResult, ESteamNetworkingAvailability, ESteamNetworkingFakeIPType,
    ESteamNetworkingSocketsDebugOutputType, FSteamNetworkingSocketsDebugOutput,
    SteamNetworkPingLocation_t, SteamNetworkingIPAddr, SteamNetworkingIdentity,
    SteamNetworkingMicroseconds, SteamNetworkingPOPID, SteamRelayNetworkStatus_t,
    k_ESteamNetworkingAvailability_CannotTry, k_nSteamNetworkingPing_Unknown,
};

/// GNS's `k_nInitialTimestamp`: its clock starts here, so a timestamp of 0 is far in the past
/// and timestamps never look like small numbers.
pub const INITIAL_TIMESTAMP: SteamNetworkingMicroseconds = 3_000_000_000_000;

static CLOCK: LazyLock<Clock> = LazyLock::new(Clock::new);

/// `GetLocalTimestamp`'s clock: monotonic µs from [`INITIAL_TIMESTAMP`] (taken at first use).
pub fn local_timestamp() -> SteamNetworkingMicroseconds {
    // The engine's clock reads 1 s at its start.
    let us = i64::try_from(CLOCK.now().as_micros()).unwrap_or(i64::MAX);
    INITIAL_TIMESTAMP.saturating_add(us.saturating_sub(1_000_000))
}

/// `InitRelayNetworkAccess`: nothing to do without a relay network.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_InitRelayNetworkAccess(_self: *mut c_void) {}

/// `GetRelayNetworkStatus`: CannotTry (no relay network), with the details zeroed except
/// the three availabilities, as GNS's non-SDR build.
///
/// # Safety
/// `pDetails` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingUtils_GetRelayNetworkStatus(
    _self: *mut c_void,
    pDetails: *mut SteamRelayNetworkStatus_t,
) -> ESteamNetworkingAvailability {
    let cannot = k_ESteamNetworkingAvailability_CannotTry;
    guard(cannot, || {
        if !pDetails.is_null() {
            let d = SteamRelayNetworkStatus_t {
                m_eAvail: cannot,
                m_bPingMeasurementInProgress: 0,
                m_eAvailNetworkConfig: cannot,
                m_eAvailAnyRelay: cannot,
                m_debugMsg: [0; 256],
            };
            // SAFETY: non-null and writable (caller); unaligned-safe.
            unsafe { pDetails.write_unaligned(d) };
        }
        cannot
    })
}

/// `GetLocalPingLocation`: −1, no location (the result is left alone).
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_GetLocalPingLocation(
    _self: *mut c_void,
    _result: *mut SteamNetworkPingLocation_t,
) -> f32 {
    -1.0
}

/// `EstimatePingTimeBetweenTwoLocations`: `k_nSteamNetworkingPing_Unknown`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_EstimatePingTimeBetweenTwoLocations(
    _self: *mut c_void,
    _location1: *const SteamNetworkPingLocation_t,
    _location2: *const SteamNetworkPingLocation_t,
) -> c_int {
    k_nSteamNetworkingPing_Unknown
}

/// `EstimatePingTimeFromLocalHost`: `k_nSteamNetworkingPing_Unknown`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_EstimatePingTimeFromLocalHost(
    _self: *mut c_void,
    _remoteLocation: *const SteamNetworkPingLocation_t,
) -> c_int {
    k_nSteamNetworkingPing_Unknown
}

/// `ConvertPingLocationToString`: the empty string.
///
/// # Safety
/// `pszBuf` is null or has `cchBufSize` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn SteamAPI_ISteamNetworkingUtils_ConvertPingLocationToString(
    _self: *mut c_void,
    _location: *const SteamNetworkPingLocation_t,
    pszBuf: *mut c_char,
    cchBufSize: c_int,
) {
    if !pszBuf.is_null() && cchBufSize > 0 {
        // SAFETY: at least one writable byte (caller).
        unsafe { pszBuf.write(0) };
    }
}

/// `ParsePingLocationString`: false, no location format to parse.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_ParsePingLocationString(
    _self: *mut c_void,
    _pszString: *const c_char,
    _result: *mut SteamNetworkPingLocation_t,
) -> bool {
    false
}

/// `CheckPingDataUpToDate`: false (GNS without SDR).
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_CheckPingDataUpToDate(
    _self: *mut c_void,
    _flMaxAgeSeconds: f32,
) -> bool {
    false
}

/// `GetPingToDataCenter`: `k_nSteamNetworkingPing_Unknown` (`pViaRelayPoP` untouched).
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_GetPingToDataCenter(
    _self: *mut c_void,
    _popID: SteamNetworkingPOPID,
    _pViaRelayPoP: *mut SteamNetworkingPOPID,
) -> c_int {
    k_nSteamNetworkingPing_Unknown
}

/// `GetDirectPingToPOP`: `k_nSteamNetworkingPing_Unknown`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_GetDirectPingToPOP(
    _self: *mut c_void,
    _popID: SteamNetworkingPOPID,
) -> c_int {
    k_nSteamNetworkingPing_Unknown
}

/// `GetPOPCount`: 0.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_GetPOPCount(_self: *mut c_void) -> c_int {
    0
}

/// `GetPOPList`: 0 entries written.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_GetPOPList(
    _self: *mut c_void,
    _list: *mut SteamNetworkingPOPID,
    _nListSz: c_int,
) -> c_int {
    0
}

/// `GetLocalTimestamp`: see [`local_timestamp`].
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_GetLocalTimestamp(
    _self: *mut c_void,
) -> SteamNetworkingMicroseconds {
    guard(INITIAL_TIMESTAMP, local_timestamp)
}

/// `SetDebugOutputFunction`: Sockworks' log events at `eDetailLevel` or more important go to
/// `pfnFunc` (null turns output off).
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_SetDebugOutputFunction(
    _self: *mut c_void,
    eDetailLevel: ESteamNetworkingSocketsDebugOutputType,
    pfnFunc: FSteamNetworkingSocketsDebugOutput,
) {
    guard((), || crate::debug::set_output(eDetailLevel, pfnFunc));
}

/// `ISteamNetworkingUtils::GetIPv4FakeIPType` (virtual only, no flat export; the vtable points
/// here): `ip` in host byte order; GlobalIPv4 for the rendezvous service's range
/// (169.254.1.0–169.254.191.255), LocalIPv4 for the local one (169.254.192.0–169.254.254.255),
/// NotFake otherwise.
///
/// # Safety
/// None needed: it reads nothing (unsafe only to match the vtable's function type).
pub unsafe extern "C" fn get_ipv4_fake_ip_type(
    _this: *mut c_void,
    ip: u32,
) -> ESteamNetworkingFakeIPType {
    sockworks::ipv4_fake_ip_type(ip.into()) as ESteamNetworkingFakeIPType
}

/// `ISteamNetworkingUtils::GetRealIdentityForFakeIP` (virtual only): OK and the identity in
/// `*out` (when not null); InvalidParam if `fake_ip` is null or not a FakeIP; NoMatch for a
/// FakeIP this instance does not know (or no instance).
///
/// # Safety
/// `fake_ip` is null or valid; `out` is null or points to a writable identity.
pub unsafe extern "C" fn get_real_identity_for_fake_ip(
    _this: *mut c_void,
    fake_ip: *const SteamNetworkingIPAddr,
    out: *mut SteamNetworkingIdentity,
) -> EResult {
    let invalid = sockworks::EResult::InvalidParam.code();
    guard(invalid, || {
        // SAFETY: the caller passes null or a valid address.
        let Some(addr) = (unsafe { fake_ip.as_ref() }).map(SteamNetworkingIPAddr::to_socket_addr)
        else {
            return invalid;
        };
        if !sockworks::engine::wire::fakeip::is_fake_ip(&addr) {
            return invalid;
        }
        let found = crate::instance::with(Err(sockworks::EResult::NoMatch), |s| {
            s.get_real_identity_for_fake_ip(addr)
        });
        match found {
            Ok(id) => {
                // SAFETY: the caller passes null or a writable identity.
                if let Some(out) = unsafe { out.as_mut() } {
                    *out = SteamNetworkingIdentity::from_identity(&id);
                }
                sockworks::EResult::Ok.code()
            }
            Err(e) => e.code(),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use super::*;

    #[test]
    fn relay_and_ping_calls_answer_as_gns_without_sdr() {
        let null = ptr::null_mut();
        // SAFETY: an all-zero struct of plain integers and bytes is valid.
        let mut st: SteamRelayNetworkStatus_t = unsafe { std::mem::zeroed() };
        st.m_debugMsg[0] = b'x' as c_char;
        // SAFETY: a writable struct, and null.
        let (a, b) = unsafe {
            (
                SteamAPI_ISteamNetworkingUtils_GetRelayNetworkStatus(null, &mut st),
                SteamAPI_ISteamNetworkingUtils_GetRelayNetworkStatus(null, ptr::null_mut()),
            )
        };
        assert_eq!((a, b), (-102, -102));
        assert_eq!({ st.m_eAvailAnyRelay }, -102);
        assert_eq!(st.m_debugMsg[0], 0);
        assert_eq!(
            SteamAPI_ISteamNetworkingUtils_GetLocalPingLocation(null, null.cast()),
            -1.0
        );
        assert_eq!(
            SteamAPI_ISteamNetworkingUtils_EstimatePingTimeFromLocalHost(null, ptr::null()),
            k_nSteamNetworkingPing_Unknown
        );
        assert_eq!(SteamAPI_ISteamNetworkingUtils_GetPOPCount(null), 0);
        assert!(!SteamAPI_ISteamNetworkingUtils_CheckPingDataUpToDate(
            null, 1e10
        ));
        let mut buf = [b'z' as c_char; 4];
        // SAFETY: 4 writable bytes, then null and a zero size.
        unsafe {
            SteamAPI_ISteamNetworkingUtils_ConvertPingLocationToString(
                null,
                ptr::null(),
                buf.as_mut_ptr(),
                4,
            );
            SteamAPI_ISteamNetworkingUtils_ConvertPingLocationToString(
                null,
                ptr::null(),
                null.cast(),
                4,
            );
        }
        assert_eq!(buf[0], 0);
        // SAFETY: reads nothing.
        let fake_type = |ip| unsafe { get_ipv4_fake_ip_type(null, ip) };
        assert_eq!(
            fake_type(0x0a00_0001),
            crate::types::k_ESteamNetworkingFakeIPType_NotFake
        );
        assert_eq!(
            fake_type(0xa9fe_0709),
            crate::types::k_ESteamNetworkingFakeIPType_GlobalIPv4
        );
        assert_eq!(
            fake_type(0xa9fe_c801),
            crate::types::k_ESteamNetworkingFakeIPType_LocalIPv4
        );
        assert_eq!(
            fake_type(0xa9fe_0001),
            crate::types::k_ESteamNetworkingFakeIPType_NotFake
        );
        // SAFETY: null pointers, then a valid address and a null out pointer.
        let r = unsafe { get_real_identity_for_fake_ip(null, ptr::null(), ptr::null_mut()) };
        assert_eq!(r, sockworks::EResult::InvalidParam.code());
        let real = SteamNetworkingIPAddr::from_socket_addr("10.0.0.1:5".parse().unwrap());
        // SAFETY: a valid address, a null out pointer.
        let r = unsafe { get_real_identity_for_fake_ip(null, &real, ptr::null_mut()) };
        assert_eq!(r, sockworks::EResult::InvalidParam.code());
        let fake = SteamNetworkingIPAddr::from_socket_addr("169.254.7.9:2000".parse().unwrap());
        // SAFETY: as above; no instance in this unit test.
        let r = unsafe { get_real_identity_for_fake_ip(null, &fake, ptr::null_mut()) };
        assert_eq!(r, sockworks::EResult::NoMatch.code());
    }

    #[test]
    fn the_clock_starts_at_gns_offset_and_never_goes_back() {
        let a = SteamAPI_ISteamNetworkingUtils_GetLocalTimestamp(ptr::null_mut());
        let b = SteamAPI_ISteamNetworkingUtils_GetLocalTimestamp(ptr::null_mut());
        assert!((INITIAL_TIMESTAMP..INITIAL_TIMESTAMP + 3_600_000_000).contains(&a));
        assert!(b >= a);
    }
}
