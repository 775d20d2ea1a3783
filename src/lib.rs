//! Holder package for the workspace-level tests in `tests/` and benchmarks in `benches/`.
