#!/usr/bin/env bash
# The Debian package, for real: builds it with `cargo deb`, installs it with `dpkg -i` on this
# machine, checks what it put there (the system user, the state directory, the conffiles, the
# docs, a unit neither enabled nor started, an example configuration that passes
# `cuentas check --offline`, `systemd-analyze verify` and `security`), then purges it and checks
# that nothing is left. tests/run.sh runs it; it also runs alone: tests/package.sh.
#
# It changes the machine (a package, the user `cuentas`), as root or through sudo. A cuentas
# package that is in use here (a request store in /var/lib/cuentas, or an edited
# configuration) is never purged: the script stops instead.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=()
[[ $EUID -eq 0 ]] || SUDO=(sudo)

say() { echo "package.sh: $*"; }
fail() {
    echo "package.sh: FAILED: $*" >&2
    exit 1
}

# Highest exposure `systemd-analyze security` may give the unit (its scale: 0 to 10).
MAX_EXPOSURE=1.5
UNIT=/usr/lib/systemd/system/cuentas.service
CONFIG=/etc/cuentas/cuentas.toml
MATRIX=/etc/cuentas/autorizadores.csv

# Tools: cargo-deb builds the package; dpkg-dev's dpkg-shlibdeps gives it its libc dependency;
# systemd (systemd-analyze, systemd-sysusers) and ca-certificates are what it depends on.
if ! cargo deb --version >/dev/null 2>&1; then
    say "installing cargo-deb"
    cargo install --locked cargo-deb
