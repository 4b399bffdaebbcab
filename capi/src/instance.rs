//! The process's one instance: `GameNetworkingSockets_Init` / `_Kill` and the interface accessors.
