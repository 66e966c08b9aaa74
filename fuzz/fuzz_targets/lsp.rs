#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipelang_fuzz::lsp::run(data));
