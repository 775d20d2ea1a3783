//! Fuzzing harness of `wsock-ipsec`: the entry points live in [`harness`], shared with the
//! stable corpus replay test of the `wsock-ipsec` crate. See `fuzz/README.md`.
#![forbid(unsafe_code)]

pub mod harness;
