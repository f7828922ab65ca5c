#!/usr/bin/env bash
# A throwaway Samba AD DC on loopback for the live LDAP tests of cuentas.
#
#   tests/samba.sh start [DIR]   start a fresh, seeded DC from DIR (default target/samba) and
#                                write DIR/env, shell `export` lines the tests read
#   tests/samba.sh stop [DIR]    stop the DC started from DIR
#
# The domain is UPME.TEST (DC=upme,DC=test), LDAPS on 127.0.0.1:636 only (the DC runs nothing
# but its LDAP server). Samba binds 389/636/3268/3269 on 127.0.0.1, so one DC runs at a time:
# start first stops the DC it started from DIR, and fails if another process holds the ports.
#
# Provisioning takes ~15 s, so it is done once per Samba version into a template,
# target/samba-template-<version>/, that every start copies fresh into DIR. A provisioned
# directory names its own location only in etc/smb.conf (the ldb/tdb files hold no absolute
# paths), so a copy works once smb.conf's paths are rewritten; start checks that no path of the
# template is left anywhere in DIR.
#
# The template also holds a test CA and a server certificate for 127.0.0.1 / localhost /
# dc1.upme.test in private/tls/ (Samba's self-made certificate has no subjectAltName, which
# rustls rejects). The directory is then seeded from tests/fixtures/ad-seed.ldif, and the bind
# account svc-cuentas gets a random password, written to DIR/bind-password (mode 0600), and
# exactly the rights of deploy/ad-delegation.txt (no group but Domain Users): every live test
# runs with the delegation the install guide documents.
#
#   tests/samba.sh delegate DIR DN [--except LINE]...
#                                grant the account DN the rights of deploy/ad-delegation.txt
#                                on the test DC started from DIR, but those LINEs ("user WP title")
#   tests/samba.sh dsacl DIR DN SDDL
#                                add the ACEs of SDDL to the object DN on the test DC from DIR
#
# Needs root (an AD DC runs as root; so do CI and the developers' machines) and Debian's
# packages, which it installs when missing (apt-get; the only network it uses).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# Bump when the provisioning below changes, so that cached templates are rebuilt.
TEMPLATE_REV=1
PACKAGES=(samba samba-dsdb-modules samba-vfs-modules samba-ad-provision ldap-utils openssl)
REALM=UPME.TEST
DOMAIN=UPME
BASE_DN=DC=upme,DC=test
ADMIN_DN=CN=Administrator,CN=Users,$BASE_DN
ADMIN_PASSWORD='Adm1n!Pass2026'
BIND_DN=CN=svc-cuentas,OU=Servicios,$BASE_DN
PROTECTED_ADMIN_DN="CN=Protegido Admin,OU=Funcionarios,OU=Usuarios,$BASE_DN"
SEED=$ROOT/tests/fixtures/ad-seed.ldif
DELEGATION=$ROOT/deploy/ad-delegation.txt
# What the delegation covers on the test DC: tests/common/ad.rs's managed_ous and allowed_groups,
# and its personal_email_attribute (tests/trust_live.rs).
MANAGED_OU=OU=Usuarios,$BASE_DN
ALLOWED_GROUPS=(GG-Todos GG-Energia GG-Planeacion VPN)
PERSONAL_EMAIL_ATTRIBUTE=otherMailbox
URL=ldaps://127.0.0.1:636
PORTS=(389 636 3268 3269)

die() {
    echo "samba.sh: $*" >&2
    exit 1
}

# Prints the last lines of a log file to stderr, then fails.
die_log() {
    local log=$1
    shift
    if [[ -f $log ]]; then
        echo "samba.sh: --- last lines of $log ---" >&2
        tail -n 30 "$log" >&2
    fi
    die "$@"
}

now_ms() { date +%s%3N; }

