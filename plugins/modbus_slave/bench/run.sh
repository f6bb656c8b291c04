#!/usr/bin/env bash
# Side-by-side Modbus slave benchmark: gateway-host (modbus_slave plugin) and Python
# hat-gateway 0.6.48 answering the same Rust load generator, in one run
# (benches/side_by_side.rs). Creates the venv if needed, builds gateway-host and the
# plugin in release mode, then runs the benchmark. MODBUS_BENCH_SECS sets the measured
# window per gateway (default 10).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
scripts/test-env.sh
export GATEWAY_TEST_VENV=${GATEWAY_TEST_VENV:-$root/.venv}
cargo build --release -p gateway-host -p modbus_slave
exec cargo bench -p modbus_slave --bench side_by_side
