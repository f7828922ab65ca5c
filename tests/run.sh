#!/usr/bin/env bash
# The one test command (README, .ci/run): every test of cuentas, from a clean clone.
#
# Today everything runs in process: the CSV source, the dry-run directory and the file mail
# spool need no server. Later issues add a Samba AD DC and an SMTP server on loopback, which
# this script installs and starts itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-nextest" >&2
    cargo install --locked cargo-nextest
fi

cargo nextest run --workspace --no-fail-fast
