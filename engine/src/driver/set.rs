//! A driver over a changing set of mmsg sockets, for shards that serve the API: one member per
//! listen socket (each shard's member of that port's SO_REUSEPORT group) plus the shard's
//! client socket. Datagrams are tagged with their member's local index, which the endpoint
//! receives as [`LocalSocket`](crate::proto::endpoint::LocalSocket).
//!
//! ```text
//!  app thread: bind socket (errors surface to the caller) ─► SetControl::add(local, driver)
//!  shard:      recv_batch: apply adds/removes ─► each member's recvmmsg, tagged
//!              send_batch: front run of one local ─► that member's sendmmsg
//!              wait: poll(every member, the set's eventfd)
//! ```
//!
//! Members are added and removed from any thread through [`SetControl`]; the shard applies the
//! changes at its next receive, so no lock is shared with the data path.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::SegQueue;

use super::eventfd::EventFd;
use super::mmsg::MmsgDriver;
use super::{Driver, RxBatch, TxBatch, Wake};

/// A change to the set, queued by an application thread.
#[derive(Debug)]
enum Op {
    Add(u16, Box<MmsgDriver>),
    Remove(u16),
    /// Remove one shard turn later, so what the turn queued for the socket still leaves.
    RemoveLater(u16),
}

/// Adds and removes members of a running [`SocketSet`] from any thread.
#[derive(Debug)]
pub struct SetControl {
    ops: SegQueue<Op>,
    wake: Arc<EventFd>,
}

impl SetControl {
    /// Hands `driver` to the shard as local socket `local` (replacing any member there).
    pub fn add(&self, local: u16, driver: MmsgDriver) {
        self.ops.push(Op::Add(local, Box::new(driver)));
        self.wake.wake();
    }

    /// Closes local socket `local` on the shard.
    pub fn remove(&self, local: u16) {
        self.ops.push(Op::Remove(local));
        self.wake.wake();
    }

    /// Closes local socket `local` after the shard's next send, so datagrams queued now (a
    /// ConnectionClosed, say) still go out through it.
    pub fn remove_after_flush(&self, local: u16) {
        self.ops.push(Op::RemoveLater(local));
        self.wake.wake();
    }
}

/// The members of one shard, indexed by local socket.
#[derive(Debug)]
pub struct SocketSet {
    members: Vec<Option<MmsgDriver>>,
    control: Arc<SetControl>,
    wake: Arc<EventFd>,
    /// The member to read first next time, so one busy socket cannot starve the others.
    next: usize,
    /// Scratch batch for sending one member's run.
    scratch: TxBatch,
    /// Reused poll set.
    fds: Vec<libc::pollfd>,
}

impl SocketSet {
    /// An empty set.
    pub fn new() -> io::Result<Self> {
        let wake = Arc::new(EventFd::new()?);
        Ok(SocketSet {
            members: Vec::new(),
            control: Arc::new(SetControl {
                ops: SegQueue::new(),
                wake: wake.clone(),
            }),
            wake,
            next: 0,
            scratch: TxBatch::with_capacity(64),
            fds: Vec::new(),
        })
    }

    /// The handle application threads change the set with.
    pub fn control(&self) -> Arc<SetControl> {
        self.control.clone()
    }

    /// Members now (after applied changes).
    pub fn len(&self) -> usize {
        self.members.iter().flatten().count()
    }

    /// Whether the set has no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound address of local socket `local`.
    pub fn member_addr(&self, local: u16) -> Option<SocketAddr> {
        self.members
            .get(usize::from(local))?
            .as_ref()?
            .local_addr()
            .ok()
    }

    fn apply(&mut self) {
        let mut later = Vec::new();
        while let Some(op) = self.control.ops.pop() {
            match op {
                Op::Add(local, d) => {
                    let i = usize::from(local);
                    if self.members.len() <= i {
                        self.members.resize_with(i + 1, || None);
                    }
                    self.members[i] = Some(*d);
                }
                Op::Remove(local) => {
                    if let Some(m) = self.members.get_mut(usize::from(local)) {
                        *m = None;
                    }
                }
                Op::RemoveLater(local) => later.push(local),
            }
        }
        for local in later {
            self.control.ops.push(Op::Remove(local));
        }
    }
}

impl Driver for SocketSet {
    fn recv_batch(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
        self.apply();
        let n = self.members.len();
        let mut got = 0;
        for k in 0..n {
            let i = (self.next + k) % n;
            let Some(m) = self.members[i].as_mut() else {
                continue;
            };
            if batch.len() == batch.capacity() {
                break;
            }
            let start = batch.len();
            // A failing member (e.g. ICMP errors surfacing) must not stop the others.
            let r = m.recv_batch(batch).unwrap_or(0);
            // invariant: members are indexed by u16 locals (see `apply`).
            batch.tag_from(start, i as u16);
            got += r;
        }
        if n > 0 {
            self.next = (self.next + 1) % n;
        }
        Ok(got)
    }

