#!/usr/bin/env bash
# Sets up a fresh clone on a machine with Node 20 and npm: the Debian packages the tests need (when
# apt-get is there; as root or through sudo), pnpm at the version this repository pins, and the
# workspace's dependencies. Run from anywhere:
#
#   bash scripts/setup.sh
#
# It says what it installs and why. Where it cannot install the system packages (no apt-get, or no
# root and no sudo) it lists them and goes on; the tests that need them then fail and name them.
# CI (.ci/run) runs this same script, so the README's set-up is what CI proves.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")

# Debian package, and what needs it.
DEBIAN_PACKAGES=(
  "dataset-fashion-mnist|Fashion-MNIST under /usr/share/datasets: the datasets package's loader is tested on it"
  "chromium|headless Chromium: the browser example, the packed-packages browser test and the HTML report are tested in it"
  "libegl1|Mesa EGL, for WebGPU in Node on Dawn's OpenGL path (no GPU needed)"
  "libegl-mesa0|Mesa EGL, for WebGPU in Node on Dawn's OpenGL path"
  "libgl1-mesa-dri|Mesa's software rasteriser (llvmpipe), for WebGPU in Node without a GPU"
  "libegl-dev|the unversioned libEGL.so that Dawn opens"
)

echo "--- Node $(node --version), npm $(npm --version)"
node -e "process.exit(Number(process.versions.node.split('.')[0]) >= 20 ? 0 : 1)" || {
  echo "fineprune needs Node.js 20 or later." >&2
  exit 1
}

echo "--- Debian packages the tests need"
missing=()
for entry in "${DEBIAN_PACKAGES[@]}"; do
  package=${entry%%|*}
  if command -v dpkg-query >/dev/null 2>&1 &&
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    echo "  $package: installed"
  else
    echo "  $package: missing (${entry#*|})"
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = "0" ] || [ -n "$sudo" ]; }; then
    echo "  installing with ${sudo:+sudo }apt-get: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    echo "  installed: ${missing[*]}"
  else
    echo "  Cannot install them here (this needs apt-get and root or sudo). Install them yourself:"
    echo "    Debian/Ubuntu: sudo apt-get install ${missing[*]}"
    echo "    elsewhere: a Chromium at /usr/bin/chromium (or set CHROMIUM_PATH) and Fashion-MNIST's four"
    echo "    IDX .gz files in /usr/share/datasets/fashion-mnist; the WebGPU-in-Node tests need Mesa's EGL."
  fi
fi

echo "--- pnpm ${PNPM_VERSION}"
if [ "$(pnpm --version 2>/dev/null || true)" = "${PNPM_VERSION}" ]; then
  echo "  already installed"
else
  echo "  installing with npm install -g pnpm@${PNPM_VERSION}"
  npm install -g --no-audit --no-fund "pnpm@${PNPM_VERSION}"
fi

echo "--- workspace dependencies (pnpm install --frozen-lockfile)"
pnpm install --frozen-lockfile

echo "--- set-up done: now 'pnpm start' (the main job) and 'pnpm test' (every package's tests)"
