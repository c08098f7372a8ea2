#!/usr/bin/env bash
# Installs what building and testing tourney-stats needs on Debian 12.
# Idempotent: packages already present are left as they are.
set -euo pipefail
pkgs=(build-essential cmake pkg-config curl ca-certificates
      libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libssl-dev
      libcunit1-dev libsqlite3-dev zlib1g-dev sqlite3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
