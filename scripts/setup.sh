#!/usr/bin/env bash
# Installs the Debian packages dtrain needs, only those that are missing.
# Idempotent: when everything is present it calls no apt-get at all.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ make pkg-config
  libtorch-dev python3-torch libopenblas-dev
  libgloo-dev libopenmpi-dev openmpi-bin
  libzmq3-dev cppzmq-dev libssl-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev
  dataset-fashion-mnist iproute2
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing missing Debian packages: ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
