#!/bin/sh
# The images' entry point: `entrypoint.sh ROLE [ARGS...]`.
#
#   web      Daphne serving the app on 0.0.0.0:$PORT (8000), through builder.webserver
#            (which refuses oversized request bodies before reading them)
#   worker   a Celery worker for $SHIPYARD_QUEUES (cpu; gpu; fpga), `shipyard worker`
#   sweep    `shipyard sweep`: hands on runs whose worker is gone (every worker does it too)
#   migrate  apply the database migrations, then exit
#   check    Django's system checks (`check --deploy` with ARGS `--deploy`), then exit
#   anything else is run as given (`python -m django createsuperuser`, `shipyard ...`).
#
# Each role first waits for the database (SHIPYARD_WAIT_SECONDS, 60) and applies the
# migrations when SHIPYARD_MIGRATE=1 (set it on one service only: web in compose.yaml).
# The same script runs outside Docker with the same environment (tests/builder/test_docker.py).
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift

export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-builder.settings}"

say() {
    echo "entrypoint: $*" >&2
}

wait_for_database() {
    python - <<'PY'
import os, sys, time

import django

django.setup()
from django.db import connections

deadline = time.monotonic() + int(os.environ.get("SHIPYARD_WAIT_SECONDS", "60"))
while True:
    try:
        connections["default"].ensure_connection()
        break
    except Exception as exc:
        if time.monotonic() > deadline:
            sys.exit(f"entrypoint: the database did not answer: {type(exc).__name__}: {exc}")
        print("entrypoint: waiting for the database", file=sys.stderr, flush=True)
        time.sleep(1)
PY
}

case "$role" in
    web|worker|sweep|migrate|check)
        wait_for_database
        if [ "${SHIPYARD_MIGRATE:-0}" = "1" ] || [ "$role" = migrate ]; then
            say "applying migrations"
            python -m django migrate --noinput
        fi
        ;;
esac

case "$role" in
    web)
        say "serving on 0.0.0.0:${PORT:-8000}"
        exec python -m builder.webserver -b 0.0.0.0 -p "${PORT:-8000}" "$@" \
            builder.asgi:application
        ;;
    worker)
        set -- --queues "${SHIPYARD_QUEUES:-cpu}" "$@"
        if [ -n "${SHIPYARD_CONCURRENCY:-}" ]; then
            set -- --concurrency "$SHIPYARD_CONCURRENCY" "$@"
        fi
        exec shipyard worker "$@"
        ;;
    sweep)
        exec shipyard sweep "$@"
        ;;
    migrate)
        exit 0
        ;;
    check)
        exec python -m django check "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
