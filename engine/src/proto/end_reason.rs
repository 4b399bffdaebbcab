//! `ESteamNetConnectionEnd` values (spec §5.3): why a connection ended, as the `u32` GNS puts
//! in ConnectionClosed and reports to the application.
//!
//! The codes serve the whole connection (handshake failures, timeouts, application closes),
//! so they live here rather than in `handshake`. GNS's ranges: 1000..=1999 application,
//! 2000..=2999 application exception, 3000.. local problems, 4000.. remote problems,
//! 5000.. misc.

/// Application closed normally.
pub const APP_GENERIC: u32 = 1000;
/// Highest application reason.
pub const APP_MAX: u32 = 1999;
/// Application exception range start.
pub const APP_EXCEPTION_GENERIC: u32 = 2000;
/// Highest application exception reason.
pub const APP_EXCEPTION_MAX: u32 = 2999;
/// Remote timed out (as reported by the remote).
pub const REMOTE_TIMEOUT: u32 = 4001;
/// Crypto negotiation or key failure.
pub const REMOTE_BAD_CRYPT: u32 = 4002;
/// Certificate rejected.
pub const REMOTE_BAD_CERT: u32 = 4003;
/// Incompatible protocol version.
pub const REMOTE_BAD_PROTOCOL_VERSION: u32 = 4006;
/// Generic failure.
pub const MISC_GENERIC: u32 = 5001;
/// Internal error (e.g. a peer's packet failed to decode).
pub const MISC_INTERNAL_ERROR: u32 = 5002;
/// Timed out.
pub const MISC_TIMEOUT: u32 = 5003;
/// The peer told us it has no such connection.
pub const MISC_PEER_SENT_NO_CONNECTION: u32 = 5010;
/// `k_ESteamNetConnectionEnd_Misc_P2P_Rendezvous`: a P2P route never came (FindingRoute timed out).
pub const MISC_P2P_RENDEZVOUS: u32 = 5008;
