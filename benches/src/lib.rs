//! Shared inputs for the criterion benches (see `benches/`) and the bench programs (`src/bin`).

use std::time::Duration;

use sockworks_engine::proto::connection::ConnectionConfig;
use sockworks_engine::proto::endpoint::{ConnectionId, EndpointConfig};
use sockworks_engine::testing::{LinkConditions, Pair};

/// Two simulated endpoints, connected (handshake done, real AES-GCM), over a 200 us link with a
/// virtual clock; fixed 100 MiB/s rate and large buffers, so pacing and limits stay out of a
/// transfer's way. `None` if the simulated handshake did not complete. Used by the `transfer`
/// bench and `sim_transfer`, so their figures describe the same setup.
pub fn simulated_pair() -> Option<(Pair, ConnectionId, ConnectionId)> {
    let mut cfg = ConnectionConfig::default();
    cfg.snp.send_rate_min = 100 << 20;
    cfg.snp.send_rate_max = 100 << 20;
    cfg.snp.send_buffer_size = 16 << 20;
    cfg.snp.recv_buffer_size = 16 << 20;
    cfg.snp.recv_buffer_messages = 1 << 20;
    let ep = EndpointConfig {
        connection: cfg,
        ..Default::default()
    };
    let link = LinkConditions::with_delay(Duration::from_micros(200));
    let mut p = Pair::new(1, link, ep, ep);
    let (c, s) = p.connect(Duration::from_secs(5))?;
    Some((p, c, s))
}
