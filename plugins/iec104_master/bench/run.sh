#!/usr/bin/env bash
# Side-by-side IEC 104 master benchmark: gateway-host (iec104_master plugin) and Python
# hat-gateway 0.6.48 receiving spontaneous data from the same Rust outstation, in one run
# (benches/side_by_side.rs). Creates the venv if needed, builds gateway-host and the
# plugin in release mode, runs the benchmark and writes bench/results.json next to this
# script. IEC104_BENCH_SECS sets the measured window per gateway (default 10),
# IEC104_BENCH_COMMANDS the command round trips per run (default 2000).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
scripts/test-env.sh
export GATEWAY_TEST_VENV=${GATEWAY_TEST_VENV:-$root/.venv}
export IEC104_BENCH_RESULTS=${IEC104_BENCH_RESULTS:-$root/plugins/iec104_master/bench/results.json}
export IEC104_BENCH_DATE=${IEC104_BENCH_DATE:-$(date -u +%Y-%m-%d)}
cargo build --release -p gateway-host -p iec104_master
exec cargo bench -p iec104_master --bench side_by_side
