#!/usr/bin/env bash
# Write tools/requirements.lock: every package of the environment resolved from settings.ini's pins, at its
# exact version, headed by the hash of those pins (tools/venv.sh installs from the lock while that hash matches).
# Run after changing a pin: it builds the environment from the pins (ignoring the old lock), then freezes it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
reqs=$("$PY" - <<'PY'
from configparser import ConfigParser
c = ConfigParser(delimiters=["="]); c.read("settings.ini")
d = c["DEFAULT"]
print("\n".join(d["requirements"].split() + d["dev_requirements"].split()))
PY
)
pins=$(echo "$reqs" | sha256sum | cut -c1-16)
mv -f tools/requirements.lock tools/requirements.lock.old 2>/dev/null || true
trap '[ -f tools/requirements.lock ] || mv -f tools/requirements.lock.old tools/requirements.lock 2>/dev/null || true' EXIT
bash tools/venv.sh
{ echo "# The resolved environment of settings.ini's pins, written by tools/lock.sh; tools/venv.sh installs it."
  echo "# pins: $pins"
  echo "# python: $(.venv/bin/python -c 'import platform; print(platform.python_version())')"
  .venv/bin/python -m pip freeze --all --exclude-editable | grep -v '^-e ' ; } > tools/requirements.lock.new
mv tools/requirements.lock.new tools/requirements.lock
rm -f tools/requirements.lock.old
echo "lock: $(grep -vc '^#' tools/requirements.lock) packages in tools/requirements.lock"
