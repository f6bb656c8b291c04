#!/usr/bin/env bash
# Side-by-side benchmark of gateway-host and Python hat-gateway 0.6.48 (issue 6):
# creates the venv, builds gateway-host, the sim plugin and the harness in release
# mode, and runs every scenario in one run, then the event store scenario
# (`--only store`). Extra arguments go to gateway-bench (e.g. --smoke, --events 50000,
# --scale 1000, --only store).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/test-env.sh
export GATEWAY_TEST_VENV=${GATEWAY_TEST_VENV:-$root/.venv}
cargo build --release -p gateway-host -p gateway-plugin-sim -p gateway-bench
target/release/gateway-bench --out bench/results.json "$@"
# After a full run, the event store scenario (issue 14); its figures merge under "store".
case " $* " in
    *" --only"*) ;;
    *) exec target/release/gateway-bench --out bench/results.json "$@" --only store ;;
esac
