#!/usr/bin/env bash
# Installs what the tests need beyond the build: Node.js + npm for the test
# tools pinned in tests/tools (dynalite, a DynamoDB-compatible server;
# kinesalite, a Kinesis-compatible one, pure JS without --path; the
# Redocly CLI; ajv; playwright-core), Debian's chromium for the dashboard
# test, the sqlite3 shell, clang-format, clang with libFuzzer for the fuzz
# targets, nginx for the local stack (deploy/local-stack.sh) and patch for
# the mutation runner (scripts/mutate.sh). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v clang-format >/dev/null 2>&1 || missing+=(clang-format)
command -v clang >/dev/null 2>&1 || missing+=(clang)
dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q 'install ok installed' || missing+=(libclang-rt-14-dev)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v patch >/dev/null 2>&1 || missing+=(patch)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  # nginx is for deploy/local-stack.sh, which runs its own instance on a
  # loopback port: Debian's package must not start (or fail to start, with
  # port 80 taken) a system-wide one. A policy-rc.d of our own says no to
  # service starts during this install only.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# tourney-stats install-test-deps.sh: no service starts\nexit 101\n' |
      $sudo_cmd tee "$guard" >/dev/null
    $sudo_cmd chmod 0755 "$guard"
  fi
  rc=0
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
  [ -z "$guard" ] || $sudo_cmd rm -f "$guard"
  [ $rc -eq 0 ] || exit $rc
fi
# npm ci installs exactly the lockfile's versions; with the npm cache warm
# it takes seconds.
(cd tests/tools && npm ci --no-audit --no-fund --loglevel=error)
