//! Kernel-side packet steering: a classic BPF program attached with
//! `SO_ATTACH_REUSEPORT_CBPF` to a SO_REUSEPORT group, so a data packet reaches the shard named
//! in its receiver connection id without a hop between shards (docs/design.md "Packet
//! steering").
//!
//! The kernel runs a reuseport program on the UDP payload: `reuseport_select_sock` is called
//! with the UDP header length and pulls the skb past it before running the filter, so offset
//! 0 is the lead byte and `len` is the payload length. The return value indexes the group's
//! sockets in the order they joined (bind order); an index past the end makes the kernel fall
//! back to its 4-tuple hash, which is what control packets (handshakes) want.
//!
//! ```text
//!  payload: [lead][ id: u32 little-endian ][...]    shard = (id >> 16) & mask = byte 3 & mask
//!   0: ld  len              ; short packet?
//!   1: jge #5, 2, 7
//!   2: ldb [0]              ; data packets have the high bit set
//!   3: jge #0x80, 4, 7
//!   4: ldb [3]              ; bits 16..23 of the id
//!   5: and #mask
//!   6: ret a
//!   7: ret #0xffffffff      ; not ours: kernel hash
//! ```
//!
//! A classic BPF absolute load past the end aborts the program with 0, which would pick
//! socket 0, hence the explicit length check first.

#![allow(
    unsafe_code,
    reason = "setsockopt of a classic BPF program; each block has a SAFETY note"
)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Most shard bits a connection id carries (see `proto::ids`).
pub const MAX_SHARD_BITS: u32 = 8;
/// What the program returns for packets the kernel should place by its hash.
pub const FALLBACK: u32 = u32::MAX;

/// Classic BPF opcode parts (`linux/filter.h`), for the programs built here and by other
/// reuseport groups (the relay's shards).
pub mod bpf {
    #![allow(
        missing_docs,
        reason = "the kernel's names, documented in linux/filter.h"
    )]
    pub const LD: u16 = 0x00;
    pub const W: u16 = 0x00;
    pub const B: u16 = 0x10;
    pub const ABS: u16 = 0x20;
    pub const IND: u16 = 0x40;
    pub const LEN: u16 = 0x80;
    pub const ALU: u16 = 0x04;
    pub const ADD: u16 = 0x00;
    pub const LSH: u16 = 0x60;
    pub const AND: u16 = 0x50;
    pub const MOD: u16 = 0x90;
    pub const JMP: u16 = 0x05;
    pub const JEQ: u16 = 0x10;
    pub const JGE: u16 = 0x30;
    pub const K: u16 = 0x00;
    pub const X: u16 = 0x08;
    pub const RET: u16 = 0x06;
    pub const A: u16 = 0x10;
    pub const MISC: u16 = 0x07;
    pub const TAX: u16 = 0x00;

    /// One instruction.
    pub fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }
}

use bpf::insn;

/// Offset of the receiver connection id in a data packet (after the lead byte).
const ID_OFFSET: u32 = 1;

/// The steering program for `1 << shard_bits` shards; an error for more than
/// [`MAX_SHARD_BITS`].
pub fn program(shard_bits: u32) -> io::Result<Vec<libc::sock_filter>> {
    if shard_bits > MAX_SHARD_BITS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "shard_bits exceeds the bits a connection id reserves",
        ));
    }
    let mask = (1u32 << shard_bits) - 1;
    Ok(vec![
        insn(bpf::LD | bpf::W | bpf::LEN, 0, 0, 0),
        insn(bpf::JMP | bpf::JGE | bpf::K, 0, 5, ID_OFFSET + 4),
        insn(bpf::LD | bpf::B | bpf::ABS, 0, 0, 0),
        insn(bpf::JMP | bpf::JGE | bpf::K, 0, 3, 0x80),
        // Little-endian id: byte ID_OFFSET + 2 holds bits 16..23.
        insn(bpf::LD | bpf::B | bpf::ABS, 0, 0, ID_OFFSET + 2),
        insn(bpf::ALU | bpf::AND | bpf::K, 0, 0, mask),
        insn(bpf::RET | bpf::A, 0, 0, 0),
        insn(bpf::RET | bpf::K, 0, 0, FALLBACK),
    ])
}

/// Attaches the steering program to the SO_REUSEPORT group of `socket` (any member will do;
/// the program applies to the whole group). Fails with the kernel's error where reuseport BPF
/// is unsupported (Linux < 4.5, a seccomp filter) or the socket has no SO_REUSEPORT; shards
/// then rely on forwarding misrouted packets.
pub fn attach_steering(socket: BorrowedFd<'_>, shard_bits: u32) -> io::Result<()> {
    attach_program(socket, &mut program(shard_bits)?)
}

