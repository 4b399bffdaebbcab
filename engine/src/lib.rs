//! Sockworks engine: a GNS-wire-compatible protocol core and the thread-per-core runtime that
//! carries it.
//!
//! Data flows `driver -> shard -> proto -> shard -> driver`: a shard receives a batch of
//! datagrams from its driver, hands them to its endpoint, and sends what the endpoint polls
//! out as one batch. The modules, each depending only on the ones above it in this list (test
//! code aside):
//!
//! - [`time`]: [`time::Timestamp`], microseconds passed in by the caller; nothing here reads the
//!   OS clock except [`shard::Clock`].
//! - [`wire`]: pure codecs for everything GNS puts in a UDP datagram: the lead byte, control
//!   messages (protobuf), the data-packet header, SNP frames. Total decoders: malformed input
//!   is a typed error, never a panic.
//! - [`crypto`]: X25519 / Ed25519 handshake material, certificates, the GNS key schedule, and
//!   AES-256-GCM (or NULL) packet protection behind one small trait.
//! - [`entropy`]: secret seeds from the OS, apart from the seeded generator of public values.
//! - [`buffers`]: the process-wide pool of message buffers (taken on a shard, returned from
//!   any thread).
//! - [`proto`]: the sans-I/O protocol core: handshake, connection state machine, SNP (reliable
//!   and unreliable messages, lanes, acks, pacing), loss recovery and congestion control,
//!   endpoint routing, timers, fake network conditions.
//! - [`driver`]: the batch I/O contract a shard runs on and its backends: `mmsg`
//!   (recvmmsg / sendmmsg with GSO / GRO, the default), `uring` (feature `uring`), `loopback`
//!   (in memory), `set` (a changing set of sockets for the API), and `steering` (the
//!   SO_REUSEPORT BPF program that sends a data packet to its connection's shard).
//! - [`shard`]: the thread-per-core runtime: one thread per shard owning its endpoint, driver
//!   and batches, fed by a lock-free mailbox; [`shard::Runtime`] starts and stops a set of them.
//! - [`blocking`]: the endpoint over one blocking UDP socket (tools and interop tests).
//! - `testing` (feature `testing`): the seeded network simulator and a two-endpoint harness.
//!
//! How the pieces run together is in `docs/design.md`. A `spec §x.y` in a comment means section
//! x.y of `docs/wire.md`, the GNS wire protocol as Sockworks implements it.

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
