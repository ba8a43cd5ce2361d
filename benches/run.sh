#!/usr/bin/env bash
# S4 benchmark harness: one command for the whole run (see benches/README.md).
#
#   benches/run.sh            full run: 1 GiB transfers, 3 repeats, 15 s loads,
#                             100 000-object listing bucket (~10 min)
#   benches/run.sh --quick    64 MiB, 1 repeat, 5 s loads, 10 000 objects (~1 min)
#   benches/run.sh --help     every flag of s4-bench
#
# Builds the release `s4` daemon and `s4-bench`, starts a throwaway single-node
# Garage on loopback (ports 3920/3921/3923 unless S4_GARAGE_*_PORT say otherwise,
# state in /tmp/garage-bench unless S4_BENCH_GARAGE_DIR says otherwise) unless
# S4_TEST_S3_ENDPOINT is already set, runs the harness, and stops the Garage it
# started. Results: a table on stdout, JSON in target/bench/results.json.
# Cold reads drop the page cache, which needs root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release -p s4-http -p s4-benches

started_garage=""
if [[ -z "${S4_TEST_S3_ENDPOINT:-}" ]]; then
    export S4_GARAGE_S3_PORT="${S4_GARAGE_S3_PORT:-3920}"
    export S4_GARAGE_RPC_PORT="${S4_GARAGE_RPC_PORT:-3921}"
    export S4_GARAGE_ADMIN_PORT="${S4_GARAGE_ADMIN_PORT:-3923}"
    garage_dir="${S4_BENCH_GARAGE_DIR:-/tmp/garage-bench}"
    already_running=""
    if scripts/garage.sh env "$garage_dir" >/dev/null 2>&1; then
        already_running=1
    fi
    if exports="$(scripts/garage.sh start "$garage_dir")"; then
        eval "$exports"
        [[ -n "$already_running" ]] || started_garage="$garage_dir"
    else
        echo "run.sh: Garage unavailable: measuring the local backend only" >&2
    fi
fi
stop_garage() {
    if [[ -n "$started_garage" ]]; then
        scripts/garage.sh stop "$started_garage" || true
    fi
}
trap stop_garage EXIT

target/release/s4-bench "$@"
