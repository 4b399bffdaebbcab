//! A sans-I/O ICE agent wire-compatible with GNS 1.6's native ICE client (spec
//! `gns-p2p-certs.md` §4), where GNS's deviations from RFC 8445/5389 win.
//!
//! ```text
//!  stun       STUN codec: framing, MESSAGE-INTEGRITY, FINGERPRINT, GNS's demux rule
//!  cred       5-character ufrag/password (Base64EncodeLower30Bits)
//!  candidate  kinds, GNS type bits and ICE_Enable mask, classification, candidate lines
//!  retransmit the 5-send STUN request schedule
//!  agent      IceAgent: the public session API
//!  checklist  pairs, checks, nomination, selection
//!  gather     server-reflexive discovery and keepalive
//!  turn       TURN allocation, permissions, Send/Data indications
//! ```
//!
//! Roles are the caller's concern: GNS makes the acceptor controlling.

pub mod agent;
pub mod candidate;
mod checklist;
pub mod cred;
mod gather;
mod retransmit;
pub mod stun;
mod turn;

#[cfg(test)]
mod tests;

pub use agent::{
    ICE_CLOSE_ABORTED, ICE_CLOSE_USER_NOT_ENABLED, IceAgent, IceConfig, IceError, IceEvent,
    LocalInterface, TurnServer,
};
pub use candidate::{Candidate, CandidateError, CandidateKind, CandidateTypes};
pub use stun::{StunError, is_stun, transaction_id, username_local_ufrag};
