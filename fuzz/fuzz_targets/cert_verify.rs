//! cargo-fuzz target `cert_verify`: see `fuzz/README.md` and [`wsock_ipsec_fuzz::harness::cert_verify`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wsock_ipsec_fuzz::harness::cert_verify(data);
});
