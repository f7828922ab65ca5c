#!/usr/bin/env bash
# Every test that needs no server, with the clock of every process set to other dates
# (faketime, from Debian's packages): no test and no demo may depend on the day it runs.
# Monotonic time stays real, so that timeouts keep their length. Usage: tests/dates.sh [DATE…]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v faketime >/dev/null; then
    SUDO=()
    [[ $EUID -eq 0 ]] || SUDO=(sudo)
    echo "dates.sh: installing faketime" >&2
    "${SUDO[@]}" apt-get install -y --no-install-recommends faketime >/dev/null 2>&1 || {
        "${SUDO[@]}" apt-get update >/dev/null
        "${SUDO[@]}" apt-get install -y --no-install-recommends faketime >/dev/null
    }
fi

dates=("$@")
[[ ${#dates[@]} -gt 0 ]] || dates=(2026-12-01 2027-03-02 2029-10-15)

# The test binaries, built once (nextest itself does not run under faketime: it waits forever).
mapfile -t binaries < <(cargo test --workspace --locked --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])')
[[ ${#binaries[@]} -gt 0 ]] || { echo "dates.sh: no test binaries" >&2; exit 1; }

failed=0
for date in "${dates[@]}"; do
    passed=0
    for binary in "${binaries[@]}"; do
        # The live tests are #[ignore]d: they do not run here (nor with the servers' settings).
        # The lifecycle sequences take their time as input: a few of them on each date.
        run() {
            env $(compgen -e | grep '^CUENTAS_TEST' | sed 's/^/-u /') FAKETIME_DONT_FAKE_MONOTONIC=1 \
                CUENTAS_MODEL_SEQUENCES=25 \
                faketime "$date 09:00:00" "$binary" --test-threads=2 2>&1
        }
        if ! out=$(run); then
            # A binary that stopped without a failing test (no FAILED, no panic) died under
            # faketime itself: it is said, and run once more; a test that fails fails.
            if ! echo "$out" | grep -qE "^test .*FAILED|panicked"; then
                echo "dates.sh: $(basename "$binary") stopped on $date without a failing test; again:" >&2
                echo "$out" | tail -3 >&2
                out=$(run) && ok=1 || ok=0
            else
                ok=0
            fi
            if [[ $ok == 0 ]]; then
                echo "$out" | grep -E "^test .*FAILED|panicked" >&2 || true
                echo "dates.sh: $(basename "$binary") fails on $date" >&2
                failed=1
            fi
        fi
        n=$(echo "$out" | sed -n 's/^test result: .*ok\. \([0-9]*\) passed.*/\1/p' | tail -1)
        passed=$((passed + ${n:-0}))
    done
    echo "dates.sh: $date: $passed tests passed"
done
exit $failed
