#!/usr/bin/env bash
# Make ./.venv ready: the pinned stack from settings.ini, this checkout installed editable, and a
# Jupyter kernel registered inside the environment. Idempotent: on an up-to-date environment it
# installs nothing.
#
# The stack (~7 GB, ~3.5 min) lives outside the clone, keyed by the hash of the pins, under
# $WORKBENCH_ENVS (default ~/.cache/workbench/envs); ./.venv is a link to it. A change of pins
# builds a new environment; a machine without one builds from scratch, as a newcomer's would.
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
key=$( { "$PY" -c 'import sys; print(sys.version)'; echo "$reqs"; } | sha256sum | cut -c1-16)
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
    "$env/bin/python" -m pip install -q -r "$env/requirements.txt" 2> >(quiet)
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
