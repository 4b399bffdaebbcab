//! Test hosts in Linux network namespaces, for P2P tests that need real, non-loopback
//! addresses (GNS never gathers loopback addresses as ICE candidates) and real NATs.
//!
//! A [`Host`] is a network namespace with one veth link and a test-only address: IPv4 from
//! `10.x.0.0/16`, optionally IPv6 from `fd00:5eed:x::/64` (ULA, never the machine's own
//! addresses). A [`Topology`] wires hosts together:
//!
//! | builder | layout |
//! |---|---|
//! | [`Topology::direct`] | hosts `a` `10.1.0.1` / `fd00:5eed:1::1` and `b` `10.1.0.2` / `fd00:5eed:1::2` on one veth link |
//! | [`Topology::one_nat`] | `a` `10.1.0.1` behind NAT router `10.100.0.1`; `b` `10.100.0.11` on the public segment |
//! | [`Topology::two_nats`] | `a` `10.1.0.1` behind `10.100.0.1`, `b` `10.2.0.1` behind `10.100.0.2` |
//!
//! The public segment `10.100.0.0/16` is a bridge in its own namespace; the NAT topologies also
//! have a public [`Topology::server`] host `10.100.0.100` for a STUN/TURN server. A NAT router
//! forwards IPv4 and masquerades everything leaving its public side (iptables `MASQUERADE`:
//! Linux keeps the source port when it is free, so mappings are endpoint-independent, and
//! conntrack only lets replies in, so filtering is address-and-port dependent). Hosts behind a
//! NAT have IPv4 only, so nothing bypasses the NAT.
//!
//! Namespace names are `swk<pid>-<n>-<role>`, unique per process and call; every namespace
//! is deleted on drop, also while a test unwinds from a panic. Needs root; tests call
//! [`unavailable`] first and [`skip`] when it says why not.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);
static SKIPPED: AtomicUsize = AtomicUsize::new(0);

/// Why namespace tests cannot run here (not root, or `ip netns add` fails), or `None`.
#[must_use]
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces need CAP_SYS_ADMIN)".to_owned());
    }
    match Netns::create("probe") {
        Ok(ns) => {
            drop(ns);
            None
        }
        Err(e) => Some(format!("`ip netns add` failed: {e}")),
    }
}

/// Prints `SKIP <test>: <why>` (to stderr and stdout, so it shows with or without
/// `--nocapture`) and counts it; the caller then returns without asserting anything.
pub fn skip(test: &str, why: &str) {
    let n = SKIPPED.fetch_add(1, Ordering::SeqCst) + 1;
    eprintln!("SKIP {test}: {why} (skipped so far in this process: {n})");
    println!("SKIP {test}: {why}");
}

/// How many tests of this process called [`skip`].
#[must_use]
pub fn skipped() -> usize {
    SKIPPED.load(Ordering::SeqCst)
}

