//! Hosted dedicated servers behind our relay fleet (`sockworks-relay`), with SDR's API
//! semantics: the server side's port, POP, opaque routing blob and listen socket, and the
//! client's cache of relay auth tickets (`ReceivedRelayAuthTicket`,
//! `FindRelayAuthTicketForServer`), and `ConnectToHostedDedicatedServer`: a client connection
//! whose packets travel inside a relay session opened with the cached ticket (the engine's
//! `relay_link`). The relay is chosen by measured ping among `SocketsConfig::relays` (else
//! `SOCKWORKS_RELAYS`), and a live session moves to another relay when its relay stops
//! answering.
//!
//! A server learns its place from [`HostedConfig`] (`SocketsConfig::hosted`), else from the
//! environment as SDR's does: `SDR_LISTEN_PORT`, `SDR_POPID` (the POP code), and ours
//! `SOCKWORKS_PUBLIC_ADDR` (the address relays forward to) and `SOCKWORKS_RELAY_ROUTING_KEY`
//! (the fleet's 64-hex-digit routing key).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use sockworks_engine::wire::identity::Identity;
use sockworks_relay::routing::{RoutingKey, seal};
use sockworks_relay::ticket::{RelayAuthTicket, parse_unverified};

use std::sync::atomic::Ordering;

use sockworks_engine::proto::connection::ApiState;
use sockworks_engine::shard::Command;

use crate::config::ConfigValue;
use crate::handles::{Connection, ListenSocket};
use crate::info::ConnectionInfo;
use crate::record::ConnRecord;
use crate::result::EResult;
use crate::sockets::Sockets;
use crate::sync::lock;

/// Where a hosted server sits in a relay fleet (ours; SDR reads its environment).
#[derive(Clone)]
pub struct HostedConfig {
    /// The UDP port relays forward to (`SDR_LISTEN_PORT`).
    pub listen_port: u16,
    /// The POP code of the data center, up to 4 characters (`SDR_POPID`).
    pub pop: String,
    /// The address the relays reach this server on.
    pub public_addr: SocketAddr,
    /// The fleet's routing key: seals the server's address inside the routing blob.
    pub routing_key: RoutingKey,
}

impl std::fmt::Debug for HostedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostedConfig")
            .field("listen_port", &self.listen_port)
            .field("pop", &self.pop)
            .field("public_addr", &self.public_addr)
            .finish_non_exhaustive()
    }
}

impl HostedConfig {
    /// From the environment, as SDR's: `None` unless `SDR_LISTEN_PORT` is a port.
    fn from_env() -> Option<HostedConfig> {
        let port: u16 = std::env::var("SDR_LISTEN_PORT").ok()?.parse().ok()?;
        let pop = std::env::var("SDR_POPID").unwrap_or_else(|_| "dev".to_owned());
        let public_addr = std::env::var("SOCKWORKS_PUBLIC_ADDR")
            .ok()
            .and_then(|a| a.parse().ok())
            .unwrap_or(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
        let routing_key = std::env::var("SOCKWORKS_RELAY_ROUTING_KEY")
            .ok()
            .and_then(|k| RoutingKey::from_hex(k.trim()).ok())?;
        Some(HostedConfig {
            listen_port: port,
            pop,
            public_addr,
            routing_key,
        })
    }
}

/// The client's cached tickets, by (server identity string, virtual port).
#[derive(Default)]
pub(crate) struct TicketCache {
    tickets: std::sync::Mutex<Vec<(RelayAuthTicket, Vec<u8>)>>,
}

/// Tickets kept at most (the oldest expiring goes first).
const MAX_TICKETS: usize = 1024;

/// GNS's `CalculateSteamNetworkingPOPIDFromString`: three or four characters packed.
fn pop_id(code: &str) -> u32 {
    let b = code.as_bytes();
    let at = |i: usize| u32::from(b.get(i).copied().unwrap_or(0));
    (at(0) << 16) | (at(1) << 8) | at(2) | (at(3) << 24)
}

impl Sockets {
    fn hosted(&self) -> Option<HostedConfig> {
        self.shared().hosted.clone().or_else(HostedConfig::from_env)
    }

    /// `GetHostedDedicatedServerPort`: the port relays forward to, 0 when not hosted.
    pub fn get_hosted_dedicated_server_port(&self) -> u16 {
        self.hosted().map_or(0, |h| h.listen_port)
    }

    /// `GetHostedDedicatedServerPOPID`: the data center's POP id, 0 when not hosted.
    pub fn get_hosted_dedicated_server_pop_id(&self) -> u32 {
        self.hosted().map_or(0, |h| pop_id(&h.pop))
    }

    /// `GetHostedDedicatedServerAddress`: the opaque routing blob (at most 128 bytes; the POP
    /// code, then this server's address sealed with the fleet's key, so clients holding it
    /// in a ticket cannot learn the address). Send it to your backend, which puts it in the
    /// tickets it issues. InvalidState when not hosted.
    pub fn get_hosted_dedicated_server_address(&self) -> Result<Vec<u8>, EResult> {
        let h = self.hosted().ok_or(EResult::InvalidState)?;
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| EResult::Fail)?;
        seal(&h.pop, h.public_addr, &h.routing_key, nonce).map_err(|_| EResult::InvalidParam)
    }

