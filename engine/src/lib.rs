//! Sockworks engine: a GNS-wire-compatible protocol core and (later) its thread-per-core runtime.
//!
//! Data flows `driver -> shard -> proto -> shard -> driver`. This crate grows in layers, each
//! depending only on the ones above it in this list:
//!
//! - [`time`]: [`time::Timestamp`], microseconds passed in by the caller; nothing here reads the
//!   OS clock.
//! - [`wire`]: pure codecs for everything GNS puts in a UDP datagram: the lead byte, control
//!   messages (protobuf), the data-packet header, SNP frames. Total decoders: malformed input
//!   is a typed error, never a panic.
//! - [`crypto`]: X25519 / Ed25519 handshake material, the GNS key schedule, and AES-256-GCM
//!   packet sealing in place and in batches behind one small trait.
//!
//! The sans-I/O connection state machine (`proto`), the I/O drivers and the shards come next
//! (see the issues and `DESIGN.md`).

#![forbid(unsafe_code)]

pub mod crypto;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod proto;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod wire;
