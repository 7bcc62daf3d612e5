#!/usr/bin/env bash
# Checks that docker-compose.yml parses, as Debian's docker-compose does without an engine.
# Installs Debian's docker-compose package when it is missing (CI machines start without it).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "[check-compose] installing Debian's docker-compose (config needs no engine)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker-compose >/dev/null
fi
docker-compose config -q
echo "[check-compose] docker-compose.yml is valid"
