#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vsc_fuzz::session::run(data));
