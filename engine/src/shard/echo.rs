//! An application that accepts every incoming connection and echoes every message back on the
//! same lane, reliably: the server side of loadgen and of the runtime tests.

use crate::proto::connection::ApiState;
use crate::proto::endpoint::Endpoint;
use crate::proto::snp::send_flags;
use crate::time::Timestamp;

use super::App;

/// Accepts every connection and echoes every message (reliable, same lane).
#[derive(Debug, Default)]
pub struct EchoApp {
    conns: Vec<u32>,
}

impl App for EchoApp {
    fn on_tick(&mut self, ep: &mut Endpoint, now: Timestamp) {
        while let Some(ev) = ep.poll_event() {
            if ev.incoming
                && ev.change.new == ApiState::Connecting
                && ep.accept(now, ev.connection).is_ok()
            {
                self.conns.push(ev.connection);
            }
            if matches!(
                ev.change.new,
                ApiState::ClosedByPeer | ApiState::ProblemDetectedLocally
            ) {
                let _ = ep.close(now, ev.connection, 0, "", false);
                self.conns.retain(|&c| c != ev.connection);
            }
        }
        for &c in &self.conns {
            while let Some(m) = ep.poll_message(c) {
                // The client's window bounds what is queued, so the echo always fits.
                let _ = ep.send_message(now, c, m.lane, send_flags::RELIABLE, m.data);
            }
        }
    }
}
