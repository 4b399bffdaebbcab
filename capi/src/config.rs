//! Configuration values through the C ABI: options arrays, `SetConfigValue` / `GetConfigValue` at each scope, their names and types.
