#!/usr/bin/env bash
# Make sure PostgreSQL and Redis run on 127.0.0.1 (as they do on the CI machine),
# starting them when they do not, and wait until both answer.
set -euo pipefail

wait_for() {  # wait_for WHAT COMMAND...: up to 30 s
  local what=$1; shift
  for _ in $(seq 60); do
    "$@" >/dev/null 2>&1 && { echo "$what is ready"; return 0; }
    sleep 0.5
  done
  echo "$what did not answer within 30 s" >&2
  return 1
}

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
# shellcheck disable=SC2016  # expanded by the inner sh
wait_for Redis sh -c '[ "$(redis-cli -h 127.0.0.1 -p 6379 ping)" = PONG ]'

# The tests use the database "test" as a target (pytest-django makes its own, test_test).
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" \
  | grep -q 1; then
  echo "creating database test"
  createdb -h 127.0.0.1 -U postgres test
fi