    /// `CreateHostedDedicatedServerListenSocket`: listens on the hosted port, where relays
    /// forward clients' packets; the virtual port is checked by the client's ticket.
    /// [`ListenSocket::INVALID`] when not hosted or the port cannot be bound.
    ///
    /// The socket is bound to the public address when that address is one of this host's:
    /// relays accept only replies that come from the address they sent to, and a socket bound
    /// to all addresses answers from whichever address the route back prefers (on a host with
    /// several interfaces, not the public one). Where the public address is not local (a 1:1
    /// NAT in front of the host), it listens on all addresses.
    pub fn create_hosted_dedicated_server_listen_socket(
        &self,
        _virtual_port: i32,
        options: &[ConfigValue],
    ) -> ListenSocket {
        let Some(h) = self.hosted() else {
            return ListenSocket::INVALID;
        };
        if !h.public_addr.ip().is_unspecified() {
            // Fails at once (nothing bound) where the address is not this host's.
            let bound = self.create_listen_socket_ip(
                SocketAddr::new(h.public_addr.ip(), h.listen_port),
                options,
            );
            if bound != ListenSocket::INVALID {
                return bound;
            }
        }
        let addr = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), h.listen_port);
        self.create_listen_socket_ip(addr, options)
    }

    /// `ReceivedRelayAuthTicket`: caches a signed ticket from the backend (the relay checks
    /// its signature; the client holds no CA keys) and returns what it says; `None` for a
    /// malformed or expired one.
    pub fn received_relay_auth_ticket(&self, ticket: &[u8]) -> Option<RelayAuthTicket> {
        let parsed = parse_unverified(ticket).ok()?;
        if parsed.expiry_unix <= unix_now() {
            return None;
        }
        let cache = &self.shared().tickets;
        let mut t = lock(&cache.tickets);
        t.retain(|(k, _)| k.expiry_unix > unix_now());
        if t.len() >= MAX_TICKETS
            && let Some(i) = (0..t.len()).min_by_key(|&i| t[i].0.expiry_unix)
        {
            t.swap_remove(i);
        }
        t.push((parsed.clone(), ticket.to_vec()));
        Some(parsed)
    }

    /// `FindRelayAuthTicketForServer`: seconds until the latest-expiring cached ticket for
    /// `server` on `virtual_port` expires (0: none), with the ticket.
    pub fn find_relay_auth_ticket_for_server(
        &self,
        server: &Identity,
        virtual_port: i32,
    ) -> (i32, Option<RelayAuthTicket>) {
        let name = server.to_string();
        let now = unix_now();
        let t = lock(&self.shared().tickets.tickets);
        let best = t
            .iter()
            .map(|(k, _)| k)
            .filter(|k| {
                k.gameserver == name
                    && k.expiry_unix > now
                    && (k.restrict_to_vport < 0 || k.restrict_to_vport == virtual_port)
            })
            .max_by_key(|k| k.expiry_unix);
        match best {
            Some(k) => (
                i32::try_from(k.expiry_unix - now).unwrap_or(i32::MAX),
                Some(k.clone()),
            ),
            None => (0, None),
        }
    }
}

impl Sockets {
    /// `GetGameCoordinatorServerLogin`: this hosted server's identity, routing blob, the time
    /// and `app_data` (≤ 2,048 bytes), signed with its certificate's key (format and the
    /// backend's check: `sockworks_relay::login`), ≤ 4,096 bytes. InvalidState when not hosted
    /// or without a CA-signed certificate (GNS: not logged on), InvalidParam for app data over
    /// the limit.
    pub fn get_game_coordinator_server_login(&self, app_data: &[u8]) -> Result<Vec<u8>, EResult> {
        self.game_coordinator_server_login(app_data)
            .map(|(_, signed)| signed)
    }

    /// [`Sockets::get_game_coordinator_server_login`] with what it signed, for callers that
    /// show the fields as well (the C ABI fills `SteamDatagramGameCoordinatorServerLogin`).
    pub fn game_coordinator_server_login(
        &self,
        app_data: &[u8],
    ) -> Result<(sockworks_relay::login::Login, Vec<u8>), EResult> {
        if app_data.len() > sockworks_relay::login::MAX_APP_DATA {
            return Err(EResult::InvalidParam);
        }
        let routing = self.get_hosted_dedicated_server_address()?;
        let (identity, seed, cert) = self
            .shared()
            .auth
            .signing_material()
            .ok_or(EResult::InvalidState)?;
        let login = sockworks_relay::login::Login {
            identity: identity.to_string(),
            routing,
            app_id: 0,
            rtime: unix_now(),
            app_data: app_data.to_vec(),
        };
        let key = sockworks_engine::crypto::keys::IdentityKey::from_seed(seed);
        let signed =
            sockworks_relay::login::sign(&login, &cert, &key).map_err(|_| EResult::InvalidParam)?;
        Ok((login, signed))
    }

