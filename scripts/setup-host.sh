#!/usr/bin/env bash
# Install the Debian packages pvgen needs (idempotent; run as root on Debian 12). Prints what it installs.
set -euo pipefail
pkgs=(linux-source-6.1 linux-headers-amd64 build-essential gcc binutils make bc flex bison libelf-dev libssl-dev
      kmod xz-utils valgrind python3-venv qemu-system-x86 busybox-static clang)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup: missing Debian packages: ${missing[*]}; run 'make' as root or install them with apt-get" >&2
  exit 2
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