# DIR, absolute, relative to the repo root when given relative, without trailing slashes.
abs_dir() {
    local d=$1
    [[ $d == /* ]] || d=$ROOT/$d
    while [[ $d == */ && $d != / ]]; do d=${d%/}; done
    printf '%s\n' "$d"
}

# A string as a single-quoted shell word.
shell_quote() {
    local s=${1//\'/\'\\\'\'}
    printf "'%s'" "$s"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ports_in_use() {
    local p busy=()
    for p in "${PORTS[@]}"; do
        if port_open "$p"; then busy+=("$p"); fi
    done
    printf '%s\n' "${busy[*]:-}"
}

ensure_packages() {
    local p missing=()
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]} == 0)) && command -v samba-tool >/dev/null && command -v ldapmodify >/dev/null; then
        return 0
    fi
    local sudo=() log=$ROOT/target/samba-apt.log
    [[ $EUID -eq 0 ]] || sudo=(sudo)
    mkdir -p "$ROOT/target"
    echo "samba.sh: installing ${missing[*]:-${PACKAGES[*]}}" >&2
    # --no-install-recommends keeps winbind and the rest of samba-ad-dc's dependencies out.
    # Debian's packages start smbd/nmbd on install unless a policy-rc.d says no; this DC needs
    # neither, so forbid service starts for the install where no policy is set already.
    local policy=/usr/sbin/policy-rc.d added_policy=''
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 0755 "$policy"
        added_policy=1
    fi
    local rc=0
    {
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y --no-install-recommends "${PACKAGES[@]}"
    } >"$log" 2>&1 || rc=$?
    [[ -z $added_policy ]] || "${sudo[@]}" rm -f "$policy"
    ((rc == 0)) || die_log "$log" "installing Samba failed"
    command -v samba-tool >/dev/null || die "samba-tool still missing after installing ${PACKAGES[*]}"
}

