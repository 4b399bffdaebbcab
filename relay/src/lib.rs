//! Sockworks' own relay for hosted dedicated servers, in place of Valve's Steam Datagram Relay
//! (GNS spec §5): relays at points of presence forward end-to-end encrypted GNS packets between
//! clients and hosted game servers without decrypting them. Each session is authorised by a
//! signed relay auth ticket ([`ticket`]); the server's address travels only sealed in the
//! ticket's routing blob ([`routing`]), which only the fleet's relays can open, so clients never
//! learn it, and floods hit the relays rather than the servers.
//!
//! ```text
//!  client ──(Hello{ticket})──────► relay            verifies the ticket (Ed25519, CA key id,
//!         ◄─(Welcome{id,token})──                    expiry), opens the routing blob
//!  client ──Data{id,token,GNS}──► relay ──GNS────► server   one relay socket per session:
//!         ◄─Data{id,token,GNS}──       ◄─GNS─────           the server sees only the relay
//! ```
//!
//! - [`ticket`]: [`RelayAuthTicket`] (GNS's `SteamDatagramRelayAuthTicket` fields and limits),
//!   [`ticket::sign`] / [`ticket::verify`].
//! - [`routing`]: the hosted address blob: POP code ‖ AES-256-GCM(server address).
//! - [`wire`]: the client ↔ relay datagrams (table there), with [`wire::encode_data`] /
//!   [`wire::decode_data`] for the client side.
//! - [`server`]: the relay's sans-I/O state ([`Relay`]); [`io`]: its epoll + recvmmsg /
//!   sendmmsg loop; [`shards`]: one loop per thread, with the kernel steering each session's
//!   datagrams to its shard, which the `sockworks-relay` binary runs (`--threads`).
//!
//! Rules that hold for every datagram:
//! - **No amplification**: a reply to an unauthenticated datagram is never larger than it
//!   (Hellos shorter than a Welcome get nothing; Pong < Ping).
//! - **No state before proof**: a session exists only after its ticket verifies; Ed25519
//!   checks are budgeted relay-wide, and per ticket there is one live session.
//! - **Authenticated addresses**: the client address of a session changes only through Data
//!   carrying the session's id and token; the server socket accepts only the server.
//! - **Bounded**: at most `max_sessions` sessions, each a fixed-size record and one socket;
//!   idle sessions expire; nothing is queued.

pub mod clock;
pub mod io;
pub mod login;
pub mod routing;
pub mod server;
pub mod shards;
pub mod stats;
pub mod ticket;
/// The client ↔ relay datagrams, in the engine (whose endpoint speaks them as a client).
pub use sockworks_engine::wire::relay as wire;

pub use routing::RoutingKey;
pub use server::{ClientAction, Relay, RelayConfig, Stats};
pub use ticket::{ExtraField, ExtraValue, RelayAuthTicket, TicketError};

/// The relay's default UDP port.
pub const DEFAULT_PORT: u16 = 27300;
