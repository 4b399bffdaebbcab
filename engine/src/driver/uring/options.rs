//! The io_uring driver's knobs and counters.

/// Sizes of the ring and buffers.
#[derive(Debug, Clone, Copy)]
pub struct UringOptions {
    /// Submission queue entries, 8..=4096. All but two are send slots: the most sends in
    /// flight at once (a GSO send carries up to 64 datagrams).
    pub sq_entries: u32,
    /// Provided receive buffers (a power of two, 1..=32768). When they are all waiting to be
    /// copied out, the multishot receive pauses until `recv_batch` returns some. With GRO each
    /// is 64 KiB of address space (pages are touched only as far as datagrams fill them).
    pub rx_buffers: u16,
    /// SO_RCVBUF / SO_SNDBUF in bytes (`None`: the system default, ~200 KiB, which drops
    /// bursts long before the shard reads them).
    pub socket_buffer: Option<usize>,
    /// Send equal-size runs to one peer as one UDP GSO message where the kernel allows it.
    pub gso: bool,
    /// Enable UDP GRO on receive (64 KiB receive buffers instead of one datagram's worth).
    pub gro: bool,
}

impl Default for UringOptions {
    fn default() -> Self {
        UringOptions {
            sq_entries: 256,
            rx_buffers: 256,
            socket_buffer: Some(4 << 20),
            gso: true,
            gro: true,
        }
    }
}

/// Counters for tuning `rx_buffers` (plain integers: one shard, one thread).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UringStats {
    /// Times the multishot receive was armed again after it ended.
    pub rearms: u64,
    /// Times it ended because every buffer was loaned out (`-ENOBUFS`).
    pub enobufs: u64,
    /// Completions dropped as malformed (bad buffer id, unparsable header or address).
    pub dropped: u64,
    /// Sends submitted with UDP_SEGMENT (each carried 2..=64 datagrams).
    pub gso_sends: u64,
    /// Received GRO super-datagrams (more than one segment).
    pub gro_coalesced: u64,
    /// Datagrams reported sent whose send then failed (full buffer, unreachable peer, a GSO
    /// send the path refused): lost, as on the network.
    pub send_failures: u64,
}
