//! `sockworks`: the `ISteamNetworkingSockets` connection calls as a Rust API, with GNS's
//! semantics and return values, over Sockworks' thread-per-core engine.
//!
//! ```text
//!  any thread ── Sockets::send_message_to_connection ──► lock-free queue ──► owning shard
//!             ◄─ receive_messages_on_{connection,poll_group} ◄─ queues the shards fill
//!             ◄─ run_callbacks ◄──────────────────────── status changes the shards queue
//! ```
//!
//! Calls never wait for a shard on the data path: handles, states, message numbers and
//! send-buffer room are decided on the calling thread from shared records (docs/design.md,
//! "The send path without a round trip"). Only diagnostics (real-time and detailed status) ask
//! the shard, with a bounded wait. The README's feature table says, call by call, what works.
//!
//! ```no_run
//! use sockworks::{Sockets, ConfigValue, send_flags};
//! let sockets = Sockets::new().unwrap();
//! let listen = sockets.create_listen_socket_ip("[::]:27015".parse().unwrap(), &[]);
//! assert_ne!(listen, sockworks::ListenSocket::INVALID);
//! ```

mod activity;
mod auth;
mod auth_cert;
mod auth_client;
mod auth_config;
mod callbacks;
mod config;
mod config_get;
mod conn_table;
mod connect;
mod fakeip;
mod group_queue;
mod groups;
mod handles;
mod hosted;
mod info;
mod introspect;
mod message;
mod messages;
mod p2p;
mod p2p_net;
mod p2p_rendezvous;
mod pair;
mod record;
mod recv_credit;
mod result;
mod shard_app;
mod shared;
mod sockets;
mod sync;

pub use sockworks_engine as engine;

pub use auth_config::{AuthStatus, AuthStatusFn, Availability, CaClientConfig, TrustConfig};
pub use callbacks::{StatusChanged, StatusChangedFn};
pub use config::{
    Config, ConfigError, ConfigPayload, ConfigValue, MAX_CONNECTIONS_ID,
    MAX_CONNECTIONS_PER_ADDRESS_ID, MAX_PENDING_CONNECTIONS_ID, P2pSettings, UNRELIABLE_MAX_AGE_ID,
};
pub use fakeip::{
    FAKE_UDP_CLEANUP_DELAY, FAKE_UDP_IDLE_TIMEOUT, FakeIpResult, FakeIpResultFn, FakeUdpMessage,
    FakeUdpPort, MAX_FAKE_UDP_MESSAGE_SIZE, ipv4_fake_ip_type, is_fake_ipv4,
};
pub use handles::{Connection, ConnectionState, ListenSocket, PollGroup};
pub use hosted::HostedConfig;
pub use info::{ConnectionInfo, LaneStatus, RealTimeStatus, info_flags};
pub use message::{Message, OutMessage, send_flags};
pub use messages::MAX_LANES;
pub use p2p::{ConnectionSignaling, SignalingRecvContext};
pub use p2p_rendezvous::RendezvousConfig;
pub use result::EResult;
pub use sockets::{InitError, Sockets, SocketsConfig};
pub use sockworks_engine::wire::fakeip::FakeIpType;
pub use sockworks_relay::routing::RoutingKey;
pub use sockworks_relay::ticket::RelayAuthTicket;
pub use sockworks_rendezvous::ClientAuth as RendezvousAuth;
