#!/usr/bin/env bash
# Prepares the live mail tests: Debian's python3-aiosmtpd (installed when missing) and a test
# CA with a server certificate for 127.0.0.1, in DIR (default target/smtp). Writes DIR/env with
# the `export` lines the tests read; each test starts its own tests/smtp_sink.py from them, so
# that it can stop and restart its server.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-target/smtp}
SUDO=()
[[ $EUID -eq 0 ]] || SUDO=(sudo)

if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || ! command -v openssl >/dev/null; then
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends python3-aiosmtpd openssl >/dev/null
fi

mkdir -p "$DIR/tls"
TLS=$(cd "$DIR/tls" && pwd)
if [[ ! -s $TLS/cert.pem ]]; then
    (
        cd "$TLS"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
            -subj "/CN=cuentas mail test CA" -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout key.pem -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >ext.cnf
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem \
            -days 3650 -extfile ext.cnf 2>/dev/null
        rm -f ca.key server.csr ext.cnf ca.srl
    )
fi
{
    echo "export CUENTAS_TEST_SMTP_SINK='$(pwd)/tests/smtp_sink.py'"
    echo "export CUENTAS_TEST_SMTP_CA='$TLS/ca.pem'"
    echo "export CUENTAS_TEST_SMTP_CERT='$TLS/cert.pem'"
    echo "export CUENTAS_TEST_SMTP_KEY='$TLS/key.pem'"
} >"$DIR/env"
echo "smtp.sh: aiosmtpd $(/usr/bin/python3 -c 'import aiosmtpd; print(aiosmtpd.__version__)'), test CA in ${DIR}/tls"
