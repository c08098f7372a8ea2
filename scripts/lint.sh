#!/usr/bin/env bash
# Source checks that need no build: formatting (.clang-format) and a short
# list of banned calls (unbounded copies and unchecked conversions).
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's C files, found the same way with or without git (a fresh
# machine has none): build trees, installed npm packages (which ship C
# sources of their own) and test output are not ours.
files=$(find . \( -path './build*' -o -path ./.git -o -path ./tests/out \
  -o -path ./data -o -name node_modules \) -prune -o -name '*.[ch]' -print |
  sort)
[ -n "$files" ] || { echo "lint: no C files found" >&2; exit 1; }
fail=0
if ! clang-format --dry-run --Werror $files 2>/tmp/ts-format.$$; then
  echo "lint: files differ from .clang-format (run: clang-format -i <file>):"
  grep -o '^[^:]*\.[ch]' /tmp/ts-format.$$ | sort -u | sed 's/^/  /'
  fail=1
fi
rm -f /tmp/ts-format.$$
# strcpy/sprintf/strtok/atoi/gets: unbounded or unchecked; use snprintf,
# memcpy with a length, strtok_r, strtol with end checks.
if grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|gets)\s*\(' $files \
    | grep -v '^\./fuzz/' ; then
  echo "lint: banned calls above"
  fail=1
fi
[ $fail -eq 0 ] && echo "lint: ok"
exit $fail
