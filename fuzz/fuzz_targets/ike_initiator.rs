//! cargo-fuzz target `ike_initiator`: see `fuzz/README.md` and [`wsock_ipsec_fuzz::harness::ike_initiator`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wsock_ipsec_fuzz::harness::ike_initiator(data);
});
