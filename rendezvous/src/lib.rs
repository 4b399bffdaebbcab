//! A signaling service for `ConnectP2P` by identity (GNS spec §3.8): GNS's P2P connections
//! exchange opaque "signals" through a channel the application provides; Sockworks ships this
//! one. Peers register with the service under their GNS identity (`str:alice`,
//! `steamid:…`), and the service relays signals between registered peers. Signals are
//! best-effort datagrams, as GNS expects of any signaling channel: loss, duplication and
//! reordering are tolerated by the P2P protocol above.
//!
//! - [`client`]: [`RendezvousClient`], one background thread and UDP socket per local identity;
//!   `send_signal` is what a GNS `SendSignal` callback calls, received signals arrive on a
//!   channel to feed `ReceivedP2PCustomSignal`.
//! - [`server`]: the service's sans-I/O state machine; the `sockworks-rendezvous` binary runs it
//!   on a UDP socket.
//! - [`wire`]: the datagram codec; [`auth`]: certificate proof; [`cookie`]: stateless cookies.
//! - [`fakeip`]: the FakeIP allocation table; [`state`]: its state file (`--fakeip-state`).
//!
//! # Protocol (version 1, UDP)
//!
//! Every datagram starts with `'S' 'R' VERSION type`; integers are little-endian; see
//! [`wire`] for field encodings and limits (identity ≤ 127 bytes, payload ≤ 4096 bytes,
//! certificate ≤ 2048 bytes).
//!
//! | type | name | direction | body |
//! |---|---|---|---|
//! | 1 | Hello | peer → service | zero padding to 16 bytes |
//! | 2 | Challenge | service → peer | cookie u64, auth_required u8 |
//! | 3 | Register | peer → service | cookie u64, identity str8, cert bytes16, signature bytes8 |
//! | 4 | RegisterOk | service → peer | session u64, interval_secs u16, ttl_secs u16 |
//! | 5 | RegisterRefused | service → peer | reason u8 ([`wire::RefuseReason`]) |
//! | 6 | Refresh | peer → service | session u64, 4 reserved bytes |
//! | 7 | Signal | peer → service | session u64, to str8, payload bytes16 |
//! | 8 | Deliver | service → peer | from str8, payload bytes16 |
//! | 9 | UnknownPeer | service → peer | to str8 |
//! | 10 | UnknownSender | service → peer | (none) |
//! | 11 | Unregister | peer → service | session u64 |
//! | 12 | FakeIpRequest | peer → service | session u64, num_ports u8 (1-4), 4 reserved bytes |
//! | 13 | FakeIpGranted | service → peer | ip 4 bytes, port count u8, ports u16 each |
//! | 14 | FakeIpRefused | service → peer | reason u8 ([`wire::FakeIpRefuseReason`]) |
//!
//! ```text
//!  peer                                  service
//!   | Hello (padded) ---------------------> |  no state kept
//!   | <------------- Challenge(cookie, auth) |  cookie = keyed hash(source address, time)
//!   | Register(cookie, identity,            |
//!   |          [cert, sig(cookie,identity)])|  cookie checked, then the certificate (if a CA
//!   | <--- RegisterOk(session, interval, ttl)|  is configured): only now is state created
//!   |                                       |
//!   | Signal(session, to, payload) -------> |  accepted only from the registered address with
//!   |                                       |  its session; rate-limited per peer
//!   |            target <-- Deliver(from, payload)   from = the identity the service holds
//!   | <--------- UnknownPeer(to)            |  if `to` is not registered
//!   | Refresh(session) every interval ----> |  extends the registration (TTL)
//!   | <--------- RegisterOk | UnknownSender |  UnknownSender: register again (e.g. restart)
//!   | Unregister(session) ----------------> |  on client shutdown
//! ```
//!
//! Rules that hold for every message:
//! - **No amplification**: a reply to an address that holds no registration is never larger
//!   than the datagram that caused it (Hello is padded; Challenge, RegisterRefused,
//!   UnknownSender and RegisterOk fit within what they answer). FakeIpRequest is padded to the
//!   size of the largest grant, so no reply outgrows its request.
//! - **No state before proof**: the cookie makes the service stateless until a Register
//!   echoes it from the address it was issued to (within 4 s).
//! - **Sender identity from the service**: Deliver names the identity registered at the
//!   Signal's source address (and session), never one the packet claims.
//! - **Bounded memory**: at most `max_peers` registrations (beyond: `Full`), each bounded by the
//!   identity limit; registrations not refreshed within the TTL are swept. At most
//!   `max_fakeips` FakeIP allocations (beyond: `FakeIpRefused(Full)` for new identities), and
//!   at most 1,024 requests waiting for a save.
//! - **Restartable**: registrations are not kept on disk. Peers refresh every interval; a
//!   restarted service answers UnknownSender and the peer registers again at once. FakeIP
//!   allocations are kept in the `--fakeip-state` file when one is given (see below).
//! - **Malformed input** is dropped and counted; it never panics.
//!
//! # FakeIP
//!
//! A registered peer may ask for a global FakeIP (GNS's `BeginAsyncRequestFakeIP`): an address
//! in 169.254.1.0–169.254.191.255 with 1 to 4 ports above 1024, bound to its identity. The
//! same identity gets the same address and ports every time (asking for more ports adds
//! some). A Signal whose target is `ip:169.254.x.y:port` (GNS carries FakeIPs so, in
//! `to_identity`) is delivered to the identity owning that address and port; an unknown FakeIP
//! gets UnknownPeer like an unknown identity. Nobody may register *as* a FakeIP.
//!
//! ```text
//!   | FakeIpRequest(session, 2) ----------> |  allocate or find, bounded by --max-fakeips
//!   |                                       |  (--fakeip-state: saved to disk first)
//!   | <------ FakeIpGranted(169.254.7.9,    |
//!   |              [40312, 2210])           |  or FakeIpRefused(Full | BadRequest)
//!   | Signal(session, "ip:169.254.7.9:2210", payload)  ─► Deliver to the owner
//! ```
//!
//! Allocations never expire. Without `--fakeip-state` they live in memory only; with it,
//! the table is loaded at start and rewritten atomically (temporary file, fsync, rename)
//! whenever it changed, at most every 200 ms, and a new allocation is granted only once it is
//! on disk (the peer's retries pick it up), so a restart never hands a granted FakeIP to
//! another identity.
//!
//! With a CA configured, Register carries the peer's CA-signed certificate (as
//! `sockworks-cert issue` writes it) and an Ed25519 signature by its key over the cookie and
//! identity ([`auth::register_message`]); the certificate must name exactly that identity.
//! Without a CA, any peer may claim any identity (the service logs this at start).

pub mod auth;
pub mod client;
pub mod clock;
pub mod cookie;
pub mod fakeip;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod server;
pub mod state;
pub mod wire;

pub use auth::{ClientAuth, Verifier};
pub use client::{ClientConfig, FakeIpFailure, Incoming, RendezvousClient};
pub use server::{Service, ServiceConfig, Stats};

/// The service's default UDP port.
pub const DEFAULT_PORT: u16 = 27200;
