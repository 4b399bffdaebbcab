//! Per-connection settings with GNS's defaults (spec §6), inherited by the API from global and
//! listen-socket scope.

use std::sync::Arc;
use std::time::Duration;

use crate::crypto::AeadBackend;
use crate::proto::handshake::AuthPolicy;
use crate::proto::snp::SnpConfig;

/// Settings one connection runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// `TimeoutInitial`: handshake (or accept) must finish within this.
    pub timeout_initial: Duration,
    /// `TimeoutConnected`: silence after which a connected peer is declared dead.
    pub timeout_connected: Duration,
    /// `Unencrypted` 0..=3 (spec §3.3): cipher preference.
    pub unencrypted: i32,
    /// `IP_AllowWithoutAuth` and friends.
    pub auth: AuthPolicy,
    /// `MTU_PacketSize`: largest UDP payload we send (200..=1300).
    pub mtu_packet_size: usize,
    /// AEAD implementation.
    pub aead_backend: AeadBackend,
    /// Message-layer settings (Nagle, buffers, send rates).
    pub snp: SnpConfig,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            timeout_initial: Duration::from_secs(10),
            timeout_connected: Duration::from_secs(10),
            unencrypted: 0,
            auth: AuthPolicy::default(),
            mtu_packet_size: 1300,
            aead_backend: AeadBackend::Ring,
            snp: SnpConfig::default(),
        }
    }
}

/// The part of a [`ConnectionConfig`] the connection layer reads; the message-layer part
/// (`snp`) lives in the connection's [`crate::proto::snp::Snp`] only, not twice per
/// connection (issue 16: memory per idle connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Settings {
    pub timeout_initial: Duration,
    pub timeout_connected: Duration,
    pub unencrypted: i32,
    pub auth: AuthPolicy,
    pub mtu_packet_size: usize,
    pub aead_backend: AeadBackend,
}

impl Settings {
    /// The connection-layer part of `c`.
    pub(super) fn of(c: &ConnectionConfig) -> Self {
        Settings {
            timeout_initial: c.timeout_initial,
            timeout_connected: c.timeout_connected,
            unencrypted: c.unencrypted,
            auth: c.auth,
            mtu_packet_size: c.mtu_packet_size,
            aead_backend: c.aead_backend,
        }
    }

    /// The whole configuration again, with the message layer's `snp`.
    pub(super) fn with(&self, snp: SnpConfig) -> ConnectionConfig {
        ConnectionConfig {
            timeout_initial: self.timeout_initial,
            timeout_connected: self.timeout_connected,
            unencrypted: self.unencrypted,
            auth: self.auth,
            mtu_packet_size: self.mtu_packet_size,
            aead_backend: self.aead_backend,
            snp,
        }
    }
}

/// A connection's settings as it holds them: shared, since a server's thousands of
/// connections nearly all run with their listen socket's settings (160 bytes each, kept once
/// instead of per connection: issue 16, memory per idle connection).
#[derive(Debug, Clone)]
pub struct SharedConfig {
    pub(super) settings: Arc<Settings>,
    pub(super) snp: Arc<SnpConfig>,
}

impl From<ConnectionConfig> for SharedConfig {
    /// Settings of one connection's own (not shared with any other).
    fn from(c: ConnectionConfig) -> Self {
        SharedConfig {
            settings: Arc::new(Settings::of(&c)),
            snp: Arc::new(c.snp),
        }
    }
}

/// Hands out one [`SharedConfig`] per distinct [`ConnectionConfig`] in a row: an endpoint
/// keeps one and passes every new connection's settings through it.
#[derive(Debug, Default)]
pub struct ConfigCache {
    last: Option<(ConnectionConfig, SharedConfig)>,
}

impl ConfigCache {
    /// `c` as shared settings: the same allocation as the previous call's when equal.
    pub fn share(&mut self, c: &ConnectionConfig) -> SharedConfig {
        match &self.last {
            Some((prev, shared)) if prev == c => shared.clone(),
            _ => {
                let shared = SharedConfig::from(*c);
                self.last = Some((*c, shared.clone()));
                shared
            }
        }
    }
}
