//! Run-time detection of what the io_uring backend needs, so a fleet host where io_uring is
//! blocked (seccomp in containers, `kernel.io_uring_disabled`, an old kernel, a tiny memlock
//! limit) degrades to recvmmsg/sendmmsg with one clear log line instead of failing to start.
//!
//! Probing never looks at the kernel version: back-ports make versions lie, so every check is
//! the real operation (set up a ring, register a buffer ring, ask `IORING_REGISTER_PROBE`).

use std::io;

use io_uring::{IoUring, Probe, opcode};

/// Why the io_uring backend cannot run here. Printed in the fallback log line
/// `io_uring unavailable (<reason>), using recvmmsg/sendmmsg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UringUnavailable {
    /// `kernel.io_uring_disabled` is 1 or 2 for this process (Linux >= 6.6).
    #[error("disabled by sysctl kernel.io_uring_disabled={0}")]
    DisabledBySysctl(u8),
    /// `io_uring_setup` returned EPERM: usually a seccomp profile (Docker >= 25) or an LSM.
    #[error("io_uring_setup denied (EPERM), likely seccomp or an LSM")]
    SetupDenied,
    /// `io_uring_setup` does not exist (ENOSYS): kernel built without io_uring or too old.
    #[error("kernel has no io_uring (ENOSYS)")]
    NotInKernel,
    /// Ring memory could not be locked (ENOMEM): RLIMIT_MEMLOCK too small on kernels < 5.12.
    #[error("cannot lock ring memory (ENOMEM), raise RLIMIT_MEMLOCK")]
    Memlock,
    /// `IORING_ENTER_EXT_ARG` (timeouts in `io_uring_enter`, Linux 5.11) is missing.
    #[error("no IORING_FEAT_EXT_ARG (kernel < 5.11)")]
    NoExtArg,
    /// An opcode the driver issues is not supported by this kernel.
    #[error("opcode {0} unsupported")]
    MissingOpcode(&'static str),
    /// Registering a provided-buffer ring failed (Linux < 5.19); the errno is kept.
    #[error("provided-buffer rings unsupported (errno {0})")]
    NoBufRing(i32),
    /// Any other setup failure, with its errno.
    #[error("io_uring_setup failed (errno {0})")]
    Setup(i32),
}

impl From<UringUnavailable> for io::Error {
    fn from(reason: UringUnavailable) -> Self {
        io::Error::new(io::ErrorKind::Unsupported, reason)
    }
}

/// Buffer group id the probe registers (distinct from the driver's, though they never share a
/// ring).
const PROBE_BGID: u16 = 0x7fff;

/// Checks that this process can run [`UringDriver`](super::UringDriver): sets up a small ring,
/// probes the opcodes and features it uses and registers a provided-buffer ring. Cheap (a few
/// syscalls); call once at start-up to pick a backend.
pub fn io_uring_available() -> Result<(), UringUnavailable> {
    if sysctl_disabled() == Some(2) {
        return Err(UringUnavailable::DisabledBySysctl(2));
    }
    let ring = IoUring::new(8).map_err(classify_setup_error)?;
    check_ring(&ring)?;
    // A one-entry buffer ring proves IORING_REGISTER_PBUF_RING works (memory is not touched
    // by the kernel until a request selects a buffer, and none will).
    let page = super::buf_ring::RingMemory::new(1).map_err(|_| UringUnavailable::Memlock)?;
    // SAFETY: `page` is a page-aligned, zeroed allocation large enough for one ring entry and
    // outlives the registration: it is unregistered just below, before `page` is dropped.
    let reg = unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(page.addr(), 1, PROBE_BGID, 0)
    };
    match reg {
        Ok(()) => {
            let _ = ring.submitter().unregister_buf_ring(PROBE_BGID);
            page.release();
            Ok(())
        }
        Err(e) => {
            page.release(); // never registered
            Err(UringUnavailable::NoBufRing(e.raw_os_error().unwrap_or(0)))
        }
    }
}

/// Checks features and opcodes on an existing ring (shared by the probe and `bind`).
pub(super) fn check_ring(ring: &IoUring) -> Result<(), UringUnavailable> {
    if !ring.params().is_feature_ext_arg() {
        return Err(UringUnavailable::NoExtArg);
    }
    let mut probe = Probe::new();
    if let Err(e) = ring.submitter().register_probe(&mut probe) {
        return Err(UringUnavailable::Setup(e.raw_os_error().unwrap_or(0)));
    }
    let needed: [(u8, &'static str); 5] = [
        (opcode::RecvMsg::CODE, "RECVMSG"),
        (opcode::SendMsg::CODE, "SENDMSG"),
        (opcode::Read::CODE, "READ"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
        // Multishot recvmsg has no opcode of its own; it shipped in Linux 6.0 together with
        // SEND_ZC, so SEND_ZC stands in for it.
        (
            opcode::SendZc::CODE,
            "SEND_ZC (multishot recvmsg, Linux 6.0)",
        ),
    ];
    for (code, name) in needed {
        if !probe.is_supported(code) {
            return Err(UringUnavailable::MissingOpcode(name));
        }
    }
    Ok(())
}

/// Maps an `io_uring_setup` failure to a reason.
pub(super) fn classify_setup_error(e: io::Error) -> UringUnavailable {
    match e.raw_os_error() {
        Some(libc::EPERM) => match sysctl_disabled() {
            Some(level) => UringUnavailable::DisabledBySysctl(level),
            None => UringUnavailable::SetupDenied,
        },
        Some(libc::ENOSYS) => UringUnavailable::NotInKernel,
        Some(libc::ENOMEM) => UringUnavailable::Memlock,
        Some(errno) => UringUnavailable::Setup(errno),
        None => UringUnavailable::Setup(0),
    }
}

/// `Some(level)` when the sysctl disables io_uring for everyone (2) or for unprivileged
/// processes (1). Level 1 still lets members of `io_uring_group` in, so it only counts when
/// setup actually fails; the caller checks it first only for level 2.
fn sysctl_disabled() -> Option<u8> {
    let text = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").ok()?;
    match text.trim() {
        "2" => Some(2),
        "1" => Some(1),
        _ => None,
    }
}
