//! `SteamNetworkingIPAddr`'s exported helpers: set, test, compare, print and parse addresses.
