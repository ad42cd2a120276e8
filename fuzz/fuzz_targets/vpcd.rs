#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vsc_fuzz::vpcd::run(data));
