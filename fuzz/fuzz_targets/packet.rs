//! Fuzz target: `sockworks_engine::fuzzing::packet` must never panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sockworks_engine::fuzzing::packet(data);
});
