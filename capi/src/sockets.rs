//! The flat `ISteamNetworkingSockets` calls.
