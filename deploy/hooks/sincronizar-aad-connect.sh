#!/bin/sh
# Hook after_change de cuentas: pide a Azure AD Connect (Entra Connect) una sincronización
# delta, para que las cuentas creadas, cambiadas o deshabilitadas en AD lleguen pronto a
# Microsoft 365 en vez de esperar el ciclo automático (30 min).
#
# Uso (cuentas no le pasa argumentos):  sincronizar-aad-connect.sh
# Sale con el estado de ssh, que es el de PowerShell en el servidor: 0 = ciclo iniciado.
# Start-ADSyncSyncCycle sólo inicia el ciclo y vuelve; si ya hay uno en curso falla, y el
# cambio lo recoge ese ciclo o el siguiente.
#
# Variables (heredadas del servicio: Environment= en un drop-in de systemd):
#   CUENTAS_SYNC_HOST         servidor de AAD Connect   (aadconnect.example.gov.co)
#   CUENTAS_SYNC_USER         usuario de ssh            (svc-sync)
#   CUENTAS_SYNC_KEY          clave privada de ssh      (/etc/cuentas/ssh/id_ed25519)
#   CUENTAS_SYNC_KNOWN_HOSTS  clave del servidor        (/etc/cuentas/ssh/known_hosts)
#
# Preparación, una vez:
#   install -d -o root -g cuentas -m 0750 /etc/cuentas/ssh
#   ssh-keygen -t ed25519 -N '' -C cuentas -f /etc/cuentas/ssh/id_ed25519
#   chown cuentas:cuentas /etc/cuentas/ssh/id_ed25519
#   ssh-keyscan aadconnect.example.gov.co > /etc/cuentas/ssh/known_hosts   (y verificar la huella)
# En el servidor (OpenSSH para Windows), la clave pública en el authorized_keys de svc-sync,
# idealmente con restrict,command="..." para que sólo pueda lanzar este comando; svc-sync
# necesita pertenecer al grupo local ADSyncOperators.
#
# El archivo known_hosts va aparte porque el servicio corre con ProtectHome=yes y sin ~/.ssh;
# StrictHostKeyChecking=yes: nunca se acepta una clave de servidor desconocida.
set -eu

host=${CUENTAS_SYNC_HOST:-aadconnect.example.gov.co}
user=${CUENTAS_SYNC_USER:-svc-sync}
key=${CUENTAS_SYNC_KEY:-/etc/cuentas/ssh/id_ed25519}
known_hosts=${CUENTAS_SYNC_KNOWN_HOSTS:-/etc/cuentas/ssh/known_hosts}

status=0
ssh -i "$key" \
    -o BatchMode=yes \
    -o ConnectTimeout=15 \
    -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$known_hosts" \
    "$user@$host" \
    'powershell -NoProfile -Command "Import-Module ADSync; Start-ADSyncSyncCycle -PolicyType Delta"' \
    || status=$?

if [ "$status" -eq 0 ]; then
    echo "sincronización delta iniciada en $host"
else
    echo "no se pudo iniciar la sincronización en $host (ssh salió con $status)" >&2
fi
exit "$status"
