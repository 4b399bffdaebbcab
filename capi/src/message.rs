//! `SteamNetworkingMessage_t`: received messages lent out zero-copy, messages the application
//! allocates, and their release.
//!
//! ```text
//!  Slot (heap, pooled) ┌ c: SteamNetworkingMessage_t ◄── the pointer C holds
//!                      ├ magic, state (Live / Released)
//!                      ├ rx: sockworks::Message      ── received: m_pData points into its
//!                      │                                pooled buffer (no copy)
//!                      └ own: Vec<u8>                ── AllocateMessage's payload buffer
//! ```
//!
//! Release returns the payload to the buffer pool and the slot to a FIFO of free slots. Slots
//! are reused only after `QUARANTINE` later releases, and never freed below `KEEP`, so a
//! message released twice in that window is still our memory: the second release is
//! detected, counted and ignored instead of corrupting the heap (GNS would crash).

use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crossbeam_queue::SegQueue;
use sockworks::{Connection, Message, OutMessage};

use crate::guard::guard;
use crate::types::{SteamNetworkingIdentity, SteamNetworkingMessage_t};

const MAGIC: u64 = 0x5357_4d53_475f_7631;
const LIVE: u32 = 1;
const RELEASED: u32 = 2;
/// Released slots wait this many later releases before reuse (double-release detection).
const QUARANTINE: usize = 1024;
/// Free slots kept at most; beyond this they go back to the allocator.
const KEEP: usize = 16 * 1024;

/// A message and what backs it. `c` is first, so a pointer to it is a pointer to the slot.
#[repr(C)]
struct Slot {
    c: SteamNetworkingMessage_t,
    magic: u64,
    state: AtomicU32,
    rx: Option<Message>,
    own: Vec<u8>,
}

// SAFETY: a slot's raw pointers point into its own buffers (`rx`, `own`) or at memory the
// application handed over with the message; a slot is owned by one thread at a time (the
// application between lend and release, the free queue after), so moving it is sound.
unsafe impl Send for Slot {}

static FREE: SegQueue<Box<Slot>> = SegQueue::new();
static DOUBLE_RELEASES: AtomicU64 = AtomicU64::new(0);

/// Messages released more than once so far (each extra release was ignored).
pub fn double_releases() -> u64 {
    DOUBLE_RELEASES.load(Ordering::Relaxed)
}

fn blank() -> SteamNetworkingMessage_t {
    SteamNetworkingMessage_t {
        m_pData: std::ptr::null_mut(),
        m_cbSize: 0,
        m_conn: 0,
        m_identityPeer: SteamNetworkingIdentity::zeroed(),
        m_nConnUserData: 0,
        m_usecTimeReceived: 0,
        m_nMessageNumber: 0,
        m_pfnFreeData: None,
        m_pfnRelease: Some(release_message),
        m_nChannel: 0,
        m_nFlags: 0,
        m_nUserData: 0,
        m_idxLane: 0,
        _pad1__: 0,
    }
}

/// A live slot with every field cleared, reused from the free FIFO when one has waited out
/// its quarantine.
fn take_slot() -> Box<Slot> {
    let mut slot = if FREE.len() > QUARANTINE {
        FREE.pop()
    } else {
        None
    }
    .unwrap_or_else(|| {
        Box::new(Slot {
            c: blank(),
            magic: MAGIC,
            state: AtomicU32::new(RELEASED),
            rx: None,
            own: Vec::new(),
        })
    });
    slot.c = blank();
    slot.state.store(LIVE, Ordering::Relaxed);
    slot
}

fn put_slot(mut slot: Box<Slot>) {
    slot.rx = None;
    if slot.own.capacity() > 64 * 1024 {
        slot.own = Vec::new();
    }
    if FREE.len() < KEEP {
        FREE.push(slot);
    }
}

