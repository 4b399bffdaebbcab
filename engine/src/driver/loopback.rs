//! An in-memory driver: a set of addresses joined by queues, for socket pairs and tests. Same
//! batch semantics as the kernel backends; `wait` blocks on a condition variable.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{Driver, RxBatch, TxBatch, Wake};

#[derive(Default)]
struct Inbox {
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
    woken: bool,
}

#[derive(Default)]
struct Hub {
    inboxes: Mutex<HashMap<SocketAddr, Inbox>>,
    ready: Condvar,
}

/// A shared in-memory "network" that loopback drivers bind to.
#[derive(Clone, Default)]
pub struct LoopbackNet {
    hub: Arc<Hub>,
}

impl std::fmt::Debug for LoopbackNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoopbackNet")
    }
}

/// Most datagrams queued per address; beyond this, sends are dropped like a full socket buffer.
pub const INBOX_LIMIT: usize = 4096;

impl LoopbackNet {
    /// A new, empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `addr`; fails if it is taken.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<LoopbackDriver> {
        let mut boxes = self
            .hub
            .inboxes
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        if boxes.contains_key(&addr) {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, "address in use"));
        }
        boxes.insert(addr, Inbox::default());
        Ok(LoopbackDriver {
            hub: self.hub.clone(),
            addr,
        })
    }
}

/// A driver bound to one address of a [`LoopbackNet`].
pub struct LoopbackDriver {
    hub: Arc<Hub>,
    addr: SocketAddr,
}

impl std::fmt::Debug for LoopbackDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackDriver")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for LoopbackDriver {
    fn drop(&mut self) {
        if let Ok(mut boxes) = self.hub.inboxes.lock() {
            boxes.remove(&self.addr);
        }
    }
}

struct LoopbackWaker {
    hub: Arc<Hub>,
    addr: SocketAddr,
}

impl Wake for LoopbackWaker {
    fn wake(&self) {
        if let Ok(mut boxes) = self.hub.inboxes.lock()
            && let Some(inbox) = boxes.get_mut(&self.addr)
        {
            inbox.woken = true;
        }
        self.hub.ready.notify_all();
    }
}

impl Driver for LoopbackDriver {
    fn recv_batch(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        let mut boxes = self
            .hub
            .inboxes
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        let Some(inbox) = boxes.get_mut(&self.addr) else {
            return Ok(0);
        };
        let mut n = 0;
        while batch.len() < batch.capacity() {
            let Some((from, data)) = inbox.queue.pop_front() else {
                break;
            };
            batch.push(from, &data);
            n += 1;
        }
        Ok(n)
    }

    fn send_batch(&mut self, batch: &TxBatch) -> io::Result<usize> {
        let mut boxes = self
            .hub
            .inboxes
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        for i in 0..batch.len() {
            let Some((to, data)) = batch.get(i) else {
                break;
            };
            // Unbound destinations and full inboxes drop the datagram, as UDP would.
            if let Some(inbox) = boxes.get_mut(&to)
                && inbox.queue.len() < INBOX_LIMIT
            {
                inbox.queue.push_back((self.addr, data.to_vec()));
            }
        }
        drop(boxes);
        self.hub.ready.notify_all();
        Ok(batch.len())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let mut boxes = self
            .hub
            .inboxes
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?;
        let ready = |b: &mut HashMap<SocketAddr, Inbox>, addr| {
            b.get_mut(addr)
                .is_none_or(|i: &mut Inbox| !i.queue.is_empty() || std::mem::take(&mut i.woken))
        };
        if ready(&mut boxes, &self.addr) || timeout == Some(Duration::ZERO) {
            return Ok(());
        }
        match timeout {
            Some(t) => {
                let (mut b, _) = self
                    .hub
                    .ready
                    .wait_timeout_while(boxes, t, |b| !ready(b, &self.addr))
                    .map_err(|_| io::Error::other("poisoned"))?;
                ready(&mut b, &self.addr);
            }
            None => {
                let _b = self
                    .hub
                    .ready
                    .wait_while(boxes, |b| !ready(b, &self.addr))
                    .map_err(|_| io::Error::other("poisoned"))?;
            }
        }
        Ok(())
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    fn waker(&self) -> Arc<dyn Wake> {
        Arc::new(LoopbackWaker {
            hub: self.hub.clone(),
            addr: self.addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::conformance;

    fn pair() -> (LoopbackDriver, LoopbackDriver) {
        let net = LoopbackNet::new();
        let a = net.bind("127.0.0.1:1".parse().unwrap()).unwrap();
        let b = net.bind("127.0.0.1:2".parse().unwrap()).unwrap();
        (a, b)
    }

    #[test]
    fn conformance_batch_round_trip() {
        let (a, b) = pair();
        conformance::batch_round_trip(a, b);
    }

    #[test]
    fn conformance_same_size_burst() {
        let (a, b) = pair();
        conformance::same_size_burst_splits_into_datagrams(a, b);
    }

    #[test]
    fn conformance_wait_and_wake() {
        conformance::wait_times_out_and_wakes(pair().0);
        let (a, b) = pair();
        conformance::readable_hint_has_no_false_negatives(a, b);
    }

    #[test]
    fn binding_twice_fails() {
        let net = LoopbackNet::new();
        let _a = net.bind("127.0.0.1:1".parse().unwrap()).unwrap();
        assert!(net.bind("127.0.0.1:1".parse().unwrap()).is_err());
    }
}
