//! Fuzz target: `sockworks_rendezvous::fuzzing::service_bytes` (the wire decoder and the service's
//! datagram handler) must never panic, and never answer an unregistered sender with more bytes
//! than it sent.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sockworks_rendezvous::fuzzing::service_bytes(data);
});
