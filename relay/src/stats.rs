//! The relay's counters, printed as `key=value` pairs on the stats line.

use std::fmt;

/// Counters since start (what the stats line prints).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams from clients (any kind).
    pub datagrams: u64,
    /// Client datagrams that did not decode.
    pub malformed: u64,
    /// Client datagrams of a kind only the relay sends.
    pub unexpected: u64,
    /// Sessions created.
    pub sessions_opened: u64,
    /// Hellos that repeated a live session's ticket from its own address (answered again).
    pub hello_repeats: u64,
    /// Hellos with a forged or altered signature, or an unknown / revoked CA.
    pub refused_forged: u64,
    /// Hellos whose ticket did not decode or broke a limit.
    pub refused_malformed: u64,
    /// Hellos with an expired ticket (or one expiring more than 24 h ahead).
    pub refused_expired: u64,
    /// Hellos from an address other than the ticket's `public_ip`.
    pub refused_address: u64,
    /// Hellos with a ticket live for another client address (replay).
    pub refused_replay: u64,
    /// Hellos whose routing blob does not open with our key.
    pub refused_routing: u64,
    /// Hellos refused unverified because the relay-wide check budget was spent.
    pub refused_rate: u64,
    /// Hellos refused because the relay was full.
    pub refused_full: u64,
    /// Hellos too short to answer without amplification (dropped).
    pub short_hello: u64,
    /// Data / Ping / Close with an unknown session or a wrong token (dropped).
    pub bad_session: u64,
    /// Client packets over their ticket's rate (dropped).
    pub rate_limited: u64,
    /// Packets forwarded to servers.
    pub to_server: u64,
    /// Payload bytes forwarded to servers.
    pub to_server_bytes: u64,
    /// Packets forwarded to clients.
    pub to_client: u64,
    /// Payload bytes forwarded to clients.
    pub to_client_bytes: u64,
    /// Datagrams on a session socket from someone other than its server (dropped).
    pub server_stray: u64,
    /// Client address changes taken from authenticated Data.
    pub client_moves: u64,
    /// Pings answered.
    pub pings: u64,
    /// Sessions ended by idleness.
    pub expired: u64,
    /// Sessions ended by Close.
    pub closed: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "datagrams={} malformed={} unexpected={} opened={} hello_repeats={} \
             refused_forged={} refused_malformed={} refused_expired={} refused_address={} \
             refused_replay={} refused_routing={} refused_rate={} refused_full={} \
             short_hello={} bad_session={} rate_limited={} to_server={} to_server_bytes={} \
             to_client={} to_client_bytes={} server_stray={} client_moves={} pings={} \
             expired={} closed={}",
            self.datagrams,
            self.malformed,
            self.unexpected,
            self.sessions_opened,
            self.hello_repeats,
            self.refused_forged,
            self.refused_malformed,
            self.refused_expired,
            self.refused_address,
            self.refused_replay,
            self.refused_routing,
            self.refused_rate,
            self.refused_full,
            self.short_hello,
            self.bad_session,
            self.rate_limited,
            self.to_server,
            self.to_server_bytes,
            self.to_client,
            self.to_client_bytes,
            self.server_stray,
            self.client_moves,
            self.pings,
            self.expired,
            self.closed
        )
    }
}

/// Sums the counters of a sharded relay's shards.
impl std::ops::AddAssign<&Stats> for Stats {
    fn add_assign(&mut self, other: &Stats) {
        self.datagrams += other.datagrams;
        self.malformed += other.malformed;
        self.unexpected += other.unexpected;
        self.sessions_opened += other.sessions_opened;
        self.hello_repeats += other.hello_repeats;
        self.refused_forged += other.refused_forged;
        self.refused_malformed += other.refused_malformed;
        self.refused_expired += other.refused_expired;
        self.refused_address += other.refused_address;
        self.refused_replay += other.refused_replay;
        self.refused_routing += other.refused_routing;
        self.refused_rate += other.refused_rate;
        self.refused_full += other.refused_full;
        self.short_hello += other.short_hello;
        self.bad_session += other.bad_session;
        self.rate_limited += other.rate_limited;
        self.to_server += other.to_server;
        self.to_server_bytes += other.to_server_bytes;
        self.to_client += other.to_client;
        self.to_client_bytes += other.to_client_bytes;
        self.server_stray += other.server_stray;
        self.client_moves += other.client_moves;
        self.pings += other.pings;
        self.expired += other.expired;
        self.closed += other.closed;
    }
}
