//! Known-answer tests from two handshake transcripts captured from real GNS 1.6
//! (`testdata/gns-handshake-*.json`, copied from `shared/spec/vectors`; see its README).
#![allow(
    clippy::unwrap_used,
    missing_docs,
    reason = "test binary: a failed unwrap is a failed test, and nothing here is public API"
)]

mod control;
mod crypto;
mod frames;
mod support;
