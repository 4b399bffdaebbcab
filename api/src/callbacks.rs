//! `SteamNetConnectionStatusChangedCallback_t` and the queue `run_callbacks` drains: shards
//! queue status changes; the application's thread runs the callbacks.

use std::sync::Arc;

use crate::handles::{Connection, ConnectionState};
use crate::info::ConnectionInfo;

/// A connection-status callback (`Callback_ConnectionStatusChanged`), called on the thread
/// that calls `run_callbacks`.
pub type StatusChangedFn = Arc<dyn Fn(&StatusChanged) + Send + Sync>;

/// `SteamNetConnectionStatusChangedCallback_t`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChanged {
    /// The connection.
    pub conn: Connection,
    /// Its state and details after the change.
    pub info: ConnectionInfo,
    /// The state before.
    pub old_state: ConnectionState,
}
