//! The hosted server in a network namespace that only the relay's host can reach, and the
//! client in another: the client has no route to the server at all, and reaches it only
//! through the relay. Needs root (`ip netns`); prints `SKIP` and passes otherwise.

#![allow(unsafe_code, reason = "setns(2) for a socket inside a test namespace")]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;

use super::*;

/// A namespace joined to the root namespace by a veth /30: root side `.1`, namespace `.2`.
struct Ns {
    name: String,
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn namespace(tag: char, subnet: &str) -> Result<Ns, String> {
    let pid = std::process::id();
    let ns = Ns {
        name: format!("swr{pid}{tag}"),
    };
    let (outer, inner) = (format!("swr{pid}{tag}0"), format!("swr{pid}{tag}1"));
    ip(&["netns", "add", &ns.name])?;
    ip(&[
        "link", "add", &outer, "type", "veth", "peer", "name", &inner,
    ])?;
    ip(&["link", "set", &inner, "netns", &ns.name])?;
    ip(&["addr", "add", &format!("{subnet}.1/30"), "dev", &outer])?;
    ip(&["link", "set", &outer, "up"])?;
    ip(&[
        "-n",
        &ns.name,
        "addr",
        "add",
        &format!("{subnet}.2/30"),
        "dev",
        &inner,
    ])?;
    ip(&["-n", &ns.name, "link", "set", &inner, "up"])?;
    ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
    Ok(ns)
}

/// A UDP socket bound to `addr` inside namespace `ns` (setns on a helper thread: the socket
/// keeps its namespace whichever thread uses it).
fn socket_in(ns: &Ns, addr: &str) -> UdpSocket {
    let path = format!("/var/run/netns/{}", ns.name);
    let addr = addr.to_owned();
    std::thread::spawn(move || {
        let f = File::open(&path).unwrap();
        // SAFETY: `f` is an open namespace file; setns only changes this helper thread's
        // network namespace, and the thread ends right after binding.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        UdpSocket::bind(addr.as_str()).unwrap()
    })
    .join()
    .unwrap()
}

#[test]
fn server_in_a_namespace_only_the_relay_reaches() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIP server_in_a_namespace_only_the_relay_reaches: not root");
        return;
    }
    let octet = 16 + std::process::id() % 200;
    let (srv_net, cli_net) = (format!("10.231.{octet}"), format!("10.232.{octet}"));
    let (srv_ns, cli_ns) = match (namespace('s', &srv_net), namespace('c', &cli_net)) {
        (Ok(s), Ok(c)) => (s, c),
        (Err(e), _) | (_, Err(e)) => {
            println!("SKIP server_in_a_namespace_only_the_relay_reaches: {e}");
            return;
        }
    };
    let listen = format!("{cli_net}.1:0");
    let mut relay = start(&["--listen", &listen]);
    let echo = echo_on(socket_in(&srv_ns, &format!("{srv_net}.2:0")));
    let mut client = Client::on(socket_in(&cli_ns, &format!("{cli_net}.2:0")), relay.addr);
    // No direct path: the client's namespace has no route to the server's.
    let direct = client.socket.send_to(b"direct", echo.addr);
    assert!(direct.is_err() || client.recv().is_none());
    let (session, token) = client.hello(&good_ticket(echo.addr, "str:ns")).unwrap();
    let mut echoed = 0;
    for i in 0..20u8 {
        client.data(session, token, &[i; 32]);
        if client.recv().is_some() {
            echoed += 1;
        }
    }
    assert!(echoed >= 18, "{echoed} of 20 echoed");
    let relay_side: std::net::IpAddr = format!("{srv_net}.1").parse().unwrap();
    for s in echo.sources.lock().unwrap().iter() {
        assert_eq!(s.ip(), relay_side, "server saw {s}");
    }
    let server_ip = match echo.addr.ip() {
        std::net::IpAddr::V4(v4) => v4.octets(),
        std::net::IpAddr::V6(_) => unreachable!(),
    };
    for d in &client.received {
        assert!(!d.windows(4).any(|w| w == server_ip));
    }
    relay.stats_until(|s| s["to_client"] >= 18);
    drop((srv_ns, cli_ns));
}
