#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (the Python
# venv with the real hat-event server and the pymodbus simulator, socat for the serial
# tests), builds every crate and plugin once, then runs every test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v socat >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null && apt-get install -y -qq socat >/dev/null || echo "warning: socat not installed; serial tests will report it"
fi
scripts/test-env.sh
export GATEWAY_TEST_VENV=${GATEWAY_TEST_VENV:-$root/.venv}

# A one-off build gains nothing from incremental state (about 4 GB on disk).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

# One build of every crate, plugin cdylibs included, reused by all tests.
cargo build --workspace --all-targets
# The two crates a vendor depends on must be publishable as they are (issue 19).
# `cargo package` is `cargo publish --dry-run` without the registry look-up: it packs
# each crate and builds the packed copy against the other's packed copy, so it runs
# offline; it needs only the dependencies the build above put in the local cache.
cargo package --offline --allow-dirty -p gateway-model -p gateway-plugin-api
cargo test --workspace --no-fail-fast "$@"