fi
apt_missing=()
command -v dpkg-shlibdeps >/dev/null || apt_missing+=(dpkg-dev)
command -v systemd-analyze >/dev/null || apt_missing+=(systemd)
[[ -e /etc/ssl/certs/ca-certificates.crt ]] || apt_missing+=(ca-certificates)
if ((${#apt_missing[@]})); then
    say "installing ${apt_missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

# Build (the release build is reused when current; --fast: quicker compression, a bigger file).
deb=$(cargo deb --locked --fast | tail -n 1)
[[ -f $deb ]] || fail "cargo deb did not name the package it built (got «$deb»)"
say "built $deb ($(du -h "$deb" | cut -f1))"

# A package left by an earlier run goes; one in use stays, and so does this run.
status=$(dpkg-query --show --showformat='${db:Status-Status}' cuentas 2>/dev/null || true)
if [[ -n $status && $status != not-installed ]]; then
    if [[ -d /var/lib/cuentas ]] && [[ -n $("${SUDO[@]}" ls -A /var/lib/cuentas) ]]; then
        fail "the cuentas package installed here has a request store in /var/lib/cuentas: it is in use, not left by a test; run this on another machine"
    fi
    while read -r file sum _; do
        [[ -n $file && -f $file ]] || continue
        if [[ $(md5sum <"$file" | cut -d' ' -f1) != "$sum" ]]; then
            fail "the cuentas package installed here has an edited $file: it is in use, not left by a test; run this on another machine"
        fi
    done < <(dpkg-query --show --showformat='${Conffiles}\n' cuentas)
    say "purging the cuentas package an earlier run left ($status)"
    "${SUDO[@]}" dpkg --purge cuentas >/dev/null
fi

"${SUDO[@]}" dpkg -i "$deb" >/dev/null
say "installed: $(dpkg-query --show --showformat='${Package} ${Version} (${db:Status-Abbrev})' cuentas)"

# The system user and group of the unit's User= and Group=.
user=$(getent passwd cuentas) || fail "no user cuentas (getent passwd)"
getent group cuentas >/dev/null || fail "no group cuentas (getent group)"
say "user: $user"

# The store, as StateDirectory=cuentas with StateDirectoryMode=0700 makes it.
[[ -d /var/lib/cuentas ]] || fail "/var/lib/cuentas does not exist"
owner=$(stat -c '%U:%G %a' /var/lib/cuentas)
[[ $owner == "cuentas:cuentas 700" ]] || fail "/var/lib/cuentas is $owner, not cuentas:cuentas 700"
say "/var/lib/cuentas: $owner"

# The example configuration and matrix, as conffiles: an upgrade keeps the administrator's edits.
conffiles=$(dpkg-query --show --showformat='${Conffiles}\n' cuentas)
for file in "$CONFIG" "$MATRIX"; do
    [[ -f $file ]] || fail "$file is not installed"
    grep -q "^ $file " <<<"$conffiles" || fail "$file is not a conffile of the package: $conffiles"
    say "$file: installed, a conffile"
done

# The documentation and the examples.
for doc in README.md INSTALL.es.md INSTALL.en.md ad-delegation.txt copyright \
    examples/cuentas.toml examples/autorizadores.csv examples/hooks/README.md examples/plantillas/acuse.txt; do
    [[ -s /usr/share/doc/cuentas/$doc ]] || fail "/usr/share/doc/cuentas/$doc is missing or empty"
done
say "docs: $(find /usr/share/doc/cuentas -type f | wc -l) files in /usr/share/doc/cuentas"

# Neither enabled nor started: it cannot run before it is configured.
[[ -f $UNIT ]] || fail "$UNIT is not installed"
wants=$(compgen -G "/etc/systemd/system/*.wants/cuentas.service" || true)
[[ -z $wants ]] || fail "the service was enabled on install: $wants"
running=()
for exe in /proc/[0-9]*/exe; do
    if [[ $(readlink "$exe" 2>/dev/null) == /usr/bin/cuentas ]]; then
        pid=${exe#/proc/}
        running+=("${pid%/exe}")
    fi
done
((${#running[@]} == 0)) || fail "the service was started on install: /usr/bin/cuentas runs as pid ${running[*]}"
if [[ -d /run/systemd/system ]]; then
    ! systemctl --quiet is-enabled cuentas.service || fail "systemctl says cuentas.service is enabled"
    ! systemctl --quiet is-active cuentas.service || fail "systemctl says cuentas.service is active"
fi
say "$UNIT: installed, not enabled, not started"

# The installed example passes the offline check: as an administrator runs it, and as the
# unit's ExecStartPre does (the user cuentas, with the credentials systemd hands over: a test
# key stands in for the Google service account's).
if ! out=$(/usr/bin/cuentas check --offline --config "$CONFIG" 2>&1); then
    fail "cuentas check --offline --config $CONFIG failed:"$'\n'"$out"
fi
say "cuentas check --offline --config $CONFIG: $(tail -n 1 <<<"$out") ($(grep -c '^ok' <<<"$out") lines ok)"
creds=$(mktemp -d)
trap 'rm -rf "$creds"' EXIT
cp tests/fixtures/sheets/service-account.json "$creds/google-service-account"
chmod 0755 "$creds"
chmod 0644 "$creds/google-service-account"
if ! out=$("${SUDO[@]}" runuser -u cuentas -- env CREDENTIALS_DIRECTORY="$creds" \
    /usr/bin/cuentas check --offline --config "$CONFIG" 2>&1); then
    fail "cuentas check --offline --config $CONFIG (as cuentas, with credentials) failed:"$'\n'"$out"
fi
say "the same as cuentas with the unit's credentials: $(tail -n 1 <<<"$out")"

# The unit as installed: `verify` says nothing; `security` rates the hardening.
if ! out=$(systemd-analyze verify "$UNIT" 2>&1) || [[ -n $out ]]; then
    fail "systemd-analyze verify $UNIT:"$'\n'"$out"
fi
say "systemd-analyze verify $UNIT: clean"
out=$(systemd-analyze security --offline=yes "$UNIT" 2>&1) || fail "systemd-analyze security --offline=yes $UNIT failed:"$'\n'"$out"
level=$(grep 'Overall exposure level' <<<"$out") || fail "systemd-analyze security printed no overall exposure level:"$'\n'"$out"
say "${level#→ }"
exposure=$(sed -E 's/.*: ([0-9]+(\.[0-9]+)?) .*/\1/' <<<"$level")
awk -v e="$exposure" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(e ~ /^[0-9.]+$/ && e <= max) }' ||
    fail "the unit's exposure is «$exposure», above $MAX_EXPOSURE"

# Purge: the binary, the configuration and the store go; the system user stays, as Debian does.
"${SUDO[@]}" dpkg --purge cuentas >/dev/null
for path in /usr/bin/cuentas "$UNIT" /etc/cuentas /var/lib/cuentas; do
    [[ ! -e $path ]] || fail "$path is still there after dpkg --purge cuentas"
done
say "purged: /usr/bin/cuentas, $UNIT, /etc/cuentas and /var/lib/cuentas are gone"