    /// `ConnectToHostedDedicatedServer`: connects to `server` on `virtual_port` through a
    /// relay, with the latest-expiring cached ticket for it. [`Connection::INVALID`] without a
    /// ticket or a relay. The hosted server must prove `server` with its certificate.
    pub fn connect_to_hosted_dedicated_server(
        &self,
        server: &Identity,
        virtual_port: i32,
        options: &[ConfigValue],
    ) -> Connection {
        let sh = self.shared();
        let Ok(config) = crate::sync::read(&sh.global).with_options(options) else {
            return Connection::INVALID;
        };
        let name = server.to_string();
        let now = unix_now();
        let ticket = lock(&sh.tickets.tickets)
            .iter()
            .filter(|(k, _)| {
                k.gameserver == name
                    && k.expiry_unix > now
                    && (k.restrict_to_vport < 0 || k.restrict_to_vport == virtual_port)
            })
            .max_by_key(|(k, _)| k.expiry_unix)
            .map(|(_, bytes)| bytes.clone());
        let Some(ticket) = ticket else {
            tracing::warn!("ConnectToHostedDedicatedServer: no relay auth ticket for {name}");
            return Connection::INVALID;
        };
        let relays = by_ping(relays(sh));
        let Some(&relay) = relays.first() else {
            tracing::warn!("ConnectToHostedDedicatedServer: no relay configured");
            return Connection::INVALID;
        };
        let shard = sh.next_client_shard.fetch_add(1, Ordering::Relaxed) % sh.shards.len();
        let Ok(local) = sh.client_socket(shard, relay) else {
            return Connection::INVALID;
        };
        let Some(id) = sh.allocate_id(shard) else {
            sh.release_client_socket(shard, local, relay);
            return Connection::INVALID;
        };
        let info = ConnectionInfo::new(relay, ApiState::Connecting, 0);
        let rec = ConnRecord::new(Connection(id), shard, ListenSocket::INVALID, info, &config);
        rec.set_client_socket(local, relay);
        crate::sync::write(&sh.shards[shard].conns).insert(rec);
        sh.send(
            shard,
            Command::ConnectRelay {
                local,
                id: id.into(),
                relays,
                ticket,
                config: Box::new(config.connection),
                expected: Some(Box::new(server.clone())),
            },
        );
        Connection(id)
    }
}

/// How long a client waits for its relays' Pongs before it picks one.
const PING_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// `relays` ordered by a measured round trip (one Ping each, [`PING_WAIT`] at most), those
/// that did not answer last in their given order.
fn by_ping(relays: Vec<SocketAddr>) -> Vec<SocketAddr> {
    use sockworks_engine::wire::relay::Message;
    if relays.len() < 2 {
        return relays;
    }
    let any: SocketAddr = if relays[0].is_ipv4() {
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0)
    } else {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
    };
    let Ok(socket) = std::net::UdpSocket::bind(any) else {
        return relays;
    };
    let clock = sockworks_engine::shard::Clock::new();
    let start = clock.now();
    for (i, r) in relays.iter().enumerate() {
        let ping = Message::Ping {
            timestamp: i as u64,
            session: 0,
            token: 0,
        };
        // An unreachable relay simply does not answer.
        let _ = socket.send_to(&ping.to_vec(), r);
    }
    let mut rtt: Vec<Option<std::time::Duration>> = vec![None; relays.len()];
    let mut buf = [0u8; 64];
    loop {
        let waited = clock.now().saturating_since(start);
        let Some(left) = PING_WAIT.checked_sub(waited).filter(|d| !d.is_zero()) else {
            break;
        };
        if socket.set_read_timeout(Some(left)).is_err() {
            break;
        }
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            break;
        };
        if let Ok(Message::Pong { timestamp, .. }) = Message::decode(&buf[..n])
            && let Some(slot) = usize::try_from(timestamp).ok().and_then(|i| rtt.get_mut(i))
            && relays.get(usize::try_from(timestamp).unwrap_or(usize::MAX)) == Some(&from)
        {
            slot.get_or_insert(clock.now().saturating_since(start));
        }
        if rtt.iter().all(Option::is_some) {
            break;
        }
    }
    let mut order: Vec<usize> = (0..relays.len()).collect();
    order.sort_by_key(|&i| (rtt[i].is_none(), rtt[i], i));
    order.into_iter().map(|i| relays[i]).collect()
}

/// The relays a client may use: `SocketsConfig::relays`, else `SOCKWORKS_RELAYS` (a comma
/// list of `IP:port`).
fn relays(sh: &crate::shared::Shared) -> Vec<SocketAddr> {
    if !sh.relays.is_empty() {
        return sh.relays.clone();
    }
    std::env::var("SOCKWORKS_RELAYS")
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_default()
}

#[expect(
    clippy::disallowed_methods,
    reason = "ticket expiry is wall-clock Unix time"
)]
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::pop_id;

    #[test]
    fn pop_ids_pack_as_gns_does() {
        // 'f' 'r' 'a' = 0x66 0x72 0x61.
        assert_eq!(pop_id("fra"), 0x0066_7261);
        assert_eq!(pop_id("dev"), 0x0064_6576);
        assert_eq!(pop_id("abcd"), 0x6461_6263);
    }
}