    fn send_batch(&mut self, batch: &TxBatch) -> io::Result<usize> {
        let mut sent = 0;
        while sent < batch.len() {
            let local = batch.local(sent);
            let mut end = sent + 1;
            while end < batch.len() && batch.local(end) == local {
                end += 1;
            }
            let Some(m) = self
                .members
                .get_mut(usize::from(local))
                .and_then(Option::as_mut)
            else {
                // The socket is gone: its datagrams are dropped, as a closed socket would.
                sent = end;
                continue;
            };
            let n = if sent == 0 && end == batch.len() {
                m.send_batch(batch)?
            } else {
                self.scratch.clear();
                for i in sent..end {
                    if let Some((to, d)) = batch.get(i) {
                        self.scratch.push(to.into(), d);
                    }
                }
                m.send_batch(&self.scratch)?
            };
            sent += n;
            if sent < end {
                // That socket's buffer is full: the caller keeps the rest.
                break;
            }
        }
        Ok(sent)
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.apply();
        if self.members.iter().flatten().any(MmsgDriver::has_carry) {
            return Ok(());
        }
        let fds = &mut self.fds;
        fds.clear();
        fds.extend(self.members.iter().flatten().map(|m| libc::pollfd {
            fd: m.raw_fd(),
            events: libc::POLLIN | if m.send_blocked() { libc::POLLOUT } else { 0 },
            revents: 0,
        }));
        fds.push(self.wake.pollfd());
        self.wake.poll_with(fds, timeout)
    }

    /// The first member's address; `0.0.0.0:0` while the set is empty (a shard of the API
    /// starts with no socket and gains them as listen sockets and clients open).
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self.members.iter().flatten().next() {
            Some(m) => m.local_addr(),
            None => Ok(SocketAddr::from(([0, 0, 0, 0], 0))),
        }
    }

    fn waker(&self) -> Arc<dyn Wake> {
        self.wake.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::Transmit;
    use crate::driver::mmsg::MmsgDriver;

    fn bind() -> MmsgDriver {
        MmsgDriver::bind("127.0.0.1:0".parse().unwrap()).unwrap()
    }

    #[test]
    fn datagrams_are_tagged_and_sent_by_their_member() {
        let mut set = SocketSet::new().unwrap();
        let (a, b) = (bind(), bind());
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let ctl = set.control();
        ctl.add(0, a);
        ctl.add(3, b);
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"to-a", aa).unwrap();
        peer.send_to(b"to-b", ba).unwrap();
        let mut rx = RxBatch::new(8);
        for _ in 0..100 {
            if rx.len() == 2 {
                break;
            }
            set.wait(Some(Duration::from_millis(50))).unwrap();
            set.recv_batch(&mut rx).unwrap();
        }
        let mut got: Vec<(u16, Vec<u8>)> = (0..rx.len())
            .map(|i| (rx.local(i), rx.get(i).unwrap().1.to_vec()))
            .collect();
        got.sort();
        assert_eq!(got, vec![(0, b"to-a".to_vec()), (3, b"to-b".to_vec())]);
        assert_eq!(set.len(), 2);
        assert_eq!(set.member_addr(3), Some(ba));

        let pa = peer.local_addr().unwrap();
        let mut tx = TxBatch::with_capacity(4);
        tx.push(Transmit { local: 3, to: pa }, b"from-b");
        tx.push(Transmit { local: 0, to: pa }, b"from-a");
        assert_eq!(set.send_batch(&tx).unwrap(), 2);
        let mut buf = [0u8; 64];
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"from-b"[..], ba));
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"from-a"[..], aa));

        ctl.remove(3);
        set.wait(Some(Duration::ZERO)).unwrap();
        assert_eq!(set.len(), 1);
        // Datagrams for a removed socket are dropped, not an error.
        let mut tx = TxBatch::with_capacity(1);
        tx.push(Transmit { local: 3, to: pa }, b"gone");
        assert_eq!(set.send_batch(&tx).unwrap(), 1);
    }

    #[test]
    fn wake_interrupts_wait() {
        let mut set = SocketSet::new().unwrap();
        set.control().add(0, bind());
        // The add itself rang the eventfd: consume that wake first.
        set.wait(Some(Duration::ZERO)).unwrap();
        let w = set.waker();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w.wake();
        });
        let clock = crate::shard::Clock::new();
        let start = clock.now();
        set.wait(Some(Duration::from_secs(10))).unwrap();
        assert!(clock.now().saturating_since(start) < Duration::from_secs(5));
        t.join().unwrap();
    }
}
