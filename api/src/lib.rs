//! `sockworks`: the `ISteamNetworkingSockets` calls as a Rust API.
//!
//! The connection calls arrive with the runtime (issues 4-5); until then this crate holds the
//! result codes every call reports, so the engine and the API agree on them from the start.
//! The README's feature table says, call by call, what works today.

pub use sockworks_engine as engine;

/// `EResult`: the Steam result codes the documented calls return (subset GNS uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum EResult {
    /// Success.
    Ok = 1,
    /// Generic failure.
    Fail = 2,
    /// No connection (the connection was closed by the peer or failed).
    NoConnection = 3,
    /// A parameter is invalid (bad handle, oversize message…).
    InvalidParam = 8,
    /// The object is in the wrong state for the call.
    InvalidState = 11,
    /// The call was ignored (NoDelay message that could not go now).
    Ignored = 23,
    /// A limit was exceeded (send buffer full).
    LimitExceeded = 25,
}

impl EResult {
    /// The numeric value GNS and the flat C API use.
    pub const fn code(self) -> i32 {
        self as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_steam_values() {
        assert_eq!(EResult::Ok.code(), 1);
        assert_eq!(EResult::NoConnection.code(), 3);
        assert_eq!(EResult::InvalidParam.code(), 8);
        assert_eq!(EResult::InvalidState.code(), 11);
        assert_eq!(EResult::Ignored.code(), 23);
        assert_eq!(EResult::LimitExceeded.code(), 25);
    }
}
