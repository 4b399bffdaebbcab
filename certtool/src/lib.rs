//! `sockworks-cert`: a certificate authority for Sockworks and GameNetworkingSockets peers,
//! in GNS's own formats (spec `gns-p2p-certs.md` §2), so nothing on the wire changes.
//!
//! ```text
//!   gen-ca ──► ca.key (0600) + ca.key.pub ─────────────┐
//!   gen-key ─► key.pem ──► request ──► req.pem ──┐      │ (trusted by peers)
//!                                                ▼      ▼
//!                  issue --ca-key ca.key --request req.pem --identity str:...
//!                  serve --ca-key ca.key --tokens tokens.txt  (POST /v1/sign)
//!                                                │
//!                                                ▼
//!                  cert.pem (STEAMDATAGRAM CERT) ──► inspect, revoke ──► revoked.txt
//! ```
//!
//! The signing, key ids and PEM formats are the engine's (`sockworks_engine::crypto::{ca,
//! pem}`); this crate adds the command line ([`cli`], [`commands`]), the checks a CA must make
//! ([`identity_rules`], [`issuance`]), careful file handling ([`files`]), exact times
//! ([`unixtime`]), the revocation list ([`revocation`]) and the HTTP service ([`serve`]).

pub mod cli;
pub mod clock;
pub mod commands;
pub mod files;
pub mod identity_rules;
pub mod issuance;
pub mod revocation;
pub mod serve;
pub mod unixtime;
