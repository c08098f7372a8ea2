#!/usr/bin/env bash
# Source checks that need no build: formatting (.clang-format) and a short
# list of banned calls (unbounded copies and unchecked conversions).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
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
    | grep -v '^fuzz/' ; then
  echo "lint: banned calls above"
  fail=1
fi
[ $fail -eq 0 ] && echo "lint: ok"
exit $fail
