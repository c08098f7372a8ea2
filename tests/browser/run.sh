#!/usr/bin/env bash
# Runs the dashboard browser test from the repository root.
# env: TS_TEST_BIN (the binary under test, default build/tourney-stats),
#      TS_TEST_OUT (where dashboard.png goes, default tests/out/browser/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec node tests/browser/dashboard.test.mjs "$@"
