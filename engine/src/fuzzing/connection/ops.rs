//! What one run of the stateful target is made of: its fixed [`Setup`] and its [`Op`]s,
//! decoded from the fuzzer's bytes.

use arbitrary::{Arbitrary, Unstructured};

/// Settings fixed for one run.
#[derive(Debug, Clone, Arbitrary)]
pub struct Setup {
    /// Seeds keys, connection ids and the simulator.
    pub seed: u8,
    /// One-way delay of the simulated link, ms.
    pub delay_ms: u8,
    /// Simulator loss, percent (mod 40).
    pub loss: u8,
    /// Simulator reordering, percent (mod 40).
    pub reorder: u8,
    /// Simulator duplication, percent (mod 40).
    pub dup: u8,
    /// Simulator byte corruption, percent (mod 40).
    pub corrupt: u8,
    /// Drain received messages after every step (else only `Op::Poll` does, so the receive
    /// queue fills and throttles the peer).
    pub auto_poll: bool,
    /// `SnpConfig::coalesce_reliable`.
    pub coalesce_reliable: bool,
    /// `MTU_PacketSize`, mapped onto 200..=1300.
    pub mtu: u8,
}

/// One step of the run. Sides: `server` false is the client.
#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    /// Application send of `len % 4096` bytes on lane `lane % 8`; `flags` bits pick NoNagle
    /// (1), NoDelay (4) and Reliable (8), GNS's values.
    Send {
        /// Sending side.
        server: bool,
        /// Lane (mod 8).
        lane: u8,
        /// Send flags (masked).
        flags: u8,
        /// Length (mod 4096).
        len: u16,
    },
    /// A message of `kib` KiB + 1 byte: fragmented unreliable up to 16500 bytes, reliable
    /// above.
    SendLarge {
        /// Sending side.
        server: bool,
        /// Lane (mod 8).
        lane: u8,
        /// Reliable flag.
        reliable: bool,
        /// Size in KiB.
        kib: u8,
    },
    /// Deliver one datagram from the wire (any one: reordering).
    Deliver {
        /// Wire index (mod length).
        index: u8,
    },
    /// Deliver everything on the wire, in order.
    DeliverAll,
    /// Lose one datagram.
    Drop {
        /// Wire index (mod length).
        index: u8,
    },
    /// Deliver a copy of one datagram, keeping it on the wire.
    Duplicate {
        /// Wire index (mod length).
        index: u8,
    },
    /// Swap two datagrams on the wire.
    Swap {
        /// Wire index (mod length).
        a: u8,
        /// Wire index (mod length).
        b: u8,
    },
    /// Take one datagram off the wire, optionally truncate it, flip bits of one byte, and
    /// deliver it.
    Mangle {
        /// Wire index (mod length).
        index: u8,
        /// New length, if shorter.
        truncate: Option<u16>,
        /// Byte to flip (mod length).
        pos: u16,
        /// Bits to flip (0 means 1).
        xor: u8,
    },
    /// Deliver again a datagram delivered earlier.
    Replay {
        /// History index (mod length).
        index: u8,
    },
    /// Deliver arbitrary bytes to one side, from its peer's address.
    Forge {
        /// Receiving side.
        server: bool,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// Advance virtual time by `ms`, running timers (datagrams they emit stay on the wire).
    Advance {
        /// Milliseconds.
        ms: u16,
    },
    /// Put the wire on the simulated network and run it for `ms` (link as in [`Setup`]).
    Settle {
        /// Milliseconds (mod 10 000).
        ms: u16,
    },
    /// Receive up to `max` messages on one side.
    Poll {
        /// Receiving side.
        server: bool,
        /// How many.
        max: u8,
    },
    /// `FlushMessagesOnConnection`.
    Flush {
        /// Side.
        server: bool,
    },
    /// `CloseConnection`.
    Close {
        /// Side.
        server: bool,
        /// Linger until reliable data is acked.
        linger: bool,
        /// Reason code (normalised as GNS does).
        reason: u16,
    },
    /// `SendRateMin` / `SendRateMax`, in KiB/s above 16.
    SendRate {
        /// Side.
        server: bool,
        /// Minimum rate.
        min_kib: u8,
        /// Maximum rate.
        max_kib: u8,
    },
    /// Buffer limits, in KiB (and messages).
    Buffers {
        /// Side.
        server: bool,
        /// `SendBufferSize`.
        send_kib: u16,
        /// `RecvBufferSize`.
        recv_kib: u16,
        /// `RecvBufferMessages`.
        recv_msgs: u16,
        /// `RecvMaxMessageSize`.
        max_msg_kib: u16,
    },
    /// `NagleTime`.
    Nagle {
        /// Side.
        server: bool,
        /// Milliseconds.
        ms: u8,
    },
    /// `ConfigureConnectionLanes`: `count` lanes, priorities from 2-bit fields, weights from
    /// 4-bit fields (0 is invalid on purpose).
    Lanes {
        /// Side.
        server: bool,
        /// Lane count.
        count: u8,
        /// 2-bit priorities.
        priorities: u32,
        /// 4-bit weights.
        weights: u32,
    },
}

/// Decodes a [`Setup`] and up to 256 operations from `data` (missing bytes read as zeros).
pub fn decode(data: &[u8]) -> Option<(Setup, Vec<Op>)> {
    let mut u = Unstructured::new(data);
    let setup = Setup::arbitrary(&mut u).ok()?;
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < 256 {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    Some((setup, ops))
}
