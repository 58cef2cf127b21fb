#!/usr/bin/env bash
# Schemathesis against a live patrol's /openapi.json: every operation, every check but
# the two that tests/schema/schemathesis.toml turns off (and says why).
#
#   bash tests/schema/run.sh [PATROL_BINARY] [extra `st run` options...]
#
# PATROL_BINARY defaults to target/debug/patrol. It is started on a free port with a
# fresh SQLite database in a temporary directory, a bootstrap admin key and no rate
# limit (the run checks the API's contract, not the limiter). The service endpoints are
# called with that key, the token endpoints (/api/v4, /v1/tokens/self) with a token
# minted for each request (tests/schema/hooks.py). The run is seeded and bounded
# (tests/schema/schemathesis.toml): about a minute on 2 cores. Exits non-zero when a
# check fails, schemathesis errors, or patrol does not start, dies or logs an error.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tests/schema"
binary="${1:-target/debug/patrol}"
[ "$#" -gt 0 ] && shift
case "$binary" in /*) ;; *) binary="$root/$binary" ;; esac
[ -x "$binary" ] || { echo "no patrol binary at $binary (cargo build first)" >&2; exit 2; }

# Pinned: a new schemathesis brings new checks and new data, which is a change to
# review, not a surprise in CI.
version=4.32.5
if ! python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$version')" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$version"
fi
st() { python3 -m schemathesis.cli "$@"; }
st --version

work="$(mktemp -d)"
patrol_pid=""
cleanup() {
    if [ -n "$patrol_pid" ] && kill -0 "$patrol_pid" 2>/dev/null; then
        kill "$patrol_pid" 2>/dev/null || true
        wait "$patrol_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

key="schemathesis-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
PATROL_LISTEN=127.0.0.1:0 \
    PATROL_DATABASE_URL="sqlite://$work/patrol.db" \
    PATROL_ADMIN_KEY="$key" \
    PATROL_ARGON2='m=256,t=1,p=1' \
    PATROL_LOG_FORMAT=json \
    PATROL_RATE_LIMIT=off \
    "$binary" serve >"$work/patrol.log" 2>&1 &
patrol_pid=$!

# Port 0: patrol picks a free port and logs it.
address=""
for _ in $(seq 100); do
    address="$(grep -o '"address":"[^"]*"' "$work/patrol.log" | head -n1 | cut -d'"' -f4 || true)"
    [ -n "$address" ] && curl -sf "http://$address/readyz" >/dev/null && break
    kill -0 "$patrol_pid" 2>/dev/null || break
    sleep 0.2
done
if [ -z "$address" ] || ! curl -sf "http://$address/readyz" >/dev/null; then
    echo "patrol did not become ready:" >&2
    cat "$work/patrol.log" >&2
    exit 1
fi
url="http://$address"
echo "patrol ($binary) at $url"

status=0
(
    cd "$work" # schemathesis keeps its caches in the working directory
    PATROL_SCHEMA_URL="$url" PATROL_SCHEMA_KEY="$key" SCHEMATHESIS_HOOKS="$here/hooks.py" \
        timeout 900 python3 -m schemathesis.cli --config-file "$here/schemathesis.toml" \
        run "$url/openapi.json" --header "X-Patrol-Key: $key" "$@"
) || status=$?

if ! kill -0 "$patrol_pid" 2>/dev/null; then
    echo "patrol exited during the run:" >&2
    tail -n 50 "$work/patrol.log" >&2
    status=1
elif grep -q '"level":"ERROR"\|panicked' "$work/patrol.log"; then
    echo "patrol logged errors during the run:" >&2
    grep '"level":"ERROR"\|panicked' "$work/patrol.log" | head -n 20 >&2
    status=1
fi
exit "$status"
