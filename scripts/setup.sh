#!/usr/bin/env bash
# Installs what nla needs on a fresh Debian bookworm machine without a GPU:
# Mesa's lavapipe (software Vulkan) from bookworm-backports, because bookworm's own Mesa 22
# is too old for Dawn; then npm dependencies; then makes stories260K.bin and tok512.bin present
# (or fails saying how to provide them). Idempotent, and quick when all is there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

mesa_ok() {
  # lavapipe's ICD file plus a Mesa >= 23 (Dawn rejects 22's Vulkan 1.3 gaps).
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 23 && dpkg -s libvulkan1 >/dev/null 2>&1
}

if [ "${NLA_SKIP_MESA:-0}" != 1 ] && ! mesa_ok; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "setup: a GPU driver is present; skipping lavapipe"
  else
    echo "setup: installing Mesa lavapipe from bookworm-backports"
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/nla-backports.list >/dev/null
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports \
      mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
fi

# The viewer's tests drive Debian's chromium through playwright-core, which never downloads a browser.
if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing chromium (for the viewer's browser tests)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# Dawn's Vulkan loader wants a runtime dir; harmless when it exists already.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
# npm ci also builds dist/ (the `prepare` script, as a git install does); tests and the CLI run from source via tsx.

# The models the tests and the demo run on, found by the lookup users get (NLA_MODELS, the
# cache, ../shared/models; the latter copied into the cache), else downloaded with their sha256
# checked. Without them this fails naming the files and the ways to provide them, unless
# NLA_ALLOW_MISSING_MODELS=1 (then the tests that need them skip, and say so).
if ! node --import tsx scripts/models.ts; then
  if [ "${NLA_ALLOW_MISSING_MODELS:-0}" = 1 ]; then
    echo "setup: continuing without the models (NLA_ALLOW_MISSING_MODELS=1)"
  else
    exit 1
  fi
fi
echo "setup: ok"