/// The slot behind a message pointer this library handed out, or `None` (with a warning)
/// for null, a pointer that is not ours, or one already released.
///
/// # Safety
/// `msg` is null or was returned by this library (received or allocated).
unsafe fn claim(msg: *mut SteamNetworkingMessage_t) -> Option<Box<Slot>> {
    if msg.is_null() {
        return None;
    }
    let slot = msg.cast::<Slot>();
    // SAFETY: our messages are the first field of a Slot that stays allocated (pooled, never
    // freed inside the quarantine window), so reading the tag and state is in bounds.
    let (magic, state) = unsafe { (&raw const (*slot).magic, &raw const (*slot).state) };
    // SAFETY: as above; both fields are initialised for every slot ever made.
    if unsafe { *magic } != MAGIC {
        tracing::error!("SteamNetworkingMessage_t release: not a message from this library");
        return None;
    }
    // SAFETY: as above.
    if unsafe { &*state }.swap(RELEASED, Ordering::AcqRel) != LIVE {
        DOUBLE_RELEASES.fetch_add(1, Ordering::Relaxed);
        tracing::error!("SteamNetworkingMessage_t released twice: second release ignored");
        return None;
    }
    // SAFETY: the slot was leaked from a Box by `into_c`, and the state swap above makes
    // this the only release that reclaims it.
    Some(unsafe { Box::from_raw(slot) })
}

/// `m_pfnRelease` of every message this library hands out.
///
/// # Safety
/// `msg` is null or a message from this library.
pub unsafe extern "C" fn release_message(msg: *mut SteamNetworkingMessage_t) {
    guard((), || {
        // SAFETY: forwarded from the caller.
        let Some(mut slot) = (unsafe { claim(msg) }) else {
            return;
        };
        if slot.rx.is_none() {
            free_app_data(&mut slot);
        }
        put_slot(slot);
    })
}

/// `m_pfnFreeData` of AllocateMessage's own buffers: frees nothing itself (the slot keeps
/// the buffer for reuse); it exists so the application can tell our buffer from its own.
unsafe extern "C" fn free_own_data(_msg: *mut SteamNetworkingMessage_t) {}

/// Calls the application's `m_pfnFreeData` if it replaced ours.
fn free_app_data(slot: &mut Slot) {
    let ours = free_own_data as unsafe extern "C" fn(*mut SteamNetworkingMessage_t);
    if let Some(f) = slot.c.m_pfnFreeData.take() {
        if f as usize != ours as usize {
            // SAFETY: the application set this function to free its own m_pData.
            unsafe { f(&mut slot.c) };
        }
    }
    slot.c.m_pData = std::ptr::null_mut();
}

fn into_c(slot: Box<Slot>) -> *mut SteamNetworkingMessage_t {
    Box::into_raw(slot).cast::<SteamNetworkingMessage_t>()
}

/// `AllocateMessage`: a cleared message, with a payload buffer of `size` bytes when
/// `size > 0`. Null for a negative or oversized size.
pub fn allocate(size: i32) -> *mut SteamNetworkingMessage_t {
    let Ok(n) = usize::try_from(size) else {
        return std::ptr::null_mut();
    };
    if n > sockworks::engine::wire::packet::MAX_MESSAGE_SIZE {
        return std::ptr::null_mut();
    }
    let mut slot = take_slot();
    if n > 0 {
        if slot.own.capacity() < n {
            slot.own = sockworks::engine::buffers::take(n);
        }
        slot.own.clear();
        slot.own.resize(n, 0);
        slot.c.m_pData = slot.own.as_mut_ptr().cast::<c_void>();
        slot.c.m_cbSize = size;
        slot.c.m_pfnFreeData = Some(free_own_data);
    }
    into_c(slot)
}

/// `ISteamNetworkingUtils::AllocateMessage`: a message for `SendMessages`, with a buffer of
/// `size` bytes (none for 0: the application sets `m_pData`, `m_cbSize` and
/// `m_pfnFreeData` itself). Null for a negative or oversized size. Works before `Init`.
#[unsafe(no_mangle)]
pub extern "C" fn SteamAPI_ISteamNetworkingUtils_AllocateMessage(
    _self: *mut c_void,
    size: std::ffi::c_int,
) -> *mut SteamNetworkingMessage_t {
    guard(std::ptr::null_mut(), || allocate(size))
}

