//! Codecs for GNS's UDP wire format (spec `docs/wire.md` §1, §2.7-2.9, §4.2-4.10).
//!
//! Pure functions over byte slices: no I/O, no clock, no `unsafe`. Decoders borrow from the
//! input and never allocate more than the input justifies; every decoder returns a small
//! `Copy` error naming what was wrong, so the caller can drop and count the packet.
//!
//! ```text
//!  datagram ──► packet::classify (lead byte)
//!                 ├─ 0x80.. data  ──► header::DataHeader ──► crypto (open) ──► frame::FrameDecoder
//!                 └─ 32..37 control ─► control::ControlMessage (protobuf, proto::*)
//!  P2P signal (any transport) ──► rendezvous::P2pRendezvous (protobuf)
//!  'S' 'Y' from a relay of ours ──► relay::Message (session set-up, framed GNS packets)
//! ```

// Decoders run on every byte a peer sends: keep them safe Rust, enforced (not just by habit).
#![forbid(unsafe_code)]

pub mod control;
pub mod fakeip;
pub mod frame;
pub mod header;
pub mod identity;
pub mod packet;
pub mod pktnum;
pub mod proto;
pub mod relay;
pub mod rendezvous;
pub mod varint;
