//! Fuzz target: `sockworks_engine::fuzzing::stun` must never panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sockworks_engine::fuzzing::stun(data);
});