/// Per receive call: the peer identity of the last connection seen, so a batch from one
/// connection reads it once.
#[derive(Default)]
pub(crate) struct PeerCache {
    conn: Option<Connection>,
    identity: Option<SteamNetworkingIdentity>,
}

impl PeerCache {
    fn identity(&mut self, conn: Connection) -> SteamNetworkingIdentity {
        if self.conn != Some(conn) {
            self.conn = Some(conn);
            self.identity = crate::instance::sockets()
                .and_then(|s| s.get_connection_info(conn))
                .and_then(|i| i.identity_remote)
                .map(|id| SteamNetworkingIdentity::from_identity(&id));
        }
        self.identity
            .unwrap_or_else(SteamNetworkingIdentity::zeroed)
    }
}

/// Lends received messages to C: each becomes a slot whose `m_pData` points into the
/// message's pooled buffer. Writes `messages.len()` pointers to `out`. `clock_offset_us`
/// moves the instance's receive times onto `GetLocalTimestamp`'s clock.
///
/// # Safety
/// `out` points to at least `messages.len()` writable pointers.
pub(crate) unsafe fn lend(
    messages: &mut Vec<Message>,
    out: *mut *mut SteamNetworkingMessage_t,
    clock_offset_us: i64,
) {
    let mut peers = PeerCache::default();
    for (i, m) in messages.drain(..).enumerate() {
        let mut slot = take_slot();
        let c = &mut slot.c;
        c.m_cbSize = i32::try_from(m.data.len()).unwrap_or(i32::MAX);
        c.m_conn = m.conn.0;
        c.m_identityPeer = peers.identity(m.conn);
        c.m_nConnUserData = m.user_data;
        c.m_usecTimeReceived = i64::try_from(m.time_received.as_micros())
            .unwrap_or(i64::MAX)
            .saturating_add(clock_offset_us);
        c.m_nMessageNumber = m.message_number;
        c.m_nFlags = m.flags;
        c.m_idxLane = m.lane;
        slot.rx = Some(m);
        // The Vec inside `rx` does not move when the slot does: the pointer stays valid.
        let data = slot
            .rx
            .as_ref()
            .map_or(std::ptr::null(), |m| m.data.as_ptr());
        slot.c.m_pData = data.cast_mut().cast::<c_void>();
        // SAFETY: the caller guarantees room for every message.
        unsafe { *out.add(i) = into_c(slot) };
    }
}

/// The payload of an application message to send: moved out without a copy when it is
/// AllocateMessage's own buffer, else copied (the application's buffer is freed by its own
/// `m_pfnFreeData` when the message is released).
///
/// # Safety
/// `msg` is a live message from AllocateMessage whose `m_pData` holds `m_cbSize` bytes.
unsafe fn payload(slot: &mut Slot, take: bool) -> Option<Vec<u8>> {
    let n = usize::try_from(slot.c.m_cbSize).ok()?;
    let ours = free_own_data as unsafe extern "C" fn(*mut SteamNetworkingMessage_t);
    let own = slot.c.m_pfnFreeData.map(|f| f as usize) == Some(ours as usize)
        && slot.c.m_pData.cast_const() == slot.own.as_ptr().cast::<c_void>()
        && n <= slot.own.len();
    if own && take {
        let mut v = std::mem::take(&mut slot.own);
        v.truncate(n);
        slot.c.m_pData = std::ptr::null_mut();
        slot.c.m_pfnFreeData = None;
        return Some(v);
    }
    if n == 0 {
        return Some(Vec::new());
    }
    if slot.c.m_pData.is_null() {
        return None;
    }
    // SAFETY: the application promises m_cbSize readable bytes at m_pData.
    let data = unsafe { std::slice::from_raw_parts(slot.c.m_pData.cast::<u8>(), n) };
    Some(sockworks::engine::buffers::copy_of(data))
}

