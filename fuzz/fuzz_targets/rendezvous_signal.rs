//! Fuzz target: `sockworks_engine::fuzzing::rendezvous_signal` must never panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sockworks_engine::fuzzing::rendezvous_signal(data);
});
