//! Documented calls Sockworks does not implement yet: FakeIP. Each returns the
//! failure value the documentation gives, so callers take their documented error path; the
//! README's feature table lists them.

use crate::config::ConfigValue;
use crate::handles::{Connection, ListenSocket};
use crate::result::EResult;
use crate::sockets::Sockets;

impl Sockets {
    /// `CreateListenSocketP2PFakeIP`: not implemented: [`ListenSocket::INVALID`].
    pub fn create_listen_socket_p2p_fake_ip(
        &self,
        _fake_port_index: i32,
        _options: &[ConfigValue],
    ) -> ListenSocket {
        ListenSocket::INVALID
    }

    /// `BeginAsyncRequestFakeIP`: no FakeIP service: false.
    pub fn begin_async_request_fake_ip(&self, _num_ports: i32) -> bool {
        false
    }

    /// `GetFakeIP`: no FakeIP assigned: `None`.
    pub fn get_fake_ip(&self, _fake_port_index: i32) -> Option<std::net::SocketAddr> {
        None
    }

    /// `CreateFakeUDPPort`: not implemented: `None`.
    pub fn create_fake_udp_port(&self, _fake_server_port_index: i32) -> Option<()> {
        None
    }

    /// `GetRemoteFakeIPForConnection`: not a FakeIP connection: InvalidParam for an invalid
    /// handle, else InvalidState.
    pub fn get_remote_fake_ip_for_connection(&self, conn: Connection) -> EResult {
        if self.shared().conn(conn).is_some() {
            EResult::InvalidState
        } else {
            EResult::InvalidParam
        }
    }
}
