//! `SteamNetworkingIdentity`'s exported helpers: set, get, compare, print and parse identities.
