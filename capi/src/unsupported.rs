//! Calls of features Sockworks does not have yet (P2P, relays, certificates): the documented failure values.
