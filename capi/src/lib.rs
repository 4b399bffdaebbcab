//! `libGameNetworkingSockets` over Sockworks: the exported functions and objects of Valve's
//! GameNetworkingSockets 1.6 public headers, so a C, C++, C# or Python program built against
//! GNS runs on Sockworks by swapping the shared library.
//!
//! ```text
//!  C / ctypes / C#  ── SteamAPI_ISteamNetworkingSockets_* (flat, extern "C") ──┐
//!  C++ ── SteamNetworkingSockets() ─► object whose vtable points at the same ──┤
//!                                     functions (Itanium ABI: `this` first)   ▼
//!                                                 sockworks::Sockets (one per process)
//! ```
//!
//! Every exported function runs inside [`guard::guard`]: a panic never unwinds into C, it
//! returns the call's documented failure value. Pointers from C are checked for null; sizes
//! and string lengths are bounded by what the caller said.

#![allow(
    non_snake_case,
    non_camel_case_types,
    non_upper_case_globals,
    reason = "exported names and struct layouts are GNS's C names, kept verbatim"
)]

pub mod addr;
pub mod auth;
mod auth_env;
pub mod callbacks;
pub mod config;
pub mod debug;
pub mod fakeip;
pub mod guard;
pub mod identity;
pub mod instance;
pub mod introspect;
pub mod layout;
pub mod message;
pub mod networking_messages;
pub mod p2p;
pub mod signaling;
pub mod sockets;
pub mod types;
pub mod unsupported;
pub mod utils;
pub mod vtable;
