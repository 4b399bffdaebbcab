//! An application that accepts every incoming connection and echoes every message back on the
//! same lane, reliably: the server side of loadgen and of the runtime tests.

use crate::proto::connection::ApiState;
use crate::proto::endpoint::Endpoint;
use crate::proto::snp::send_flags;
use crate::time::Timestamp;

use super::App;

/// Accepts every connection and echoes every message (reliable, same lane).
#[derive(Debug, Default)]
pub struct EchoApp;

impl App for EchoApp {
    fn on_tick(&mut self, ep: &mut Endpoint, now: Timestamp) {
        while let Some(ev) = ep.poll_event() {
            if ev.incoming && ev.change.new == ApiState::Connecting {
                let _ = ep.accept(now, ev.connection);
            }
            if matches!(
                ev.change.new,
                ApiState::ClosedByPeer | ApiState::ProblemDetectedLocally
            ) {
                let _ = ep.close(now, ev.connection, 0, "", false);
            }
        }
        // Only connections that received something, not a scan of all of them.
        while let Some(c) = ep.poll_readable() {
            while let Some(m) = ep.poll_message(c) {
                // The client's window bounds what is queued, so the echo always fits.
                let _ = ep.send_message(now, c, m.lane, send_flags::RELIABLE, m.data);
            }
        }
    }
}
