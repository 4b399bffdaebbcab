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
//! - [`proto`]: the sans-I/O protocol core: handshake, connection state machine, SNP (reliable
//!   and unreliable messages, lanes, acks, pacing), endpoint routing, fake network conditions.
//! - [`entropy`]: secret seeds from the OS, apart from the seeded generator of public values.
//! - [`blocking`]: the endpoint over one blocking UDP socket (tools and interop tests).
//! - `testing` (feature `testing`): the seeded network simulator and a two-endpoint harness.
//!
//! The batched I/O drivers and the thread-per-core shards come next (see `DESIGN.md`).

// `unsafe` lives only in the I/O drivers (syscalls), each block with a `// SAFETY:` line.
#![deny(unsafe_code)]

pub mod blocking;
pub mod buffers;
pub mod crypto;
pub mod datagram;
pub mod driver;
pub mod entropy;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod proto;
pub mod shard;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod wire;
