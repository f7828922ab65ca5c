#!/usr/bin/env bash
# The one test command (README, .ci/run): every test of cuentas, from a clean clone.
#
# Besides the in-process tests (the CSV source, the dry-run directory and the file mail spool
# need no server), the live LDAP tests run against a throwaway Samba AD DC on loopback, which
# tests/samba.sh installs (Debian's packages), provisions, seeds and starts in target/samba, and
# which is stopped however the run ends; and the live mail tests against Debian's aiosmtpd,
# which tests/smtp.sh installs (with a test CA); each of those tests starts and stops its own
# server (tests/smtp_sink.py). The tests that need a server are #[ignore]d, so that a plain
# `cargo test` says they did not run; this script runs them (--run-ignored all), and they fail,
# not skip, when a server's settings are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-nextest" >&2
    cargo install --locked cargo-nextest
fi

# Formatting and lints first: a difference or a warning fails the run before any server starts.
# clippy enforces the lints Cargo.toml denies (unwrap, expect, panic, todo, the clock outside app).
cargo fmt --all --check
cargo clippy --all-targets --locked -- -D warnings

# The Debian package: built, installed with dpkg -i, checked and purged (tests/package.sh).
tests/package.sh

# The tests that need no server, with the clock set to other dates (tests/dates.sh, faketime):
# nothing may depend on the day the suite runs.
tests/dates.sh

# The AD DC runs as root: through sudo when this script does not. Stopped quietly, so that
# nextest's summary stays the last line of the run.
SUDO=()
[[ $EUID -eq 0 ]] || SUDO=(sudo)
trap '"${SUDO[@]}" tests/samba.sh stop target/samba >/dev/null' EXIT
"${SUDO[@]}" tests/samba.sh start target/samba
tests/smtp.sh target/smtp
# shellcheck source=/dev/null
source target/samba/env
# shellcheck source=/dev/null
source target/smtp/env

# The lifecycle as random sequences (tests/lifecycle_model.rs): 2,000 of them, optimized (the
# release build of the package is there already), before the whole suite runs its quick look.
CUENTAS_MODEL_SEQUENCES=1000 cargo nextest run --release --locked --test lifecycle_model

cargo nextest run --workspace --no-fail-fast --run-ignored all