/// Attaches any classic BPF `program` to the SO_REUSEPORT group of `socket`: its return value
/// picks the group's socket by bind order; one past the end leaves the datagram to the
/// kernel's 4-tuple hash.
pub fn attach_program(socket: BorrowedFd<'_>, program: &mut [libc::sock_filter]) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "BPF program too long"))?,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `program`, a live array of `len` instructions, for the duration
    // of the call (the kernel copies it); the option length is the exact struct size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&raw const prog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::time::Duration;

    use super::*;
    use crate::driver::mmsg::{MmsgConfig, MmsgDriver};
    use crate::driver::{Driver, RxBatch};
    use crate::proto::ids::IdAllocator;
    use crate::wire::header::DataHeader;

    /// Binds `n` sockets to one port in one reuseport group, in order.
    fn group(n: usize) -> Vec<MmsgDriver> {
        let first =
            MmsgDriver::bind_with("127.0.0.1:0".parse().unwrap(), MmsgConfig::default()).unwrap();
        let addr = first.local_addr().unwrap();
        let mut all = vec![first];
        for _ in 1..n {
            all.push(MmsgDriver::bind_with(addr, MmsgConfig::default()).unwrap());
        }
        all
    }

    /// Which socket of the group each of `count` datagrams arrived on, in arrival order per
    /// socket: (socket index, payload).
    fn collect(socks: &mut [MmsgDriver], count: usize) -> Vec<(usize, Vec<u8>)> {
        let mut got = Vec::new();
        let mut rx = RxBatch::new(64);
        for _ in 0..200 {
            for (i, s) in socks.iter_mut().enumerate() {
                rx.clear();
                let n = s.recv_batch(&mut rx).unwrap();
                got.extend((0..n).map(|k| (i, rx.get(k).unwrap().1.to_vec())));
            }
            if got.len() >= count {
                break;
            }
            socks[0].wait(Some(Duration::from_millis(5))).unwrap();
        }
        got
    }

    /// A data packet as the wire codec writes it, so the program is tested against the real
    /// header layout.
    fn data_packet(id: u32, tag: u8) -> Vec<u8> {
        let mut p = Vec::new();
        DataHeader::new(id, u16::from(tag)).encode(&mut p);
        p.extend_from_slice(&[tag; 20]);
        p
    }

    #[test]
    fn data_packets_land_on_the_shard_in_their_id() {
        for n in 2..=4usize {
            let bits = if n <= 2 { 1 } else { 2 };
            let mut socks = group(n);
            attach_steering(socks[1].as_fd(), bits).expect("reuseport CBPF on this kernel");
            let to = socks[0].local_addr().unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut sent = 0;
            for shard in 0..n as u32 {
                let mut alloc = IdAllocator::new(bits, shard);
                let mut r = 0x9e37_79b9u32.wrapping_mul(shard + 1);
                for k in 0..8u8 {
                    let id = alloc
                        .allocate(|| {
                            r = r.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                            r
                        })
                        .unwrap();
                    assert_eq!(IdAllocator::shard_of(id, bits), shard);
                    client.send_to(&data_packet(id, k), to).unwrap();
                    sent += 1;
                }
            }
            let got = collect(&mut socks, sent);
            assert_eq!(got.len(), sent, "n={n}: every packet arrived once");
            for (sock, p) in got {
                let id = u32::from_le_bytes(p[1..5].try_into().unwrap());
                assert_eq!(
                    sock as u32,
                    IdAllocator::shard_of(id, bits),
                    "n={n} id={id:#x}"
                );
            }
        }
    }

    #[test]
    fn control_and_short_packets_fall_back_to_the_hash() {
        let mut socks = group(3);
        attach_steering(socks[0].as_fd(), 2).expect("reuseport CBPF on this kernel");
        let to = socks[0].local_addr().unwrap();
        // Shard index 3 does not exist in a group of 3: the kernel hashes it too.
        let packets: Vec<Vec<u8>> = vec![
            vec![33, 0, 0, 3, 0, 9, 9],
            vec![0x80, 1, 2],
            vec![0x80],
            data_packet(0x1203_0001, 1),
        ];
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        for p in &packets {
            client.send_to(p, to).unwrap();
        }
        let got = collect(&mut socks, packets.len());
        assert_eq!(got.len(), packets.len(), "nothing dropped by the program");
        let mut payloads: Vec<_> = got.into_iter().map(|(_, p)| p).collect();
        payloads.sort();
        let mut want = packets.clone();
        want.sort();
        assert_eq!(payloads, want);
    }

    #[test]
    fn too_many_shard_bits_is_an_error() {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(attach_steering(s.as_fd(), 9).is_err());
        assert!(program(MAX_SHARD_BITS).is_ok());
    }
}
