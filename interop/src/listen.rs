//! Listening with real GNS on any port, port 0 included.

use std::net::SocketAddr;

use anyhow::{Context as _, anyhow};
use gns::{GnsGlobal, GnsSocket, IsCreated, IsServer};

/// CreateListenSocketIP on `bind`. GNS refuses port 0 ("Must specify local port"), so for
/// port 0 a free port is taken from the OS (bind a UDP socket, read its port, release it) and
/// the listen is retried with a fresh one if another process grabbed it in between.
pub fn listen(global: &'static GnsGlobal, bind: SocketAddr) -> anyhow::Result<GnsSocket<IsServer>> {
    if bind.port() != 0 {
        return GnsSocket::<IsCreated>::new(global)
            .listen(bind.ip(), bind.port())
            .map_err(|e| anyhow!("listen on {bind}: {e}"));
    }
    let mut last = None;
    for _ in 0..5 {
        let port = std::net::UdpSocket::bind(bind)
            .and_then(|s| s.local_addr())
            .with_context(|| format!("finding a free UDP port on {}", bind.ip()))?
            .port();
        match GnsSocket::<IsCreated>::new(global).listen(bind.ip(), port) {
            Ok(socket) => return Ok(socket),
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow!("listen on {bind}: {last:?}"))
}
