//! The flat `ISteamNetworkingUtils` calls.
