use std::process::ExitCode;

// The allocator of the load harness's A/B (docs/performance.md); without the feature,
// the system's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    patrol::cli::main()
}
