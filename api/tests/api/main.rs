//! The `sockworks` API's integration tests, one module per area, in one test binary (one
//! link, one process: they run in parallel as threads).

mod auth;
mod bad_input;
mod basics;
mod common;
mod config;
mod examples_smoke;
mod fakeip;
mod fakeip_udp;
mod honest;
mod hosted;
mod hostile;
mod impair;
mod integration;
mod introspection;
mod lanes;
mod message_semantics;
mod p2p;
mod receive_into;
mod regression;
mod stalled;
mod thread_safety;
