#!/usr/bin/env bash
# Headless Chromium for tests/test_results_page.py (results/index.html in a real browser),
# which fails under CI=true without it (a laptop without chromium skips it). Debian's package
# `chromium`. Idempotent. Needs root (or passwordless sudo) and Debian/Ubuntu apt.
set -euo pipefail
say() { echo "browser-setup: $*"; }
for c in chromium chromium-browser; do
    if command -v "$c" >/dev/null; then
        say "$(command -v "$c") already installed"
        exit 0
    fi
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "browser-setup: needs root or sudo" >&2; exit 1; }
    SUDO="sudo -n"
fi
say "installing chromium (apt)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null || { echo "browser-setup: chromium installed but not on PATH" >&2; exit 1; }
say "$(command -v chromium)"
