//! `SteamNetworkingMessage_t`: received messages lent out zero-copy, messages the application allocates, and their release.
