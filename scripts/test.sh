#!/usr/bin/env bash
# `make test`: the whole pytest suite in two configurations.
#   1. embedded default: SQLite, eager Celery, artifacts on the local filesystem;
#   2. services: PostgreSQL, Redis (broker + a real worker) and an S3 server (moto),
#      when PostgreSQL and Redis answer on 127.0.0.1, and always under CI=true.
# Extra arguments go to pytest:  scripts/test.sh -k ingest
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

UV=scripts/uv.sh
IN_CI=false
case "${CI:-}" in 1 | true | TRUE | True | yes) IN_CI=true ;; esac

PG_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
BUCKET=ir-artifacts-test

# Variables that select a real service; the embedded run must see none of them.
SERVICE_VARS=(DATABASE_URL REDIS_URL CELERY_BROKER_URL CELERY_RESULT_BACKEND
  BUCKET_NAME AWS_ENDPOINT_URL_S3 AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
  AWS_S3_ADDRESSING_STYLE)

"$UV" sync --frozen --quiet || exit 1
PY=.venv/bin/python

header() {
  printf '\n%s\n== %s\n%s\n' "======================================================================" \
    "$*" "======================================================================"
}

# pytest, with "no tests collected" (exit 5) counted as a failure.
run_pytest() {
  local rc=0
  "$@" -q -p no:cacheprovider "${PYTEST_ARGS[@]}" || rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: counted as a failure" >&2
    rc=1
  fi
  return "$rc"
}

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

PYTEST_ARGS=("$@")
results=()
status=0

# --- 1. embedded default -------------------------------------------------------
header "pytest: embedded default (SQLite, eager tasks, local artifacts)"
[ -f .env ] && echo "note: .env exists; settings.py reads it, so it may set services here too"
unset_args=()
for v in "${SERVICE_VARS[@]}"; do unset_args+=(-u "$v"); done
rc=0
run_pytest env "${unset_args[@]}" "$UV" run --frozen --no-sync pytest || rc=$?
results+=("embedded default: $([ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)")")
[ $rc -eq 0 ] || status=1

# --- 2. real services ----------------------------------------------------------
if $IN_CI || { answers 127.0.0.1 5432 && answers 127.0.0.1 6379; }; then
  header "pytest: services (PostgreSQL ${PG_URL##*@}, Redis ${TEST_REDIS_URL#redis://}, S3 server)"
  moto_pid=""
  stop_moto() {
    if [ -n "$moto_pid" ] && kill -0 "$moto_pid" 2>/dev/null; then
      kill "$moto_pid" 2>/dev/null
      wait "$moto_pid" 2>/dev/null
      echo "S3 server (pid $moto_pid) stopped"
    fi
    moto_pid=""
  }
  trap stop_moto EXIT
  trap 'exit 130' INT TERM

  rc=0
  mkdir -p var
  port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # moto's S3 app with keep-alive, as the tests' own fixture serves it (testing/s3_server.py).
  "$PY" -m testing.s3_server --host 127.0.0.1 --port "$port" >var/moto-test.log 2>&1 &
  moto_pid=$!
  for _ in $(seq 100); do
    answers 127.0.0.1 "$port" && break
    kill -0 "$moto_pid" 2>/dev/null || break
    sleep 0.2
  done
  if ! answers 127.0.0.1 "$port"; then
    echo "the S3 server did not start; see var/moto-test.log" >&2
    rc=1
  else
    echo "S3 server (moto, pid $moto_pid) on http://127.0.0.1:$port"
    # Our own Redis database: empty it so no task from an earlier run is left queued.
    "$PY" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1]).flushdb()' "$TEST_REDIS_URL" \
      || echo "warning: could not empty $TEST_REDIS_URL" >&2
    run_pytest env "${unset_args[@]}" \
      DATABASE_URL="$PG_URL" \
      REDIS_URL="$TEST_REDIS_URL" \
      BUCKET_NAME="$BUCKET" \
      AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port" \
      AWS_ACCESS_KEY_ID=testing \
      AWS_SECRET_ACCESS_KEY=testing \
      AWS_REGION=us-east-1 \
      AWS_S3_ADDRESSING_STYLE=path \
      "$UV" run --frozen --no-sync pytest || rc=$?
  fi
  stop_moto
  results+=("services: $([ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)")")
  [ $rc -eq 0 ] || status=1
else
  results+=("services: not run (PostgreSQL 127.0.0.1:5432 and Redis 127.0.0.1:6379 do not both answer)")
fi

header "summary"
printf '%s\n' "${results[@]}"
exit "$status"
