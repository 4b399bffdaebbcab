//! Connection states (spec §5.1) and the status-change event the application sees.

/// Internal connection state, with GNS's `ESteamNetworkingConnectionState` values. The three
/// negative states look like [`ApiState::None`] to the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Client handshaking, or server waiting for the application to accept.
    Connecting,
    /// P2P only: crypto done over signals, waiting for a route (ICE) and the first packet
    /// that proves it end to end.
    FindingRoute,
    /// Handshake done; data flows.
    Connected,
    /// The peer closed; the application must still close its end.
    ClosedByPeer,
    /// Timeout, crypto failure or protocol error here; the application must still close.
    ProblemDetectedLocally,
    /// Closed by the application; answers stray packets for 5 s.
    FinWait,
    /// Closed by the application with linger: still sends until reliable data is acked.
    Linger,
    /// Gone; the endpoint frees it.
    Dead,
}

impl State {
    /// GNS's numeric value (negative for internal states).
    pub fn code(self) -> i32 {
        match self {
            State::Connecting => 1,
            State::FindingRoute => 2,
            State::Connected => 3,
            State::ClosedByPeer => 4,
            State::ProblemDetectedLocally => 5,
            State::FinWait => -1,
            State::Linger => -2,
            State::Dead => -3,
        }
    }

    /// The state as the application sees it.
    pub fn api(self) -> ApiState {
        match self {
            State::Connecting => ApiState::Connecting,
            State::FindingRoute => ApiState::FindingRoute,
            State::Connected => ApiState::Connected,
            State::ClosedByPeer => ApiState::ClosedByPeer,
            State::ProblemDetectedLocally => ApiState::ProblemDetectedLocally,
            State::FinWait | State::Linger | State::Dead => ApiState::None,
        }
    }
}

/// `ESteamNetworkingConnectionState` as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiState {
    /// No connection (or closed by the application).
    None = 0,
    /// Handshaking / waiting for accept.
    Connecting = 1,
    /// P2P only; never for UDP.
    FindingRoute = 2,
    /// Connected.
    Connected = 3,
    /// The peer closed.
    ClosedByPeer = 4,
    /// A local problem ended it.
    ProblemDetectedLocally = 5,
}

impl ApiState {
    /// The state with discriminant `code` (`None` for any other number), for threads that
    /// share a state through an atomic integer.
    pub fn from_code(code: i32) -> ApiState {
        [
            ApiState::Connecting,
            ApiState::FindingRoute,
            ApiState::Connected,
            ApiState::ClosedByPeer,
            ApiState::ProblemDetectedLocally,
        ]
        .into_iter()
        .find(|s| *s as i32 == code)
        .unwrap_or(ApiState::None)
    }
}

/// A change of the API-visible state, queued for the application's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// State before.
    pub old: ApiState,
    /// State now.
    pub new: ApiState,
    /// `ESteamNetConnectionEnd` once ended, else 0.
    pub end_reason: u32,
    /// Debug text of the end reason.
    pub end_debug: String,
}
