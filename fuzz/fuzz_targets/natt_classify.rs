//! cargo-fuzz target `natt_classify`: see `fuzz/README.md` and [`wsock_ipsec_fuzz::harness::natt_classify`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wsock_ipsec_fuzz::harness::natt_classify(data);
});
