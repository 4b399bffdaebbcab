//! The headers' structs, field for field (`#[repr(C)]`, same names), and the conversions to Sockworks' types.
