//! `gns-load serve`: the real-GNS echo server, one turn at a time like Sockworks'
//! `loadgen::echo`: status changes (accept into the poll group; close ended connections),
//! then up to `--batch` messages from `ReceiveMessagesOnPollGroup`, copied into new messages
//! (the wrapper cannot re-send a received one) and sent back in one `SendMessages`, same
//! reliability, NoNagle.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::Args;
use gns::sys::ESteamNetworkingConnectionState as State;
use gns::{GnsGlobal, MessageSlot, SendFlags, SendOutcome};
use loadgen::load::Idle;
use sockworks::engine::shard::Clock;

use crate::{emit, listening_line};

/// `gns-load serve` switches.
#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (see the LISTENING line).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Messages taken from the poll group per turn.
    #[arg(long, default_value_t = 256)]
    batch: usize,
}

/// Serves until `max` has passed (or the process is killed), then prints `SERVED ...`.
pub(crate) fn run(
    global: &'static GnsGlobal,
    args: &ServeArgs,
    max: Duration,
) -> anyhow::Result<()> {
    let server = sockworks_interop::listen::listen(global, args.bind)?;
    let (ip, port) = server
        .get_listen_socket_address()
        .ok_or_else(|| anyhow!("GetListenSocketAddress failed"))?;
    emit!("{}", listening_line(SocketAddr::new(ip, port)));

    let clock = Clock::new();
    let until = clock.now() + max;
    let mut slots: Vec<MessageSlot> = (0..args.batch.max(1))
        .map(|_| MessageSlot::uninit())
        .collect();
    let (mut accepted, mut echoed, mut refused) = (0u64, 0u64, 0u64);
    let mut idle = Idle::default();
    while clock.now() < until {
        global.poll_callbacks();
        let mut work = 0;
        for event in server.receive_events() {
            work += 1;
            let conn = event.connection();
            match event.info().state() {
                State::k_ESteamNetworkingConnectionState_Connecting => {
                    // accept() also puts the connection in the socket's poll group.
                    if server.accept(conn).is_ok() {
                        accepted += 1;
                    } else {
                        let _ = server.close_connection(conn, 0, None, false);
                    }
                }
                State::k_ESteamNetworkingConnectionState_ClosedByPeer
                | State::k_ESteamNetworkingConnectionState_ProblemDetectedLocally => {
                    let _ = server.close_connection(conn, 0, None, false);
                }
                _ => {}
            }
        }
        let received = server
            .receive_messages_into(&mut slots)
            .context("ReceiveMessagesOnPollGroup")?;
        let utils = global.utils();
        let echoes: Vec<_> = received
            .map(|m| {
                let flags = (m.flags() & SendFlags::RELIABLE) | SendFlags::NO_NAGLE;
                utils.allocate_message(m.connection(), flags, m.payload().to_vec())
            })
            .collect();
        work += echoes.len();
        if !echoes.is_empty() {
            for outcome in server.send_messages(echoes) {
                match outcome {
                    SendOutcome::Sent(_) => echoed += 1,
                    SendOutcome::Failed(..) | SendOutcome::Skipped(_) => refused += 1,
                }
            }
        }
        idle.turn(work > 0);
    }
    emit!("SERVED accepted={accepted} echoed={echoed} refused={refused}");
    Ok(())
}
