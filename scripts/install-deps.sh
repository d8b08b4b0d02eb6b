#!/usr/bin/env bash
# Installs the Debian packages r1run builds and tests with (run as root or via sudo).
set -euo pipefail
PKGS="build-essential cmake pkg-config libopenblas-dev libvulkan-dev glslang-tools
  mesa-vulkan-drivers libcjson-dev libpcre2-dev libutf8proc-dev libmicrohttpd-dev
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user tmux"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
