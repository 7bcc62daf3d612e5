#!/usr/bin/env bash
# Debian's chromium for the browser tests (tests/e2e/test_dashboard.py). Idempotent and quiet
# when already installed; Playwright never downloads a browser of its own here.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "chromium-local: installing Debian's chromium (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null
fi
command -v chromium >/dev/null
