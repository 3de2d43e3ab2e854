#!/usr/bin/env bash
# What the editor tests need on a fresh machine, idempotent: Debian's Neovim (tests/e2e/test_neovim.py),
# the extension's npm packages (lint, typecheck, unit tests, .vsix), and code-server + Chromium +
# playwright-core for the VS Code end-to-end tests (cached in .cache/code-server).
set -euo pipefail
CLIENT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v nvim >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "install Neovim: sudo apt-get install -y neovim" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends neovim >&2 || { apt-get update >&2 && apt-get install -y --no-install-recommends neovim >&2; }
fi

npm_ci() {  # only when node_modules is missing or older than the lock file
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci "$CLIENT"
npm_ci "$CLIENT/e2e"
"$CLIENT/e2e/install-code-server.sh" >/dev/null