/// Runs a command to completion; an error carries its stderr.
fn run(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(io::Error::other(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `ip <args>`.
fn ip(args: &[&str]) -> io::Result<()> {
    run(Command::new("ip").args(args)).map(drop)
}

/// One network namespace; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `swk<pid>-<n>-<role>` with its loopback up.
    pub fn create(role: &str) -> io::Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("swk{}-{n}-{role}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (for `ip netns exec`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        ip(&[&["-n", &self.name], args].concat())
    }

    /// A command that runs `program` inside the namespace (`ip netns exec <ns> program`);
    /// `ip` execs the program, so the child's pid is the program's.
    #[must_use]
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `program args` inside the namespace to completion.
    pub fn exec(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        run(self.command(program).args(args))
    }

    /// Creates a veth pair `here_if` (in this namespace) <-> `there_if` (in `there`), both up.
    fn veth(&self, here_if: &str, there: &Self, there_if: &str) -> io::Result<()> {
        self.ip(&[
            "link",
            "add",
            here_if,
            "type",
            "veth",
            "peer",
            "name",
            there_if,
            "netns",
            &there.name,
        ])?;
        self.ip(&["link", "set", here_if, "up"])?;
        there.ip(&["link", "set", there_if, "up"])
    }

    /// Adds an address (`nodad` for IPv6, so it is usable at once rather than tentative).
    fn addr(&self, ifname: &str, cidr: &str) -> io::Result<()> {
        if cidr.contains(':') {
            self.ip(&["addr", "add", cidr, "dev", ifname, "nodad"])
        } else {
            self.ip(&["addr", "add", cidr, "dev", ifname])
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace also deletes the veth ends and bridges inside it; a process
        // still running in it keeps it alive (unnamed) until it exits.
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("netns: cleanup of {} failed: {e}", self.name);
        }
    }
}

/// A test host: a namespace whose only link is `eth0` with the addresses below.
#[derive(Debug)]
pub struct Host {
    ns: Netns,
    /// The host's IPv4 address (10.x.0.0/16).
    pub v4: Ipv4Addr,
    /// The host's IPv6 ULA address, if it has one.
    pub v6: Option<Ipv6Addr>,
}

impl Host {
    /// The namespace name.
    #[must_use]
    pub fn ns_name(&self) -> &str {
        self.ns.name()
    }

    /// The namespace itself.
    #[must_use]
    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// The IPv4 address as an [`IpAddr`].
    #[must_use]
    pub fn addr(&self) -> IpAddr {
        IpAddr::V4(self.v4)
    }

    /// A command running `program` inside this host (`ip netns exec`).
    #[must_use]
    pub fn command(&self, program: &str) -> Command {
        self.ns.command(program)
    }

    /// Starts `program args` inside this host; stdin is null, stdout and stderr inherited
    /// unless the caller uses [`Host::command`] and sets them.
    pub fn spawn(&self, program: &str, args: &[&str]) -> io::Result<Child> {
        self.command(program)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
    }
}

/// A set of hosts wired together; everything is deleted on drop.
#[derive(Debug)]
pub struct Topology {
    /// The first peer host.
    pub a: Host,
    /// The second peer host.
    pub b: Host,
    /// The public host for a STUN/TURN server (NAT topologies only).
    pub server: Option<Host>,
    /// What the topology is, for log lines.
    pub label: &'static str,
    /// Routers and the public switch, in creation order.
    infra: Vec<Netns>,
}

/// The public segment's prefix: 10.100.0.0/16.
const PUBLIC: [u8; 2] = [10, 100];
/// The STUN/TURN server's address on the public segment.
pub const SERVER_V4: Ipv4Addr = Ipv4Addr::new(10, 100, 0, 100);

fn v4(seg: [u8; 2], host: u8) -> Ipv4Addr {
    Ipv4Addr::new(seg[0], seg[1], 0, host)
}

fn ula(seg: u16, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x5eed, seg, 0, 0, 0, 0, host)
}

/// The public segment: a bridge `br0` in its own namespace; members attach with [`plug`].
fn public_switch() -> io::Result<Netns> {
    let sw = Netns::create("pub")?;
    sw.ip(&["link", "add", "br0", "type", "bridge"])?;
    sw.ip(&["link", "set", "br0", "up"])?;
    Ok(sw)
}

/// Links `ns` to the public switch as `ifname` with address `10.100.0.<host>/16`.
fn plug(sw: &Netns, port: &str, ns: &Netns, ifname: &str, host: u8) -> io::Result<Ipv4Addr> {
    sw.veth(port, ns, ifname)?;
    sw.ip(&["link", "set", port, "master", "br0"])?;
    let addr = v4(PUBLIC, host);
    ns.addr(ifname, &format!("{addr}/16"))?;
    Ok(addr)
}

/// A NAT router `wan_host` on the public switch, with a private LAN `10.<lan>.0.0/16` behind it
/// (router `.254`) and one host `10.<lan>.0.1` on that LAN, default route via the router.
fn natted_host(
    sw: &Netns,
    port: &str,
    role: &str,
    lan: u8,
    wan_host: u8,
) -> io::Result<(Netns, Host)> {
    let router = Netns::create(&format!("nat{role}"))?;
    plug(sw, port, &router, "wan0", wan_host)?;
    let ns = Netns::create(role)?;
    router.veth("lan0", &ns, "eth0")?;
    let seg = [10, lan];
    router.addr("lan0", &format!("{}/16", v4(seg, 254)))?;
    let addr = v4(seg, 1);
    ns.addr("eth0", &format!("{addr}/16"))?;
    ns.ip(&["route", "add", "default", "via", &v4(seg, 254).to_string()])?;
    router.exec("sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"])?;
    router.exec(
        "iptables",
        &[
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            "wan0",
            "-j",
            "MASQUERADE",
        ],
    )?;
    // Drop unsolicited packets to the router itself, as home routers do. Besides realism this
    // matters for hole punching: an accepted unsolicited packet (answered with ICMP) leaves a
    // conntrack entry that blocks the port-preserving mapping of the host's own later packet
    // to the same peer, so MASQUERADE would pick another port (a symmetric-looking NAT).
    router.exec(
        "iptables",
        &[
            "-A",
            "INPUT",
            "-i",
            "wan0",
            "-m",
            "conntrack",
            "!",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "DROP",
        ],
    )?;
    Ok((
        router,
        Host {
            ns,
            v4: addr,
            v6: None,
        },
    ))
}

