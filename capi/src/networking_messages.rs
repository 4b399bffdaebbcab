//! `ISteamNetworkingMessages` (identity-addressed sessions): not built yet; every call returns its documented failure value.
