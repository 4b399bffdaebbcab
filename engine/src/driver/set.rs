//! A driver over a changing set of mmsg sockets, for shards that serve the API: one member per
//! listen socket (each shard's member of that port's SO_REUSEPORT group) plus the shard's
//! client sockets. Datagrams are tagged with their member's local index, which the endpoint
//! receives as [`LocalSocket`](crate::proto::endpoint::LocalSocket).
//!
//! ```text
//!  app thread: bind socket (errors surface to the caller) ─► Command::Attach into the mailbox
//!  shard:      Command::Attach / Detach ─► Driver::attach / detach (in FIFO order)
//!              recv_batch: each member's recvmmsg, tagged
//!              send_batch: front run of one local ─► that member's sendmmsg
//!              wait: poll(every member, the set's eventfd)
//! ```
//!
//! Members change only on the shard thread, through the shard's command FIFO, so a socket and
//! the listener it serves arrive in the order they were queued and no lock is shared with the
//! data path.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::eventfd::EventFd;
use super::mmsg::MmsgDriver;
use super::{Driver, RxBatch, TxBatch, Wake};

/// The members of one shard, indexed by local socket.
#[derive(Debug)]
pub struct SocketSet {
    members: Vec<Option<MmsgDriver>>,
    wake: Arc<EventFd>,
    /// The member to read first next time, so one busy socket cannot starve the others.
    next: usize,
    /// Scratch batch for sending one member's run.
    scratch: TxBatch,
    /// Reused poll set.
    fds: Vec<libc::pollfd>,
    /// Whether the last `wait` saw a member readable (true until one says otherwise).
    readable: bool,
}

impl SocketSet {
    /// An empty set.
    pub fn new() -> io::Result<Self> {
        Ok(SocketSet {
            members: Vec::new(),
            wake: Arc::new(EventFd::new()?),
            next: 0,
            scratch: TxBatch::with_capacity(64),
            fds: Vec::new(),
            readable: true,
        })
    }

    /// Members now.
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
}

impl Driver for SocketSet {
    fn recv_batch(&mut self, batch: &mut RxBatch) -> io::Result<usize> {
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
            // invariant: members are indexed by u16 locals (see `attach`).
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
        self.readable = true;
        self.wake.poll_with(fds, timeout)?;
        self.readable = super::eventfd::any_readable(fds);
        Ok(())
    }

    fn maybe_readable(&self) -> bool {
        self.readable || self.members.iter().flatten().any(MmsgDriver::has_carry)
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

    fn attach(&mut self, local: u16, socket: MmsgDriver) -> io::Result<()> {
        let i = usize::from(local);
        if self.members.len() <= i {
            self.members.resize_with(i + 1, || None);
        }
        self.members[i] = Some(socket);
        Ok(())
    }

    fn detach(&mut self, local: u16) {
        if let Some(m) = self.members.get_mut(usize::from(local)) {
            *m = None;
        }
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
        set.attach(0, a).unwrap();
        set.attach(3, b).unwrap();
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

        set.detach(3);
        assert_eq!(set.len(), 1);
        // Datagrams for a removed socket are dropped, not an error.
        let mut tx = TxBatch::with_capacity(1);
        tx.push(Transmit { local: 3, to: pa }, b"gone");
        assert_eq!(set.send_batch(&tx).unwrap(), 1);
    }

    fn set_of_one() -> SocketSet {
        let mut set = SocketSet::new().unwrap();
        set.attach(0, bind()).unwrap();
        set
    }

    /// The driver the API runs on meets the contract every backend meets.
    #[test]
    fn passes_the_driver_conformance_suite() {
        use crate::driver::conformance;
        conformance::batch_round_trip(set_of_one(), set_of_one());
        conformance::same_size_burst_splits_into_datagrams(set_of_one(), set_of_one());
        conformance::wait_times_out_and_wakes(set_of_one());
        assert!(
            !conformance::readable_hint_has_no_false_negatives(set_of_one(), set_of_one()),
            "a wait ended by a wake alone tells the shard to skip its receive call"
        );
    }

    #[test]
    fn wake_interrupts_wait() {
        let mut set = SocketSet::new().unwrap();
        set.attach(0, bind()).unwrap();
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
