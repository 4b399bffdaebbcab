//! Configuration values through the C ABI: options arrays, `SetConfigValue` /
//! `GetConfigValue` at each scope, their names, types and iteration.
//!
//! ```text
//!  SetConfigValue ─► table (known? scope? type?) ─► value (GNS's conversions, clamp)
//!        ├─ implemented ─► sockworks::Sockets::set_*_config_value (once Init has run)
//!        └─ always ──────► store (GetConfigValue reads it back; Init applies global_values)
//! ```
//!
//! [`table`] lists what is implemented and what is accepted with no effect.

mod access;
mod exports;
mod options;
mod store;
pub mod table;
mod value;

#[cfg(test)]
mod tests;

pub use exports::*;
pub use options::{ConfigArrayError, values_from_options};
pub use store::{Scope, forget, global_ptr, global_values};
