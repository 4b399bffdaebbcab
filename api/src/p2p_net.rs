//! The network side of P2P: each shard's ICE sockets (one per usable local address, bound on
//! first use), and the ICE settings a connection starts with (`P2P_*` config values resolved
//! to addresses).
//!
//! As GNS's ICE client, host candidates come from every interface address except loopback,
//! link-local and multicast ones (the engine's ICE agent applies GNS's exact rules), so P2P
//! needs at least one non-loopback address; tests give themselves one in a network namespace.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;

use sockworks_engine::driver::Driver as _;
use sockworks_engine::driver::mmsg::{MmsgConfig, MmsgDriver};
use sockworks_engine::proto::ice::{IceConfig, LocalInterface, TurnServer};
use sockworks_engine::shard::Command;

use crate::config::P2pSettings;
use crate::shared::Shared;

/// The remote address a P2P connection reports before ICE selects a route, or through a
/// relay: GNS's cleared address, `[::]:0`.
pub(crate) fn no_route() -> SocketAddr {
    SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
}

/// Binds the shards' ICE sockets once per instance; an error (no usable address, a bind
/// failure) is remembered and every P2P call then fails.
pub(crate) fn ensure(sh: &Shared) -> Result<(), ()> {
    *sh.p2p.net.get_or_init(|| bind_all(sh))
}

fn bind_all(sh: &Shared) -> Result<(), ()> {
    let addrs = usable_addresses();
    if addrs.is_empty() {
        tracing::warn!("P2P: no usable local address (loopback is never an ICE candidate)");
    }
    for (i, shard) in sh.shards.iter().enumerate() {
        let mut interfaces = Vec::with_capacity(addrs.len());
        for &(ip, prefix_len) in &addrs {
            let config = MmsgConfig {
                reuse_port: false,
                ..MmsgConfig::default()
            };
            let driver = match MmsgDriver::bind_with(SocketAddr::new(ip, 0), config) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("P2P: cannot bind an ICE socket on {ip}: {e}");
                    continue;
                }
            };
            let Ok(addr) = driver.local_addr() else {
                continue;
            };
            let local = shard.next_local.fetch_add(1, Ordering::Relaxed);
            sh.send(
                i,
                Command::Attach {
                    local,
                    socket: Box::new(driver),
                },
            );
            interfaces.push(LocalInterface {
                socket: local,
                addr,
                prefix_len,
            });
        }
        sh.send(i, Command::SetP2pInterfaces { interfaces });
    }
    Ok(())
}

/// Interface addresses ICE may gather (GNS skips loopback interfaces; the agent filters the
/// rest), with their prefix lengths.
fn usable_addresses() -> Vec<(IpAddr, u8)> {
    let Ok(ifaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    ifaces
        .into_iter()
        .filter(|i| !i.is_loopback())
        .filter_map(|i| {
            let ip = i.ip();
            // IPv6 link-local needs a scope id; GNS skips fe80::/16 anyway.
            if let IpAddr::V6(v6) = ip
                && (v6.segments()[0] & 0xffc0) == 0xfe80
            {
                return None;
            }
            let prefix = match i.addr {
                if_addrs::IfAddr::V4(a) => a.prefixlen,
                if_addrs::IfAddr::V6(a) => a.prefixlen,
            };
            Some((ip, prefix))
        })
        .collect()
}

/// A connection's ICE settings from its `P2P_*` values. Server names are resolved now, as
/// GNS resolves them synchronously; one that does not resolve is skipped with a warning.
pub(crate) fn ice_config(p: &P2pSettings) -> IceConfig {
    let stun_servers = server_list(&p.stun_servers, "stun:");
    let turn_addrs = server_list(&p.turn_servers, "turn:");
    let users: Vec<&str> = split(&p.turn_users).collect();
    let passes: Vec<&str> = split(&p.turn_passes).collect();
    // GNS: if the lists' lengths differ, every server is used without credentials.
    let paired = users.len() == turn_addrs.len() && passes.len() == turn_addrs.len();
    let turn_servers = turn_addrs
        .into_iter()
        .enumerate()
        .map(|(i, addr)| TurnServer {
            addr,
            user: if paired {
                users[i].to_owned()
            } else {
                String::new()
            },
            pass: if paired {
                passes[i].to_owned()
            } else {
                String::new()
            },
        })
        .collect();
    IceConfig {
        enable_mask: p.ice_enable,
        stun_servers,
        turn_servers,
    }
}

fn split(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn server_list(list: &str, prefix: &str) -> Vec<SocketAddr> {
    split(list)
        .filter_map(|s| {
            let s = s.strip_prefix(prefix).unwrap_or(s);
            match s.to_socket_addrs().map(|mut a| a.next()) {
                Ok(Some(a)) => Some(a),
                _ => {
                    tracing::warn!("P2P: cannot resolve server '{s}'");
                    None
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_pair_with_servers_only_when_the_lists_match() {
        let mut p = P2pSettings {
            turn_servers: "turn:10.0.0.1:3478, 10.0.0.2:3478".into(),
            turn_users: "u1,u2".into(),
            turn_passes: "p1,p2".into(),
            stun_servers: "stun:10.0.0.3:3478".into(),
            ..P2pSettings::default()
        };
        let c = ice_config(&p);
        assert_eq!(c.stun_servers, vec!["10.0.0.3:3478".parse().unwrap()]);
        assert_eq!(c.turn_servers.len(), 2);
        assert_eq!(
            (
                c.turn_servers[1].user.as_str(),
                c.turn_servers[1].pass.as_str()
            ),
            ("u2", "p2")
        );
        p.turn_passes = "p1".into();
        let c = ice_config(&p);
        assert!(
            c.turn_servers
                .iter()
                .all(|t| t.user.is_empty() && t.pass.is_empty())
        );
    }
}
