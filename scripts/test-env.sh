#!/usr/bin/env bash
# Creates (or refreshes) the Python venv the tests use: the real hat-event server and
# eventer client, the pymodbus simulator, and hat-gateway for the side-by-side
# benchmarks. Idempotent: a venv whose requirements stamp matches is reused.
# Usage: scripts/test-env.sh            (venv at .venv, or $GATEWAY_TEST_VENV)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${GATEWAY_TEST_VENV:-$root/.venv}
req=$root/scripts/test-requirements.txt
stamp=$venv/.requirements.stamp

if [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
echo "test venv ready: $venv"
