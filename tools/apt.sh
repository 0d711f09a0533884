#!/usr/bin/env bash
# Install Debian packages the tests need, when their binaries are missing (as root, or with sudo).
set -euo pipefail
missing=()
for pkg in "$@"; do command -v "$pkg" >/dev/null || dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "apt: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
