#!/usr/bin/env bash
# Run uv, installing it with pip first when it is not on the machine.
#   scripts/uv.sh sync --frozen
set -euo pipefail

find_uv() {
  command -v uv 2>/dev/null && return 0
  local user_bin
  user_bin=$(python3 -c 'import site; print(site.USER_BASE)' 2>/dev/null)/bin
  [ -x "$user_bin/uv" ] && { echo "$user_bin/uv"; return 0; }
  [ -x "$HOME/.local/bin/uv" ] && { echo "$HOME/.local/bin/uv"; return 0; }
  local scripts
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)
  [ -x "$scripts/uv" ] && { echo "$scripts/uv"; return 0; }
  return 1
}

if ! uv_bin=$(find_uv); then
  echo "uv is not installed: installing it with pip" >&2
  python3 -m pip install --quiet --user uv >&2 2>/dev/null \
    || python3 -m pip install --quiet uv >&2
  uv_bin=$(find_uv) || { echo "uv was installed but is not on PATH" >&2; exit 1; }
fi
exec "$uv_bin" "$@"