/// A host directly on the public switch.
fn public_host(sw: &Netns, port: &str, role: &str, host: u8) -> io::Result<Host> {
    let ns = Netns::create(role)?;
    let addr = plug(sw, port, &ns, "eth0", host)?;
    Ok(Host {
        ns,
        v4: addr,
        v6: None,
    })
}

impl Topology {
    /// Two hosts on one veth link, IPv4 and IPv6: `a` = 10.1.0.1 / fd00:5eed:1::1,
    /// `b` = 10.1.0.2 / fd00:5eed:1::2.
    pub fn direct() -> io::Result<Self> {
        let a = Netns::create("a")?;
        let b = Netns::create("b")?;
        a.veth("eth0", &b, "eth0")?;
        let mut hosts = Vec::new();
        for (i, ns) in [a, b].into_iter().enumerate() {
            let n = u8::try_from(i + 1).expect("two hosts");
            let (addr, addr6) = (v4([10, 1], n), ula(1, u16::from(n)));
            ns.addr("eth0", &format!("{addr}/16"))?;
            ns.addr("eth0", &format!("{addr6}/64"))?;
            hosts.push(Host {
                ns,
                v4: addr,
                v6: Some(addr6),
            });
        }
        let b = hosts.pop().expect("b");
        let a = hosts.pop().expect("a");
        Ok(Self {
            a,
            b,
            server: None,
            label: "direct",
            infra: Vec::new(),
        })
    }

    /// `a` (10.1.0.1) behind a NAT router (public 10.100.0.1); `b` (10.100.0.11) and the
    /// server (10.100.0.100) on the public segment.
    pub fn one_nat() -> io::Result<Self> {
        let sw = public_switch()?;
        let (router, a) = natted_host(&sw, "p1", "a", 1, 1)?;
        let b = public_host(&sw, "p11", "b", 11)?;
        let server = public_host(&sw, "p100", "srv", 100)?;
        Ok(Self {
            a,
            b,
            server: Some(server),
            label: "one-nat",
            infra: vec![router, sw],
        })
    }

    /// `a` (10.1.0.1) behind NAT router 10.100.0.1, `b` (10.2.0.1) behind NAT router
    /// 10.100.0.2; the server (10.100.0.100) on the public segment between them.
    pub fn two_nats() -> io::Result<Self> {
        let sw = public_switch()?;
        let (router_a, a) = natted_host(&sw, "p1", "a", 1, 1)?;
        let (router_b, b) = natted_host(&sw, "p2", "b", 2, 2)?;
        let server = public_host(&sw, "p100", "srv", 100)?;
        Ok(Self {
            a,
            b,
            server: Some(server),
            label: "two-nats",
            infra: vec![router_a, router_b, sw],
        })
    }

    /// The server host; panics for [`Topology::direct`], which has none.
    #[must_use]
    pub fn server(&self) -> &Host {
        self.server
            .as_ref()
            .expect("this topology has no server host")
    }

    /// The NAT routers and the switch (for diagnostics such as `conntrack` or `iptables -L`).
    #[must_use]
    pub fn infra(&self) -> &[Netns] {
        &self.infra
    }
}
