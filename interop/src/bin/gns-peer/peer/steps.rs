//! The script runner: executes parsed steps on one connection of a [`Peer`].

use std::io::Write as _;

use gns::{GnsConnection, GnsLane, IsReady};
use sockworks_interop::payload::pattern;
use sockworks_interop::script::{Step, parse_script};

use super::{DeadlineHit, Peer, send_flags, state_name};
use crate::setup::now;

impl<S: IsReady> Peer<S> {
    /// Runs `steps` on connection `id`; `Err` carries the FAIL reason.
    pub(crate) fn run_script(
        &mut self,
        id: u32,
        conn: GnsConnection,
        script: &str,
    ) -> Result<(), String> {
        let steps = parse_script(script).map_err(|e| e.to_string())?;
        let texts = script.split(';').map(str::trim).filter(|s| !s.is_empty());
        let deadline = |_: DeadlineHit| "deadline".to_owned();
        for (i, (step, text)) in steps.into_iter().zip(texts).enumerate() {
            emit!("STEP i={i} text={text:?}");
            let needs_open = !matches!(step, Step::Sleep(_) | Step::Expect { .. });
            if needs_open && !self.is_open(id) {
                return Err(format!("step {i}: connection is not open"));
            }
            match step {
                Step::Send {
                    mode,
                    lane,
                    payload,
                } => {
                    let msg = self
                        .global
                        .utils()
                        .allocate_message(conn, send_flags(mode), payload);
                    self.send(id, msg.set_lane(lane), lane, false, true)?;
                }
                Step::SendSize {
                    mode,
                    lane,
                    size,
                    count,
                } => {
                    for _ in 0..count {
                        let flags = send_flags(mode);
                        let msg = self
                            .global
                            .utils()
                            .allocate_message(conn, flags, pattern(size));
                        self.send(id, msg.set_lane(lane), lane, false, true)?;
                    }
                }
                Step::Expect {
                    count,
                    timeout,
                    reliable_only,
                } => {
                    let got = |p: &Self| {
                        if reliable_only {
                            p.received_reliable
                        } else {
                            p.received
                        }
                    };
                    let ok = self
                        .wait_until(timeout, |p| got(p) >= count || p.ended.contains(&id))
                        .map_err(deadline)?;
                    if !ok || got(self) < count {
                        return Err(format!("expect: got {} of {count}", got(self)));
                    }
                    emit!("EXPECT_OK want={count} got={}", got(self));
                }
                Step::Sleep(duration) => {
                    self.wait_until(duration, |_| false).map_err(deadline)?;
                }
                Step::Flush => {
                    self.socket
                        .flush_messages_on_connection(conn)
                        .map_err(|e| format!("flush: {e}"))?;
                }
                Step::WaitSent(timeout) => {
                    if !self
                        .wait_until(timeout, |p| p.all_sent(conn))
                        .map_err(deadline)?
                    {
                        return Err("waitsent: data still pending".into());
                    }
                    emit!("SENT_ALL conn={id}");
                }
                Step::Status => self.emit_stats(id, conn)?,
                Step::Lanes(lanes) => {
                    self.lanes = lanes.into_iter().map(|(p, w)| GnsLane::new(p, w)).collect();
                    if !self.configure_lanes(id, conn) {
                        return Err("lanes: ConfigureConnectionLanes failed".into());
                    }
                }
                Step::Close {
                    reason,
                    debug,
                    linger,
                    wait_acked,
                } => {
                    if wait_acked {
                        let left = self.deadline.saturating_duration_since(now());
                        self.wait_until(left, |p| p.all_sent(conn))
                            .map_err(deadline)?;
                    }
                    self.close(id, conn, reason, &debug, linger);
                }
                Step::WaitClose(timeout) => {
                    if !self
                        .wait_until(timeout, |p| p.ended.contains(&id))
                        .map_err(deadline)?
                    {
                        return Err("waitclose: still open".into());
                    }
                    emit!("PEER_CLOSED conn={id}");
                }
            }
        }
        Ok(())
    }

    fn emit_stats(&self, id: u32, conn: GnsConnection) -> Result<(), String> {
        let lanes = u32::try_from(self.lanes.len()).unwrap_or(0);
        let (s, _) = self
            .socket
            .get_connection_real_time_status(conn, lanes)
            .map_err(|e| format!("status: {e}"))?;
        emit!(
            "STATS conn={id} state={} ping={} quality_local={:.3} quality_remote={:.3} \
             out_bytes_per_sec={:.0} in_bytes_per_sec={:.0} send_rate={} pending_reliable={} \
             pending_unreliable={} unacked_reliable={} queue_us={}",
            state_name(s.state()),
            s.ping(),
            s.quality_local(),
            s.quality_remote(),
            s.out_bytes_per_sec(),
            s.in_bytes_per_sec(),
            s.send_rate_bytes_per_sec(),
            s.pending_bytes_reliable(),
            s.pending_bytes_unreliable(),
            s.bytes_sent_unacked_reliable(),
            s.approximated_queue_time().as_micros()
        );
        Ok(())
    }
}