samba_version() {
    local v
    v=$(samba --version) || die "samba --version failed"
    v=${v#Version }
    printf '%s\n' "${v//[^A-Za-z0-9._-]/_}"
}

# The test CA and the server certificate, into $1/private/tls/{ca,cert,key}.pem.
make_tls() {
    local tls=$1/private/tls work
    work=$(mktemp -d)
    mkdir -p "$tls"
    # Chained with &&: set -e does not apply inside a ( ... ) || ... list.
    (
        cd "$work" && umask 077 &&
            openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
                -subj "/CN=cuentas test CA" \
                -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" &&
            openssl req -new -newkey rsa:2048 -nodes -keyout key.pem -out server.csr \
                -subj "/CN=dc1.upme.test" &&
            printf '%s\n' \
                'basicConstraints = critical, CA:FALSE' \
                'keyUsage = critical, digitalSignature, keyEncipherment' \
                'extendedKeyUsage = serverAuth' \
                'subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:dc1.upme.test' \
                'subjectKeyIdentifier = hash' \
                'authorityKeyIdentifier = keyid, issuer' >ext.cnf &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                -out cert.pem -days 3650 -sha256 -extfile ext.cnf &&
            openssl verify -CAfile ca.pem -purpose sslserver cert.pem
    ) >"$work/openssl.log" 2>&1 || {
        cp "$work/openssl.log" "$1/openssl.log" 2>/dev/null || true
        rm -rf "$work"
        die_log "$1/openssl.log" "making the test certificates failed"
    }
    install -m 0644 "$work/ca.pem" "$tls/ca.pem"
    install -m 0644 "$work/cert.pem" "$tls/cert.pem"
    install -m 0600 "$work/key.pem" "$tls/key.pem"
    # The CA key is thrown away: nothing else is ever signed with this CA.
    rm -rf "$work"
}

# Provisions the domain into the template directory $1 (built aside, then renamed into place,
# so that an interrupted build never leaves a template that looks complete).
build_template() {
    local tpl=$1 tmp=$1.tmp.$$
    rm -rf "$tpl" "$tpl".tmp.*
    mkdir -p "$tmp/run"
    samba-tool domain provision --targetdir="$tmp" --realm="$REALM" --domain="$DOMAIN" \
        --server-role=dc --dns-backend=NONE --host-name=dc1 --host-ip=127.0.0.1 \
        --adminpass="$ADMIN_PASSWORD" \
        --option="interfaces=127.0.0.1/8" --option="bind interfaces only=yes" \
        --option="server services=ldap" --option="pid directory=$tmp/run" \
        --option="ldb:nosync=true" >"$tpl.provision.log" 2>&1 ||
        die_log "$tpl.provision.log" "provisioning the template in $tmp failed"
    local conf=$tmp/etc/smb.conf
    # Logs inside the directory, not in /var/log/samba/log.%m (the samba daemon does not expand
    # %m: it would write a file named log.%m).
    if grep -qE '^[[:space:]]*log file[[:space:]]*=' "$conf"; then
        sed -i -E "s|^([[:space:]]*)log file[[:space:]]*=.*|\\1log file = $tmp/log.samba|" "$conf"
    else
        sed -i "/^\[global\]/a\\	log file = $tmp/log.samba" "$conf"
    fi
    grep -qF "log file = $tmp/log.samba" "$conf" || die "could not set the log file in $conf"
    make_tls "$tmp"
    relocate "$tmp" "$tmp" "$tpl"
    printf 'rev=%s version=%s\n' "$TEMPLATE_REV" "$(samba --version)" >"$tmp/template-stamp"
    mv "$tmp" "$tpl"
}

# Rewrites the paths under $2 in DIR $1's smb.conf to paths under $3, then checks that $2 is
# named nowhere in DIR (in no file, text or ldb).
relocate() {
    local dir=$1 from=$2 to=$3 conf=$1/etc/smb.conf text left
    [[ $to != *"$from"* ]] || die "cannot relocate $from to $to (the one contains the other)"
    text=$(<"$conf")
    printf '%s\n' "${text//"$from"/"$to"}" >"$conf"
    left=$(grep -rlF -- "$from" "$dir" || true)
    [[ -z $left ]] || die "paths under $from are left in: $left"
}

# Stops the samba started from DIR $1, if its pid file names a live samba process (and then
# sets STOPPED_PID to its pid).
STOPPED_PID=
stop_dc() {
    local dir=$1 pidfile=$1/run/samba.pid pid
    [[ -f $pidfile ]] || return 0
    pid=$(tr -dc '0-9' <"$pidfile")
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
        [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */samba ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for ((i = 0; i < 150; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        # samba -D makes itself a session and process-group leader, its workers included: if it
        # does not go on TERM, kill the whole group (its own pid, so only what it started).
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        STOPPED_PID=$pid
        # Its workers go with it; wait for them to let go of the ports.
        for ((i = 0; i < 150; i++)); do
            [[ -n $(ports_in_use) ]] || break
            sleep 0.1
        done
    fi
    rm -f "$pidfile"
}

ldap_admin() {
    local tool=$1
    shift
    LDAPTLS_CACERT=$DIR/private/tls/ca.pem "$tool" -H "$URL" -x -D "$ADMIN_DN" -w "$ADMIN_PASSWORD" "$@"
}

wait_ldaps() {
    local pid='' i
    for ((i = 0; i < 300; i++)); do
        if ldap_admin ldapsearch -b "$BASE_DN" -s base dn >/dev/null 2>&1; then
            return 0
        fi
        [[ -n $pid ]] || pid=$(tr -dc '0-9' <"$DIR/run/samba.pid" 2>/dev/null || true)
        if ((i > 30)) && { [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; }; then
            die_log "$DIR/log.samba" "samba in $DIR exited before answering LDAPS"
        fi
        sleep 0.1
    done
    die_log "$DIR/log.samba" "no LDAPS answer on $URL from the DC in $DIR within 30 s"
}

seed() {
    local log=$DIR/seed.log
    ldap_admin ldapmodify -a -f "$SEED" >"$log" 2>&1 || die_log "$log" "seeding from $SEED failed"

    # The bind account: a random password (AD complexity: upper, lower, digits, symbol).
    local password
    password="Cu-$(openssl rand -base64 24 | tr -d '/+=\n')-9"
    (umask 077 && printf '%s' "$password" >"$DIR/bind-password")
    chmod 0600 "$DIR/bind-password"
    {
        printf 'dn: %s\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: ' "$BIND_DN"
        printf '"%s"' "$password" | iconv -f UTF-8 -t UTF-16LE | base64 -w0
        printf '\n-\nreplace: userAccountControl\nuserAccountControl: 66048\n-\n'
    } | ldap_admin ldapmodify >>"$log" 2>&1 || die_log "$log" "setting the password of $BIND_DN failed"
    LDAPTLS_CACERT=$DIR/private/tls/ca.pem ldapsearch -H "$URL" -x -D "$BIND_DN" \
        -y "$DIR/bind-password" -b "$BASE_DN" -s base dn >>"$log" 2>&1 ||
        die_log "$log" "binding as $BIND_DN with its new password failed"

    # AD's SDProp sets adminCount=1 on members of protected groups; Samba runs no SDProp, so
    # set it as AD would have.
    ADMINCOUNT=$(ldap_admin ldapsearch -LLL -b "$PROTECTED_ADMIN_DN" -s base adminCount) ||
        die "reading adminCount of $PROTECTED_ADMIN_DN failed"
    ADMINCOUNT=$(sed -n 's/^adminCount: //p' <<<"$ADMINCOUNT")
    if [[ $ADMINCOUNT != 1 ]]; then
        printf 'dn: %s\nchangetype: modify\nreplace: adminCount\nadminCount: 1\n-\n' \
            "$PROTECTED_ADMIN_DN" | ldap_admin ldapmodify >>"$log" 2>&1 ||
            die_log "$log" "setting adminCount on $PROTECTED_ADMIN_DN failed"
        ADMINCOUNT="1 (set by samba.sh; Samba had ${ADMINCOUNT:-none})"
    fi

    cmd_delegate "$BIND_DN"
}

# An objectGUID-style value (base64) as AD writes GUIDs: the first three fields little-endian.
b64_guid() {
    local h
    h=$(base64 -d <<<"$1" | od -An -tx1 -v | tr -d ' \n')
    printf '%s-%s-%s-%s-%s' "${h:6:2}${h:4:2}${h:2:2}${h:0:2}" "${h:10:2}${h:8:2}" \
        "${h:14:2}${h:12:2}" "${h:16:4}" "${h:20:12}"
}

# An objectSid (base64) as S-1-5-21-…: revision, count, 48-bit authority (big-endian), then
# 32-bit sub-authorities (little-endian).
b64_sid() {
    local h sid i s
    h=$(base64 -d <<<"$1" | od -An -tx1 -v | tr -d ' \n')
    sid="S-$((16#${h:0:2}))-$((16#${h:4:12}))"
    for ((i = 0; i < 16#${h:2:2}; i++)); do
        s=${h:16+8*i:8}
        sid+="-$((16#${s:6:2}${s:4:2}${s:2:2}${s:0:2}))"
    done
    printf '%s' "$sid"
}

# The one value of ATTR of the entry BASE (or the first entry FILTER finds under BASE).
ldap_value() {
    local base=$1 scope=$2 filter=$3 attr=$4 out
    out=$(ldap_admin ldapsearch -LLL -o ldif-wrap=no -b "$base" -s "$scope" "$filter" "$attr") ||
        die "reading $attr of $base ($filter) failed"
    sed -n "s/^$attr:: //p; s/^$attr: /=/p" <<<"$out" | head -n 1
}

schema_guid() {
    local v
    v=$(ldap_value "CN=Schema,CN=Configuration,$BASE_DN" one "(lDAPDisplayName=$1)" schemaIDGUID)
    [[ -n $v ]] || die "$DELEGATION: no attribute or class «$1» in the schema"
    b64_guid "$v"
}

right_guid() {
    local v
    v=$(ldap_value "CN=Extended-Rights,CN=Configuration,$BASE_DN" one "(cn=$1)" rightsGuid)
    [[ -n $v ]] || die "$DELEGATION: no extended right «$1»"
    printf '%s' "${v#=}"
}

# Grants the account DN the rights of deploy/ad-delegation.txt (but the lines given after
# --except), as the install guide does with dsacls: on the managed OU (inherited below it) and
# on each allowed group.
cmd_delegate() {
    local dn=$1
    shift
    local -A skip=()
    while (($#)); do
        [[ $1 == --except && $# -ge 2 ]] || die "usage: tests/samba.sh delegate DIR DN [--except LINE]..."
        skip[$(tr -s ' ' <<<"$2")]=1
        shift 2
    done
    local sid user where right what ou_sddl='' group_sddl='' line
    sid=$(b64_sid "$(ldap_value "$dn" base '(objectClass=*)' objectSid)")
    user=$(schema_guid user)
    while read -r where right what; do
        [[ -z $where || $where == \#* ]] && continue
        line="$where $right $what"
        [[ -n ${skip[$line]:-} ]] && continue
        case $where:$right in
        ou:CC | ou:DC) ou_sddl+="(OA;CI;$right;$(schema_guid "$what");;$sid)" ;;
        user:WP) ou_sddl+="(OA;CIIO;WP;$(schema_guid "$what");$user;$sid)" ;;
        user:CR) ou_sddl+="(OA;CIIO;CR;$(right_guid "$what");$user;$sid)" ;;
        group:WP) group_sddl+="(OA;;WP;$(schema_guid "$what");;$sid)" ;;
        *) die "$DELEGATION: cannot grant «$line»" ;;
        esac
    done < <(cat "$DELEGATION"; echo "user WP $PERSONAL_EMAIL_ATTRIBUTE")
    dsacl "$MANAGED_OU" "$ou_sddl"
    local group
    for group in "${ALLOWED_GROUPS[@]}"; do
        dsacl "CN=$group,OU=Grupos,$MANAGED_OU" "$group_sddl"
    done
}

dsacl() {
    [[ -n $2 ]] || return 0
    samba-tool dsacl set -s "$DIR/etc/smb.conf" -H ldap://127.0.0.1 \
        -U "Administrator%$ADMIN_PASSWORD" --objectdn="$1" --sddl="$2" >>"$DIR/delegate.log" 2>&1 ||
        die_log "$DIR/delegate.log" "samba-tool dsacl set on $1 failed"
}

write_env() {
    local env=$DIR/env
    {
        echo "# Written by tests/samba.sh start: the live LDAP tests' connection to the test DC."
        echo "export CUENTAS_TEST_LDAP_URL=$(shell_quote "$URL")"
        echo "export CUENTAS_TEST_LDAP_CA=$(shell_quote "$DIR/private/tls/ca.pem")"
        echo "export CUENTAS_TEST_LDAP_BIND_DN=$(shell_quote "$BIND_DN")"
        echo "export CUENTAS_TEST_LDAP_BIND_PASSWORD_FILE=$(shell_quote "$DIR/bind-password")"
        echo "export CUENTAS_TEST_LDAP_BASE_DN=$(shell_quote "$BASE_DN")"
        echo "export CUENTAS_TEST_LDAP_ADMIN_DN=$(shell_quote "$ADMIN_DN")"
        echo "export CUENTAS_TEST_LDAP_ADMIN_PASSWORD=$(shell_quote "$ADMIN_PASSWORD")"
        echo "export CUENTAS_TEST_SAMBA_DIR=$(shell_quote "$DIR")"
    } >"$env.tmp"
    mv "$env.tmp" "$env"
}

cmd_start() {
    local t0 version tpl template_state=warm
    t0=$(now_ms)
    [[ $EUID -eq 0 ]] || die "the AD DC runs as root: run this as root"
    ensure_packages
    version=$(samba_version)
    tpl=$ROOT/target/samba-template-$version
    case $DIR/ in
    / | "$ROOT/" | "$ROOT/target/" | "$tpl/"*) die "refusing to use $DIR as the DC's directory" ;;
    esac
    if [[ -e $DIR && ! -f $DIR/etc/smb.conf ]] && [[ -n $(ls -A "$DIR") ]]; then
        die "$DIR exists and is not a test DC's directory; refusing to replace it"
    fi

    stop_dc "$DIR"
    local busy
    busy=$(ports_in_use)
    if [[ -n $busy ]]; then
        local who=
        command -v ss >/dev/null && who=$'\n'$(ss -ltnp 2>/dev/null | grep -E '127\.0\.0\.1:(389|636|3268|3269)\b' || true)
        die "ports $busy on 127.0.0.1 are taken by another process (another DC?); stop it first$who"
    fi

    if [[ $(cat "$tpl/template-stamp" 2>/dev/null) != "rev=$TEMPLATE_REV version=$(samba --version)" ]]; then
        template_state=cold
        build_template "$tpl"
    fi

    rm -rf "$DIR"
    mkdir -p "$(dirname "$DIR")"
    cp -a "$tpl" "$DIR"
    rm -f "$DIR/template-stamp" "$DIR/run/samba.pid" "$DIR"/log.*
    relocate "$DIR" "$tpl" "$DIR"

    samba -D -s "$DIR/etc/smb.conf" >"$DIR/start.log" 2>&1 || die_log "$DIR/start.log" "samba did not start"
    wait_ldaps
    seed
    write_env
    # Started through sudo by a developer: the tests run as them and must read these.
    if [[ -n ${SUDO_USER:-} ]]; then
        chown "$SUDO_USER" "$DIR/env" "$DIR/bind-password" "$DIR/private/tls/ca.pem"
        chmod o+x "$DIR" "$DIR/private" "$DIR/private/tls" 2>/dev/null || true
    fi
    local t1 pid
    t1=$(now_ms)
    pid=$(tr -dc '0-9' <"$DIR/run/samba.pid")
    printf 'samba.sh: AD DC up on %s (Samba %s, pid %s, %s template) in %d.%03d s\n' \
        "$URL" "$version" "$pid" "$template_state" $(((t1 - t0) / 1000)) $(((t1 - t0) % 1000))
    printf 'samba.sh:   %s, bind %s, adminCount of protegido.admin: %s\n' \
        "${DIR#"$ROOT"/}/env" "$BIND_DN" "$ADMINCOUNT"
}

cmd_stop() {
    stop_dc "$DIR"
    if [[ -n $STOPPED_PID ]]; then
        echo "samba.sh: stopped the DC of ${DIR#"$ROOT"/} (pid $STOPPED_PID)"
    else
        echo "samba.sh: no DC running from ${DIR#"$ROOT"/}"
    fi
}

case ${1:-} in
start | stop)
    DIR=$(abs_dir "${2:-target/samba}")
    "cmd_$1"
    ;;
delegate)
    [[ $# -ge 3 ]] || die "usage: tests/samba.sh delegate DIR DN [--except LINE]..."
    DIR=$(abs_dir "$2")
    cmd_delegate "${@:3}"
    ;;
dsacl)
    [[ $# -eq 4 ]] || die "usage: tests/samba.sh dsacl DIR DN SDDL"
    DIR=$(abs_dir "$2")
    dsacl "$3" "$4"
    ;;
*)
    echo "usage: tests/samba.sh start|stop [DIR] | delegate DIR DN [--except LINE]... | dsacl DIR DN SDDL" >&2
    exit 2
    ;;
esac
