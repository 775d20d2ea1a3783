//! cargo-fuzz target `ike_message`: see `fuzz/README.md` and [`wsock_ipsec_fuzz::harness::ike_message`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wsock_ipsec_fuzz::harness::ike_message(data);
});
