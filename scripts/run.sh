#!/usr/bin/env bash
# `make run`: set up the embedded default (SQLite in var/, eager tasks, local
# artifacts), load the demo data, make sure there is an admin user, and serve.
# Safe to run again: every step checks before it changes anything.
set -euo pipefail
cd "$(dirname "$0")/.."

ADDR=${ADDR:-127.0.0.1:8000}
# The demo's http target is the app's own /healthz, wherever it is served.
export SITE_URL=${SITE_URL:-http://${ADDR}}
UV=scripts/uv.sh
# Only what the app needs: the test and lint tools come with `make test`/`make lint`.
manage() { "$UV" run --frozen --no-sync python manage.py "$@"; }

step() { printf '\n==> %s\n' "$*"; }

step "Installing dependencies (uv sync --frozen --no-dev --inexact)"
# --inexact: the test and lint tools stay when `make test` installed them before.
"$UV" sync --frozen --no-dev --inexact

step "Migrating the database"
manage migrate --noinput


step "Admin user"
mkdir -p var
password_file=var/admin-password.txt
if [ ! -s "$password_file" ]; then
  (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(12))' >"$password_file")
fi
# The password reaches Django through the environment, never the command line.
ADMIN_PASSWORD=$(cat "$password_file") manage shell --no-imports -c '
import os
from django.contrib.auth import get_user_model

User = get_user_model()
password = os.environ["ADMIN_PASSWORD"]
user = User.objects.filter(username="admin").first()
if user is None:
    User.objects.create_superuser("admin", "admin@example.com", password)
    print("created user admin")
elif user.check_password(password):
    print("user admin exists")
else:
    print("user admin exists with another password (left as it is; "
          "change it with: .venv/bin/python manage.py changepassword admin)")
'

echo
echo "Admin login: http://${ADDR}/admin/  user: admin  password: $(cat "$password_file")"
echo "(the password is kept in ${password_file})"

step "Serving on http://${ADDR}/ (Ctrl-C stops it)"
# --insecure: serve static files from the apps without collectstatic, with DEBUG off.
mkdir -p staticfiles  # WhiteNoise warns when STATIC_ROOT is missing
"$UV" run --frozen --no-sync python manage.py runserver --insecure "$ADDR" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT
trap 'exit 130' INT TERM

# The demo is seeded once the server answers: its health checks probe this very
# server, so they report what it says instead of "connection refused".
python3 - "$SITE_URL/healthz" <<'PY'
import sys, time, urllib.request
for _ in range(240):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=2)
        break
    except OSError:
        time.sleep(0.25)
PY
step "Loading demo data"
manage seed_demo
echo
echo "Admin login: http://${ADDR}/admin/  user: admin  password: $(cat "$password_file")"
echo "Serving on http://${ADDR}/ (Ctrl-C stops it)"
wait "$server"