/// `SendMessages`, with GNS's ownership rules: with `delete_failed`, every message is the
/// library's and released; without, successfully queued ones are released and their array
/// entries set to null, failed ones stay with the caller untouched.
///
/// # Safety
/// `msgs` points to `n` message pointers (each null or from AllocateMessage); `results` is
/// null or has room for `n` values.
pub(crate) unsafe fn send_messages(
    sockets: &sockworks::Sockets,
    n: i32,
    msgs: *mut *mut SteamNetworkingMessage_t,
    results: *mut i64,
    delete_failed: bool,
) {
    let Ok(n) = usize::try_from(n) else { return };
    if n == 0 || msgs.is_null() {
        return;
    }
    // SAFETY: the caller promises n pointers.
    let ptrs = unsafe { std::slice::from_raw_parts_mut(msgs, n) };
    let mut out = Vec::with_capacity(n);
    // Index into `ptrs` of each message handed to the API (null or foreign ones are not).
    let mut sent: Vec<usize> = Vec::with_capacity(n);
    let mut own_results = vec![-i64::from(sockworks::EResult::InvalidParam.code()); n];
    for (i, &p) in ptrs.iter().enumerate() {
        if p.is_null() {
            continue;
        }
        let slot = p.cast::<Slot>();
        // SAFETY: the caller hands messages from AllocateMessage; `claim` is not used here
        // because ownership passes only once the result is known.
        let slot = unsafe { &mut *slot };
        if slot.magic != MAGIC || slot.state.load(Ordering::Acquire) != LIVE {
            tracing::error!("SendMessages: message {i} is not a live message from AllocateMessage");
            continue;
        }
        // SAFETY: a live message from AllocateMessage (checked above).
        let Some(data) = (unsafe { payload(slot, delete_failed) }) else {
            continue;
        };
        out.push(OutMessage {
            conn: Connection(slot.c.m_conn),
            data,
            flags: slot.c.m_nFlags & 0xffff,
            lane: slot.c.m_idxLane,
        });
        sent.push(i);
    }
    for (&i, r) in sent.iter().zip(sockets.send_messages(out)) {
        own_results[i] = r;
    }
    for (i, p) in ptrs.iter_mut().enumerate() {
        let ok = own_results[i] > 0;
        if !results.is_null() {
            // SAFETY: the caller promises room for n results.
            unsafe { *results.add(i) = own_results[i] };
        }
        if p.is_null() {
            continue;
        }
        if ok || delete_failed {
            // SAFETY: a message from AllocateMessage, now ours to release.
            unsafe { release_message(*p) };
            if !delete_failed {
                *p = std::ptr::null_mut();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_and_release_twice_is_detected() {
        let m = allocate(100);
        assert!(!m.is_null());
        // SAFETY: a live message of 100 bytes.
        unsafe {
            assert_eq!((*m).m_cbSize, 100);
            assert!(!(*m).m_pData.is_null());
        }
        let before = double_releases();
        // SAFETY: ours; the second release is the misuse under test.
        unsafe {
            release_message(m);
            release_message(m);
        }
        assert!(double_releases() > before);
        assert!(allocate(-1).is_null());
        let empty = allocate(0);
        // SAFETY: a live message without a buffer.
        unsafe {
            assert!((*empty).m_pData.is_null());
            release_message(empty);
        }
    }

    #[test]
    fn an_application_buffer_is_freed_by_its_own_function() {
        static FREED: AtomicU32 = AtomicU32::new(0);
        unsafe extern "C" fn free_mine(m: *mut SteamNetworkingMessage_t) {
            FREED.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the test put a leaked Box<[u8; 8]> there.
            drop(unsafe { Box::from_raw((*m).m_pData.cast::<[u8; 8]>()) });
        }
        let m = allocate(0);
        // SAFETY: a live message; the buffer is the test's own.
        unsafe {
            (*m).m_pData = Box::into_raw(Box::new([7u8; 8])).cast();
            (*m).m_cbSize = 8;
            (*m).m_pfnFreeData = Some(free_mine);
            release_message(m);
        }
        assert_eq!(FREED.load(Ordering::Relaxed), 1);
    }
}
