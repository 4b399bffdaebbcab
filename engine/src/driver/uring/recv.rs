//! The receive side's copy-out: ready provided buffers go into the caller's `RxBatch`, GRO
//! super-datagrams split by their `UDP_GRO` segment size. A buffer only partly copied (the
//! batch filled up mid-split) stays at the front of `ready`, with `front_off` marking how far
//! it was handed out, and is recycled to the kernel only once fully copied.

use io_uring::types::RecvMsgOut;

use super::{UringDriver, socket};
use crate::driver::{RxBatch, cmsg};

impl UringDriver {
    /// Whether entering the kernel could produce completions now: entries are queued, the
    /// kernel flagged pending task work (COOP_TASKRUN), or a request needs re-arming. Without
    /// the task-run flag (older kernels) it always says yes.
    pub(super) fn kernel_has_work(&mut self) -> bool {
        let sq = self.ring.submission();
        !sq.is_empty()
            || sq.taskrun()
            || !self.coop
            || !self.state.recv_armed
            || !self.state.wake_armed
    }

    /// Copies ready receive buffers into `batch`, splitting GRO super-datagrams; a buffer only
    /// partly copied stays at the front with `front_off` marking where to go on.
    pub(super) fn deliver(&mut self, batch: &mut RxBatch) -> usize {
        let mut n = 0;
        let UringDriver {
            mem, state, gro, ..
        } = self;
        while batch.len() < batch.capacity() {
            let Some(loan) = state.ready.front() else {
                break;
            };
            let mut finished = true;
            let out = RecvMsgOut::parse(mem.bufs.bytes(loan), &mem.recv_msg).ok();
            match out.and_then(|out| Some((socket::parse_name(out.name_data())?, out))) {
                Some((from, out)) => {
                    let payload = out.payload_data();
                    let gro_seg = gro.then(|| cmsg::gro_segment_in(out.control_data()));
                    let seg = gro_seg.flatten().unwrap_or(payload.len()).max(1);
                    if seg < payload.len() && state.front_off == 0 {
                        state.stats.gro_coalesced += 1;
                    }
                    // Do-while, so an empty datagram is handed out once too.
                    loop {
                        let off = state.front_off.min(payload.len());
                        let end = (off + seg).min(payload.len());
                        if !batch.push(from, &payload[off..end]) {
                            finished = false;
                            break;
                        }
                        n += 1;
                        state.front_off = end;
                        if end >= payload.len() {
                            break;
                        }
                    }
                }
                None => state.stats.dropped += 1,
            }
            if !finished {
                break;
            }
            state.front_off = 0;
            if let Some(loan) = state.ready.pop_front() {
                mem.bufs.recycle(loan);
            }
        }
        n
    }
}
