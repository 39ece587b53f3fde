#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| nanolab::fuzzing::engine_answer(data));
