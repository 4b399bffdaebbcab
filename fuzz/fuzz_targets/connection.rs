//! Fuzz target: the connection state machine under arbitrary operations
//! (`sockworks_engine::fuzzing::connection`): no panic, reliable delivery in order, bounded memory.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sockworks_engine::fuzzing::connection(data);
});
