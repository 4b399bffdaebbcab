//! A minimal STUN Binding responder (RFC 5389) inside a test host, run as a thread of the
//! test process that has entered the host's network namespace.
//!
//! It exists because GNS's server-reflexive discovery request carries a MAPPED-ADDRESS
//! attribute (a GNS quirk, spec §4.3) that coturn answers with `420 Unknown Attribute`, so GNS
//! never learns its reflexive address from coturn. This responder ignores every attribute of
//! a request and answers each Binding request with XOR-MAPPED-ADDRESS and MAPPED-ADDRESS of
//! the source. Nothing else (no auth, no TURN, no FINGERPRINT check).

use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::netns::Host;

const MAGIC: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const ATTR_MAPPED: u16 = 0x0001;
const ATTR_XOR_MAPPED: u16 = 0x0020;

/// The answer to a Binding request from `from`, or `None` for anything else.
#[must_use]
pub fn binding_response(req: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    if req.len() < 20 || req[0] & 0xC0 != 0 {
        return None;
    }
    let ty = u16::from_be_bytes([req[0], req[1]]);
    let len = usize::from(u16::from_be_bytes([req[2], req[3]]));
    let cookie = u32::from_be_bytes([req[4], req[5], req[6], req[7]]);
    if ty != BINDING_REQUEST || cookie != MAGIC || 20 + len != req.len() {
        return None;
    }
    let txid = &req[8..20];
    let mut attrs = Vec::new();
    let (family, ip): (u8, Vec<u8>) = match from.ip() {
        IpAddr::V4(v4) => (1, v4.octets().to_vec()),
        IpAddr::V6(v6) => (2, v6.octets().to_vec()),
    };
    // MAPPED-ADDRESS: family, port, address in the clear.
    attr(
        &mut attrs,
        ATTR_MAPPED,
        &addr_value(family, from.port(), &ip),
    );
    // XOR-MAPPED-ADDRESS: port ^ top 16 bits of the cookie, address ^ cookie (+ txid for v6).
    let mut key = MAGIC.to_be_bytes().to_vec();
    key.extend_from_slice(txid);
    let xport = from.port() ^ u16::try_from(MAGIC >> 16).expect("16 bits");
    let xip: Vec<u8> = ip.iter().zip(&key).map(|(a, k)| a ^ k).collect();
    attr(
        &mut attrs,
        ATTR_XOR_MAPPED,
        &addr_value(family, xport, &xip),
    );
    let mut out = Vec::with_capacity(20 + attrs.len());
    out.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    out.extend_from_slice(&u16::try_from(attrs.len()).expect("small").to_be_bytes());
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(txid);
    out.extend_from_slice(&attrs);
    Some(out)
}

fn addr_value(family: u8, port: u16, ip: &[u8]) -> Vec<u8> {
    let mut v = vec![0, family];
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(ip);
    v
}

fn attr(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&u16::try_from(value.len()).expect("small").to_be_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// Moves the calling thread into the named network namespace.
fn enter_netns(name: &str) -> io::Result<()> {
    let f = File::open(format!("/var/run/netns/{name}"))?;
    // SAFETY: a valid namespace fd; affects only this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The responder thread; stops on drop.
#[derive(Debug)]
pub struct StunServer {
    /// Where it listens (the host's address, the given port).
    pub addr: SocketAddr,
    served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StunServer {
    /// Starts answering on `host`'s IPv4 address, `port`.
    pub fn start(host: &Host, port: u16) -> io::Result<Self> {
        let addr = SocketAddr::new(host.addr(), port);
        let ns = host.ns_name().to_owned();
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (stop2, served2) = (Arc::clone(&stop), Arc::clone(&served));
        let thread = std::thread::Builder::new()
            .name("stun-server".into())
            .spawn(move || {
                let sock = enter_netns(&ns).and_then(|()| {
                    let s = UdpSocket::bind(addr)?;
                    s.set_read_timeout(Some(Duration::from_millis(50)))?;
                    Ok(s)
                });
                let sock = match sock {
                    Ok(s) => {
                        let _ = tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let mut buf = [0u8; 2048];
                while !stop2.load(Ordering::SeqCst) {
                    let Ok((n, from)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Some(resp) = binding_response(&buf[..n], from) {
                        if sock.send_to(&resp, from).is_ok() {
                            served2.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            })?;
        rx.recv().map_err(io::Error::other)??;
        Ok(Self {
            addr,
            served,
            stop,
            thread: Some(thread),
        })
    }

    /// Binding requests answered so far.
    #[must_use]
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for StunServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_binding_request_with_both_address_forms() {
        let mut req = vec![0x00, 0x01, 0x00, 0x00];
        req.extend_from_slice(&MAGIC.to_be_bytes());
        req.extend_from_slice(&[7; 12]);
        let from: SocketAddr = "10.100.0.1:40000".parse().expect("addr");
        let resp = binding_response(&req, from).expect("response");
        assert_eq!(&resp[..2], &[0x01, 0x01]);
        assert_eq!(
            usize::from(u16::from_be_bytes([resp[2], resp[3]])),
            resp.len() - 20
        );
        // MAPPED-ADDRESS, then XOR-MAPPED-ADDRESS (port 40000 ^ 0x2112 = 0xbd52, ip ^ cookie).
        assert_eq!(
            &resp[20..32],
            &[0, 1, 0, 8, 0, 1, 0x9c, 0x40, 10, 100, 0, 1]
        );
        assert_eq!(
            &resp[32..44],
            &[
                0,
                0x20,
                0,
                8,
                0,
                1,
                0xbd,
                0x52,
                10 ^ 0x21,
                100 ^ 0x12,
                0xA4,
                1 ^ 0x42
            ]
        );
        assert!(
            binding_response(&resp, from).is_none(),
            "a response is not answered"
        );
        assert!(binding_response(&req[..19], from).is_none());
    }
}
