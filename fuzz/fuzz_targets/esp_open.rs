//! cargo-fuzz target `esp_open`: see `fuzz/README.md` and [`wsock_ipsec_fuzz::harness::esp_open`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wsock_ipsec_fuzz::harness::esp_open(data);
});
