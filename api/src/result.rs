//! `EResult`: the result codes the documented calls return.

use sockworks_engine::proto::connection::ConnError;
use sockworks_engine::proto::endpoint::EndpointError;
use sockworks_engine::proto::snp::SendError;

/// `EResult`: the Steam result codes the documented calls return (the subset GNS uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
#[non_exhaustive]
pub enum EResult {
    /// Success.
    Ok = 1,
    /// Generic failure.
    Fail = 2,
    /// No connection (the connection was closed by the peer or failed).
    NoConnection = 3,
    /// A parameter is invalid (bad handle, oversize message…).
    InvalidParam = 8,
    /// Still working on it (a FakeIP request in flight).
    Busy = 10,
    /// The object is in the wrong state for the call.
    InvalidState = 11,
    /// Refused (the rendezvous service would not register us).
    AccessDenied = 15,
    /// No answer in time (a FakeIP request to an unreachable service).
    Timeout = 16,
    /// The call was ignored (NoDelay message that could not go now).
    Ignored = 23,
    /// A limit was exceeded (send buffer full; the service's FakeIP table full).
    LimitExceeded = 25,
    /// Not a FakeIP connection, or no connection to that FakeIP (`k_EResultIPNotFound`).
    IpNotFound = 31,
    /// An unknown FakeIP (`GetRealIdentityForFakeIP`).
    NoMatch = 42,
}

impl EResult {
    /// The numeric value GNS and the flat C API use.
    pub const fn code(self) -> i32 {
        self as i32
    }
}

impl From<SendError> for EResult {
    fn from(e: SendError) -> Self {
        match e {
            SendError::InvalidParam => EResult::InvalidParam,
            SendError::LimitExceeded => EResult::LimitExceeded,
            SendError::Ignored => EResult::Ignored,
            // A cause added to the engine later: GNS's catch-all.
            _ => EResult::Fail,
        }
    }
}

impl From<ConnError> for EResult {
    fn from(e: ConnError) -> Self {
        match e {
            ConnError::InvalidState => EResult::InvalidState,
            ConnError::NoConnection => EResult::NoConnection,
            ConnError::Send(s) => s.into(),
            // A cause added to the engine later: GNS's catch-all.
            _ => EResult::Fail,
        }
    }
}

impl From<EndpointError> for EResult {
    fn from(e: EndpointError) -> Self {
        match e {
            EndpointError::UnknownConnection => EResult::InvalidParam,
            EndpointError::Ids(_) => EResult::Fail,
            EndpointError::Conn(c) => c.into(),
            // A cause added to the engine later: GNS's catch-all.
            _ => EResult::Fail,
        }
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
        assert_eq!(EResult::Busy.code(), 10);
        assert_eq!(EResult::AccessDenied.code(), 15);
        assert_eq!(EResult::Timeout.code(), 16);
        assert_eq!(EResult::IpNotFound.code(), 31);
        assert_eq!(EResult::NoMatch.code(), 42);
        assert_eq!(
            EResult::from(ConnError::NoConnection),
            EResult::NoConnection
        );
        assert_eq!(
            EResult::from(SendError::LimitExceeded),
            EResult::LimitExceeded
        );
    }
}
