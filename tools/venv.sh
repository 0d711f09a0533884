#!/usr/bin/env bash
# Make ./.venv ready: the pinned stack from settings.ini, this checkout installed editable, and a
# Jupyter kernel registered inside the environment. Idempotent: on an up-to-date environment it
# installs nothing.
#
# The stack (~7 GB, ~3.5 min) lives outside the clone, keyed by the hash of what it is built from,
# under $WORKBENCH_ENVS (default ~/.cache/workbench/envs); ./.venv is a link to it. It is built from
# tools/requirements.lock, every package of the resolved environment at an exact version (second-level
# dependencies included), so two machines with the same key get the same packages. The lock records
# the hash of the pins it was made from; when settings.ini's pins change, the stale lock is ignored
# (with a warning), the pins are resolved as before, and tools/lock.sh writes a fresh lock to commit.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
ENVS=${WORKBENCH_ENVS:-$HOME/.cache/workbench/envs}

reqs=$("$PY" - <<'PY'
from configparser import ConfigParser
c = ConfigParser(delimiters=["="]); c.read("settings.ini")
d = c["DEFAULT"]
print("\n".join(d["requirements"].split() + d["dev_requirements"].split()))
PY
)
pins=$(echo "$reqs" | sha256sum | cut -c1-16)
lock=tools/requirements.lock
if [ -f "$lock" ] && grep -qx "# pins: $pins" "$lock"; then
  source_file=$lock; install=(--no-deps -r requirements.lock)   # exactly the locked set, nothing resolved
else
  [ -f "$lock" ] && echo "venv: $lock was made from other pins than settings.ini's: resolving the pins (run tools/lock.sh and commit the lock)" >&2
  source_file=""; install=(-r requirements.txt)
fi
key=$( { "$PY" -c 'import sys; print(sys.version)'; echo "$reqs"; if [ -n "$source_file" ]; then cat "$source_file"; fi; } |
      sha256sum | cut -c1-16)
env="$ENVS/$key"
mkdir -p "$ENVS"

(
  flock 9
  if [ ! -f "$env/.complete" ]; then
    echo "venv: building the pinned stack in $env (first time for these pins: a few minutes)"
    rm -rf "$env"
    "$PY" -m venv "$env"
    quiet() { grep -v 'is ignored: it is neither a file nor a directory' >&2 || true; }  # pip's notes on this machine's index config
    "$env/bin/python" -m pip install -q --upgrade pip 2> >(quiet)
    echo "$reqs" > "$env/requirements.txt"
    [ -n "$source_file" ] && cp "$source_file" "$env/requirements.lock"
    (cd "$env" && "$env/bin/python" -m pip install -q "${install[@]}" 2> >(quiet))     # files copied into $env
    "$env/bin/python" -m ipykernel install --sys-prefix --name workbench --display-name "Python (workbench)" >/dev/null
    touch "$env/.complete"
  fi
) 9>"$ENVS/.lock-$key"

if [ -e .venv ] && [ ! -L .venv ]; then rm -rf .venv; fi
[ "$(readlink .venv 2>/dev/null)" = "$env" ] || ln -sfn "$env" .venv

# This checkout, editable. Re-pointed when another clone (CI's, say) last installed it,
# or when the package metadata changed.
stamp="$PWD $(cat settings.ini setup.py pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)"
if [ "$(cat "$env/.workbench-src" 2>/dev/null)" != "$stamp" ]; then
  ( flock 9
    log=$("$env/bin/python" -m pip install -q --no-deps --no-build-isolation -e . 2>&1) || { echo "$log" >&2; exit 1; }
    echo "$stamp" > "$env/.workbench-src"
  ) 9>"$ENVS/.lock-$key"
fi
