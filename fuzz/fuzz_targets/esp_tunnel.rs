//! cargo-fuzz target `esp_tunnel`: see `fuzz/README.md` and [`wsock_ipsec_fuzz::harness::esp_tunnel`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wsock_ipsec_fuzz::harness::esp_tunnel(data);
});
