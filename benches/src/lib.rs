//! Benchmarks for patrol; see the benches.
