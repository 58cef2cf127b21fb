#!/usr/bin/env bash
# Fuzz smoke: runs every cargo-fuzz target for $FUZZ_SECONDS (default 60) seconds, each
# from a fresh copy of its committed seeds (fuzz/seeds/<target>/), and fails on the
# first crash, panic, timeout (a single input running over $FUZZ_TIMEOUT seconds) or
# out-of-memory. Installs cargo-fuzz when it is missing. See docs/fuzzing.md.
#
#   bash fuzz/smoke.sh                    # every target, 60 s each
#   FUZZ_SECONDS=300 bash fuzz/smoke.sh route_match token_format
#
# Environment:
#   FUZZ_SECONDS    seconds of fuzzing per target (default 60)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 5)
#   FUZZ_RSS_MB     memory limit in MiB (default 2048)
#   FUZZ_TOOLCHAIN  toolchain for cargo-fuzz (default: nightly when rustup has one, else
#                   stable; with a toolchain that is not a nightly the script builds with
#                   RUSTC_BOOTSTRAP=1 and --sanitizer none)
#   FUZZ_NICE       niceness of builds and runs (default 19)
#   FUZZ_KEEP=1     keep the working corpus under fuzz/corpus/<target> between runs
#                   (by default it is started afresh from the seeds)
set -euo pipefail

cd "$(dirname "$0")"
FUZZ_DIR=$(pwd)
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
TIMEOUT=${FUZZ_TIMEOUT:-5}
RSS_MB=${FUZZ_RSS_MB:-2048}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-}
NICE=${FUZZ_NICE:-19}
ALL_TARGETS=(token_format route_match authorize_request catalog_load gateway_read graphql_request)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

log() { printf '[fuzz] %s\n' "$*"; }
started=$(date +%s)

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    nice -n "$NICE" cargo install cargo-fuzz --locked
fi
log "$(cargo fuzz --version)"

# The sanitizer flags cargo-fuzz passes need a nightly compiler; a stable one can build
# without a sanitizer when told it may use unstable flags.
if [ -z "$TOOLCHAIN" ]; then
    if rustc +nightly --version >/dev/null 2>&1; then TOOLCHAIN=nightly; else TOOLCHAIN=stable; fi
fi
FUZZ_FLAGS=()
if rustc "+$TOOLCHAIN" --version 2>/dev/null | grep -q nightly; then
    log "toolchain $TOOLCHAIN ($(rustc "+$TOOLCHAIN" --version)), AddressSanitizer on"
else
    log "toolchain $TOOLCHAIN is not a nightly: RUSTC_BOOTSTRAP=1 and --sanitizer none"
    export RUSTC_BOOTSTRAP=1
    FUZZ_FLAGS+=(--sanitizer none)
fi

# Fuzz the dependency versions the service ships with: the fuzz crate is a workspace
# of its own, so start its lock file from the root one (cargo adds libfuzzer-sys).
cp "$FUZZ_DIR/../Cargo.lock" "$FUZZ_DIR/Cargo.lock"

log "building ${TARGETS[*]}"
build_started=$(date +%s)
for target in "${TARGETS[@]}"; do
    nice -n "$NICE" cargo "+$TOOLCHAIN" fuzz build "${FUZZ_FLAGS[@]}" "$target"
done
log "built in $(( $(date +%s) - build_started )) s"

failed=()
for target in "${TARGETS[@]}"; do
    corpus="$FUZZ_DIR/corpus/$target"
    if [ "${FUZZ_KEEP:-0}" != 1 ]; then
        rm -rf "$corpus"
    fi
    mkdir -p "$corpus" "$FUZZ_DIR/artifacts/$target"
    cp -n "$FUZZ_DIR/seeds/$target"/* "$corpus"/ 2>/dev/null || true
    log "$target: ${SECONDS_PER_TARGET} s from $(ls "$corpus" | wc -l) inputs"
    # Not in artifacts/<target>/: cargo-fuzz reports every file there as a failing input.
    logfile="$FUZZ_DIR/artifacts/$target.log"
    # -timeout: an input running longer is a hang, and a failure.
    # -error_exitcode / -timeout_exitcode: libFuzzer's defaults (77 / 70) are non-zero
    # already; they are spelled out so that the failure is explicit.
    set +e
    nice -n "$NICE" cargo "+$TOOLCHAIN" fuzz run "${FUZZ_FLAGS[@]}" "$target" "$corpus" -- \
        -max_total_time="$SECONDS_PER_TARGET" \
        -timeout="$TIMEOUT" \
        -rss_limit_mb="$RSS_MB" \
        -error_exitcode=77 \
        -timeout_exitcode=70 \
        -print_final_stats=1 \
        >"$logfile" 2>&1
    status=$?
    set -e
    if [ "$status" -ne 0 ]; then
        log "$target: FAILED (exit $status); the log is $logfile; the failure:"
        grep -E -A 25 'panicked at|==[0-9]+==ERROR|ALARM|out-of-memory|deadly signal' "$logfile" | cut -c 1-300 | head -n 80 || true
        grep -E 'Test unit written to|^Base64:' "$logfile" | cut -c 1-300 || true
        failed+=("$target")
    else
        stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$logfile" | tr -s ' \n' ' ' || true)
        cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$logfile" | tail -n 1 | tr -s '\t ' ' ' || true)
        log "$target: ok: ${cov:-?} ${stats}"
    fi
done

log "total $(( $(date +%s) - started )) s"
if [ ${#failed[@]} -gt 0 ]; then
    log "failing targets: ${failed[*]} (crash inputs are in fuzz/artifacts/<target>/)"
    exit 1
fi
log "all targets passed"
