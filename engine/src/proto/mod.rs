//! The sans-I/O connection core: pure, deterministic building blocks of GNS's SNP layer.
//!
//! Everything here takes time as a [`crate::time::Timestamp`] argument and never touches
//! sockets, threads, the clock or an unseeded RNG. Each submodule is one small data structure
//! the connection state machine is assembled from:
//!
//! ```text
//!  send side                                receive side
//!  ---------                                ------------
//!  lanes       which lane sends next (WFQ)  reassembly    unreliable fragments -> messages
//!  send_rate   token bucket pacing          recv_stream   reliable byte stream per lane
//!  sent_packets in-flight table, acks, loss  recv_packets  gaps to ack, ack/NACK deadlines
//!  rtt         RFC 6298 RTT and RTO
//!  congestion  CUBIC window
//!  queue_delay standing-queue signal
//!  ping        GNS's reported ping
//!  quality     end-to-end stats reports (receive quality, both ways)
//!
//!  p2p         rendezvous signaling of P2P connections: routing, retries, reliable ICE stream
//!  ice         the native ICE client (STUN/TURN, candidates, checks) for P2P connections
//! ```

// Every byte here comes from a peer: the protocol core stays safe Rust, enforced.
#![forbid(unsafe_code)]

pub mod admission;
pub(crate) mod challenge;
pub(crate) mod congestion;
pub mod connection;
pub mod end_reason;
pub mod endpoint;
pub mod fake_net;
pub mod handshake;
pub mod ice;
pub mod ids;
pub(crate) mod lanes;
pub(crate) mod lazy_queue;
pub mod p2p;
pub(crate) mod ping;
pub mod quality;
pub(crate) mod queue_delay;
pub(crate) mod reassembly;
pub(crate) mod recv_packets;
pub(crate) mod recv_stream;
pub(crate) mod rtt;
pub(crate) mod send_rate;
pub(crate) mod sent_packets;
pub(crate) mod seq_map;
pub mod snp;
pub mod timer_wheel;
