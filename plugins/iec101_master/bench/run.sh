#!/usr/bin/env bash
# Side-by-side IEC 101 master benchmark: gateway-host (iec101_master plugin) and Python
# hat-gateway 0.6.48 polling the same hat-drivers outstation script over a socat pty
# pair at 115200 baud, one after the other (benches/side_by_side.rs). Creates the venv
# if needed, builds gateway-host and the plugin in release mode, runs the benchmark and
# writes bench/results.json next to this script. IEC101_BENCH_SECS sets the measured
# window per gateway (default 10).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
scripts/test-env.sh
export GATEWAY_TEST_VENV=${GATEWAY_TEST_VENV:-$root/.venv}
export IEC101_BENCH_RESULTS=${IEC101_BENCH_RESULTS:-$root/plugins/iec101_master/bench/results.json}
export IEC101_BENCH_DATE=${IEC101_BENCH_DATE:-$(date -u +%Y-%m-%d)}
cargo build --release -p gateway-host -p iec101_master
exec cargo bench -p iec101_master --bench side_by_side
