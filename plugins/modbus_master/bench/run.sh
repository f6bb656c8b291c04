#!/usr/bin/env bash
# Side-by-side Modbus polling benchmark: gateway-host (modbus_master plugin) and Python
# hat-gateway 0.6.48 against the same slave, in one run (benches/side_by_side.rs).
# Creates the venv if needed, builds gateway-host and the plugin in release mode, then
# runs the benchmark. MODBUS_BENCH_SECS sets the measured window per gateway (default 10).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
scripts/test-env.sh
export GATEWAY_TEST_VENV=${GATEWAY_TEST_VENV:-$root/.venv}
cargo build --release -p gateway-host -p modbus_master
exec cargo bench -p modbus_master --bench side_by_side
