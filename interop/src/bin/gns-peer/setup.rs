//! Process setup: GNS global config values from the command line, and the listen socket.

use std::io::Write as _;
use std::time::Instant;

use anyhow::Context as _;
use gns::sys::ESteamNetworkingConfigValue as Cfg;
use gns::{GnsConfig, GnsGlobal};

use crate::Common;

#[expect(
    clippy::disallowed_methods,
    reason = "a live GNS peer runs on wall-clock deadlines"
)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// Sets the GNS global config values named on the command line and prints a CONFIG line each.
pub(crate) fn apply_config(global: &GnsGlobal, c: &Common) -> anyhow::Result<()> {
    let utils = global.utils();
    let floats = [
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketLoss_Send,
            "FakePacketLoss_Send",
            c.loss_send,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketLoss_Recv,
            "FakePacketLoss_Recv",
            c.loss_recv,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketReorder_Send,
            "FakePacketReorder_Send",
            c.reorder_send,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketReorder_Recv,
            "FakePacketReorder_Recv",
            c.reorder_recv,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketDup_Send,
            "FakePacketDup_Send",
            c.dup_send,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketDup_Recv,
            "FakePacketDup_Recv",
            c.dup_recv,
        ),
    ];
    for (key, name, value) in floats {
        if let Some(v) = value {
            utils
                .set_global_config_value(key, GnsConfig::Float(v))
                .with_context(|| format!("{name}={v}"))?;
            emit!("CONFIG key={name} value={v}");
        }
    }
    let trace = c.trace.then_some(c.trace_bytes);
    let ints = [
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketLag_Send,
            "FakePacketLag_Send",
            c.lag_send,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketLag_Recv,
            "FakePacketLag_Recv",
            c.lag_recv,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketReorder_Time,
            "FakePacketReorder_Time",
            c.reorder_time,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_FakePacketDup_TimeMax,
            "FakePacketDup_TimeMax",
            c.dup_time_max,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_NagleTime,
            "NagleTime",
            c.nagle_us,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_SendRateMin,
            "SendRateMin",
            c.send_rate,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_SendRateMax,
            "SendRateMax",
            c.send_rate,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_SendBufferSize,
            "SendBufferSize",
            c.send_buffer,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_TimeoutInitial,
            "TimeoutInitial",
            c.timeout_initial_ms,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_TimeoutConnected,
            "TimeoutConnected",
            c.timeout_connected_ms,
        ),
        (
            Cfg::k_ESteamNetworkingConfig_PacketTraceMaxBytes,
            "PacketTraceMaxBytes",
            trace,
        ),
    ];
    for (key, name, value) in ints {
        if let Some(v) = value {
            utils
                .set_global_config_value(key, GnsConfig::Int32(v))
                .with_context(|| format!("{name}={v}"))?;
            emit!("CONFIG key={name} value={v}");
        }
    }
    Ok(())
}
