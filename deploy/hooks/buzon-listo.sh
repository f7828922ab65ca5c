#!/bin/sh
# Hooks mailbox_ready y mailbox_deleted de cuentas: pregunta a Microsoft Graph si existe el
# buzón de una cuenta.
#
# Uso:  buzon-listo.sh CUENTA              (mailbox_ready)   sale 0 si el buzón existe (HTTP 200)
#       buzon-listo.sh --deleted CUENTA    (mailbox_deleted) sale 0 si ya no existe (HTTP 404)
# Cualquier otra respuesta sale 1 (aún no; cuentas vuelve a preguntar más tarde) y se imprime
# el estado HTTP, que queda en el historial de la solicitud. Sale 2 si falta configuración o
# no se obtuvo el token: eso no se arregla esperando.
#
# Configuración, de las variables de entorno o de /etc/cuentas/graph.env (líneas VAR=valor;
# las variables de entorno mandan):
#   GRAPH_TENANT_ID     id del inquilino (directorio) de Entra ID
#   GRAPH_CLIENT_ID     id de la aplicación registrada
#   GRAPH_SECRET_FILE   archivo con el secreto de la aplicación
#                       (por defecto $CREDENTIALS_DIRECTORY/graph-secret, es decir
#                       LoadCredential=graph-secret:/etc/cuentas/secrets/graph-secret en la unidad)
#   CUENTAS_DOMAIN      dominio de correo: se consulta CUENTA@CUENTAS_DOMAIN
#   GRAPH_ENV_FILE      otro archivo en lugar de /etc/cuentas/graph.env
# La aplicación necesita el permiso de aplicación MailboxSettings.Read (con consentimiento
# de administrador).
#
# Ni el secreto ni el token aparecen en la línea de comandos de curl (la vería cualquiera en
# /proc): ambos le llegan por la entrada estándar.
set -eu
export LC_ALL=C

want=200
if [ "${1:-}" = "--deleted" ]; then
    want=404
    shift
fi
if [ "$#" -ne 1 ]; then
    echo "uso: $0 [--deleted] CUENTA" >&2
    exit 2
fi
account=$1
# La cuenta va dentro de una URL: sólo ^[a-z0-9.-]+$ (case compara la cadena entera).
case $account in
    '' | *[!a-z0-9.-]*)
        echo "cuenta no válida: «$account»" >&2
        exit 2
        ;;
esac

# Las variables de entorno mandan sobre el archivo.
env_tenant=${GRAPH_TENANT_ID:-}
env_client=${GRAPH_CLIENT_ID:-}
env_secret_file=${GRAPH_SECRET_FILE:-}
env_domain=${CUENTAS_DOMAIN:-}
conf=${GRAPH_ENV_FILE:-/etc/cuentas/graph.env}
if [ -r "$conf" ]; then
    # shellcheck source=/dev/null
    . "$conf"
fi
tenant=${env_tenant:-${GRAPH_TENANT_ID:-}}
client=${env_client:-${GRAPH_CLIENT_ID:-}}
secret_file=${env_secret_file:-${GRAPH_SECRET_FILE:-}}
domain=${env_domain:-${CUENTAS_DOMAIN:-}}
if [ -z "$secret_file" ] && [ -n "${CREDENTIALS_DIRECTORY:-}" ]; then
    secret_file=$CREDENTIALS_DIRECTORY/graph-secret
fi

for pair in "GRAPH_TENANT_ID=$tenant" "GRAPH_CLIENT_ID=$client" "CUENTAS_DOMAIN=$domain" \
    "GRAPH_SECRET_FILE=$secret_file"; do
    if [ -z "${pair#*=}" ]; then
        echo "falta ${pair%%=*} (entorno o $conf)" >&2
        exit 2
    fi
done
if [ ! -r "$secret_file" ]; then
    echo "no se puede leer el secreto $secret_file" >&2
    exit 2
fi

# Token por credenciales de cliente. tr quita el salto de línea final del archivo.
response=$(tr -d '\r\n' < "$secret_file" | curl -sS --max-time 20 \
    --data-urlencode "client_id=$client" \
    --data-urlencode "scope=https://graph.microsoft.com/.default" \
    --data-urlencode "grant_type=client_credentials" \
    --data-urlencode "client_secret@-" \
    "https://login.microsoftonline.com/$tenant/oauth2/v2.0/token") || {
    echo "no se pudo pedir el token a login.microsoftonline.com" >&2
    exit 2
}
token=$(printf '%s' "$response" | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
if [ -z "$token" ]; then
    # Sólo el código de error: la respuesta completa no hace falta en el historial.
    error=$(printf '%s' "$response" | sed -n 's/.*"error" *: *"\([^"]*\)".*/\1/p')
    echo "Entra ID no dio token: ${error:-respuesta inesperada}" >&2
    exit 2
fi

url="https://graph.microsoft.com/v1.0/users/$account@$domain/mailboxSettings"
http=$(printf 'Authorization: Bearer %s\n' "$token" | curl -sS --max-time 20 -o /dev/null \
    -w '%{http_code}' -H @- "$url") || http=000

what="buzón de $account@$domain"
case $want:$http in
    200:200) echo "$what: existe (HTTP 200)" ;;
    200:404) echo "$what: todavía no existe (HTTP 404)" ;;
    404:404) echo "$what: ya no existe (HTTP 404)" ;;
    404:200) echo "$what: todavía existe (HTTP 200)" ;;
    *) echo "$what: HTTP $http" ;;
esac
[ "$http" = "$want" ]
