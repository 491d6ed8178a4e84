#!/usr/bin/env bash
# `make bench`: the app at 100,000 incidents, measured against the targets of issue 7.
#
# PostgreSQL on 127.0.0.1:5432 (database postmortems_bench, created and seeded once, reused while
# its sizes and schema match; postmortems_bench_small, 10 incidents, for the query counts at small
# scale). Pages are served by gunicorn with production settings and loaded with wrk; the bare
# Django view in bench/ceiling.py is the ceiling, measured in the same run. Then the query counts,
# EXPLAIN ANALYZE and profiles, the weekly digest run into a local SMTP sink, and the reminder scan.
# Results: bench/results.json, bench/out/summary.md, and the figures block in docs/performance.md.
#
# Knobs: BENCH_SCALE (default 1; 0.1 for a quick run), BENCH_DURATION (seconds per page, 10),
# BENCH_QUIET_WAIT (seconds to wait for the shared machine's load average to fall below 1, 120),
# BENCH_STEPS (default "load queries digests reminders"; a step left out keeps its last figures).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
OUT=bench/out
SCALE=${BENCH_SCALE:-1}
DURATION=${BENCH_DURATION:-10}
QUIET_WAIT=${BENCH_QUIET_WAIT:-120}
STEPS=" ${BENCH_STEPS:-load queries digests reminders} "
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
mkdir -p "$OUT"
# A step left out keeps its last figures; one that has none yet (a fresh clone) runs anyway.
for pair in load:wrk queries:queries-small digests:digests-small reminders:reminders-big; do
  step=${pair%%:*} file=${pair#*:}
  if [[ "$STEPS" != *" $step "* && ! -s "$OUT/$file.json" ]]; then
    echo "Step $step has no figures yet in $OUT: running it too."
    STEPS="$STEPS$step "
  fi
done

command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432; start it first (see shared RECIPES)." >&2
  exit 1
fi

# Production-like settings for every process below; a fresh secret key each run.
export DJANGO_DEBUG=0
export DJANGO_SECRET_KEY="$($PY -c 'import secrets; print(secrets.token_urlsafe(50))')"
export DJANGO_ALLOWED_HOSTS=127.0.0.1
export DJANGO_SECURE_COOKIES=0
export LOG_LEVEL=WARNING
export BENCH_PG="$PG"
BIG_DB="$PG/postmortems_bench"
SMALL_DB="$PG/postmortems_bench_small"

echo "== Databases"
$PY bench/measure.py ensure-db --db postmortems_bench --sizes "{\"scale\": $SCALE}" \
  --fixtures "$OUT/fixtures.json"
$PY bench/measure.py ensure-db --db postmortems_bench_small \
  --sizes '{"people": 40, "teams": 4, "managers": 8, "incidents": 10, "entries": 400, "action_items": 40}' \
  --fixtures "$OUT/fixtures-small.json"
$PY manage.py collectstatic --noinput -v 0

read -r APP_PORT CEILING_PORT SMTP_PORT RENDER_PORT < <($PY - <<'PYEOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PYEOF
)
export SITE_URL="http://127.0.0.1:$APP_PORT"

# Everything started here is stopped here, whatever happens; nothing else is touched.
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() {
  for _ in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/" || true)
    [[ "$code" != "000" ]] && return 0
    sleep 0.2
  done
  echo "Nothing answered on port $1" >&2
  return 1
}

export DATABASE_URL="$BIG_DB"
if [[ "$STEPS" == *" load "* ]]; then
  echo "== Load (wrk -t1 -c8 -d${DURATION}s; gunicorn, 2 workers)"
  $PY bench/measure.py sessions
  GUNICORN=(.venv/bin/gunicorn --workers 2 --no-control-socket --log-level warning)
  "${GUNICORN[@]}" --bind "127.0.0.1:$APP_PORT" postmortems.wsgi:application &
  APP_PID=$!
  PIDS+=("$APP_PID")
  # The same app keeping no page: each page is also measured as rendered on every request.
  KEPT_PAGES_MB=0 "${GUNICORN[@]}" --bind "127.0.0.1:$RENDER_PORT" postmortems.wsgi:application &
  RENDER_PID=$!
  PIDS+=("$RENDER_PID")
  "${GUNICORN[@]}" --bind "127.0.0.1:$CEILING_PORT" bench.ceiling:application &
  CEILING_PID=$!
  PIDS+=("$CEILING_PID")
  wait_for "$APP_PORT"
  wait_for "$RENDER_PORT"
  wait_for "$CEILING_PORT"
  $PY bench/measure.py wrk --app-port "$APP_PORT" --ceiling-port "$CEILING_PORT" \
    --app-pid "$APP_PID" --ceiling-pid "$CEILING_PID" \
    --render-port "$RENDER_PORT" --render-pid "$RENDER_PID" \
    --duration "$DURATION" --quiet-wait "$QUIET_WAIT"
  cleanup  # the servers stop before the in-process measurements, so nothing competes with them
fi

if [[ "$STEPS" == *" queries "* ]]; then
  echo "== Queries per request (test client), EXPLAIN ANALYZE, profiles"
  $PY bench/measure.py queries --label big --fixtures "$OUT/fixtures.json"
  DATABASE_URL="$SMALL_DB" $PY bench/measure.py queries --label small --fixtures "$OUT/fixtures-small.json"
fi

if [[ "$STEPS" == *" digests "* ]]; then
  echo "== Weekly digests into a local SMTP sink"
  rm -f "$OUT/smtp-count.txt"
  # Postfix's smtp-sink: a test SMTP server in C that accepts and counts. The Python sink
  # (aiosmtpd) spent more CPU receiving a digest than the worker spent sending it, on the same
  # two cores, and its one process set the pace of the run (docs/performance.md).
  SINK=/usr/sbin/smtp-sink
  [[ -x $SINK ]] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    postfix >/dev/null 2>&1 || true
  if [[ -x $SINK ]]; then
    export BENCH_SMTP_SINK="postfix smtp-sink"
    "$SINK" -c -u nobody "127.0.0.1:$SMTP_PORT" 256 > "$OUT/smtp-count.txt" 2>&1 &
  else
    echo "Postfix's smtp-sink is not available: using bench/smtp_sink.py (aiosmtpd)."
    export BENCH_SMTP_SINK="aiosmtpd"
    $PY bench/smtp_sink.py "$SMTP_PORT" "$OUT/smtp-count.txt" &
  fi
  PIDS+=($!)
  wait_for_port() {
    for _ in $(seq 1 100); do (: < "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "The SMTP sink did not answer on port $1" >&2
    return 1
  }
  wait_for_port "$SMTP_PORT"
  export EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend
  export EMAIL_HOST=127.0.0.1 EMAIL_PORT="$SMTP_PORT"
  DATABASE_URL="$SMALL_DB" $PY bench/measure.py digests --label small --count-file "$OUT/smtp-count.txt" >/dev/null
  $PY bench/measure.py digests --label big --count-file "$OUT/smtp-count.txt" --profile-sample 200
  cleanup
fi

if [[ "$STEPS" == *" reminders "* ]]; then
  echo "== Reminder scan"
  $PY bench/measure.py reminders --label big --profile
fi

echo "== Report"
$PY bench/measure.py report --command "BENCH_SCALE=$SCALE BENCH_DURATION=$DURATION make bench"
