//! The pieces of `loadgen` that other load tools share, so that every client and server in a
//! comparison measures the same way:
//!
//! - [`load::probe`]: the echo payload (connection index, sequence number, send time, then a
//!   deterministic pattern), checked byte for byte;
//! - [`load::tally`]: per-connection accounting of a windowed echo load (received, lost,
//!   duplicated, reordered, corrupted, RTT);
//! - [`load::client`]: the client loop, generic over a [`load::client::Transport`] (real GNS
//!   in `gns-load`, Sockworks in `loadgen`);
//! - [`load::result`]: the one-line `RESULT key=value ...` report and its parser;
//! - [`echo`]: the Sockworks echo server on the public `sockworks` API (`loadgen --serve`).
//!
//! ```text
//!   gns-load client ─┐                         ┌─ gns-load serve   (real GNS)
//!   loadgen (in-proc)┴─ probes ══ UDP ══ echoes┴─ loadgen --serve (Sockworks)
//! ```

pub mod echo;
pub mod load;
