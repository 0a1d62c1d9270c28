#!/usr/bin/env bash
# Account migration between the reference PDS (@atproto/pds) and ours, in
# both directions, with the official client: runs tests/e2e/migration/ with
# E2E_TARGET=both (ours and the reference side by side on one PLC directory,
# one SMTP server). Needs the reference installed: this script installs it
# on first use as scripts/e2e-reference.sh does. Run on demand (not in CI).
#
# Prints the node:test report and "e2e: N passed, N failed"; exits nonzero
# on any failure. E2E_KEEP=1 keeps both PDSes' data and logs.
set -euo pipefail
cd "$(dirname "$0")/.."

trap 'echo "e2e: 0 passed, 1 failed (setup failed: see above)"' ERR

cargo build -p pds

if [ ! -x tests/e2e/node_modules/.bin/node ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund)
fi

ref=tests/e2e/reference
stamp=$ref/node_modules/.e2e-built
if [ ! -f "$stamp" ] || [ $ref/package-lock.json -nt "$stamp" ]; then
  (cd $ref && npm ci --no-audit --no-fund)
  # the Node.js distribution the `node` package brought (binary and headers)
  header=$(find tests/e2e/node_modules/node -path '*/include/node/node_api.h' | head -n 1)
  node22=$(cd "$(dirname "$header")/../.." && pwd)
  (cd $ref && PATH="$node22/bin:$PATH" npm_config_nodedir="$node22" npm rebuild better-sqlite3)
  (cd $ref && ../node_modules/.bin/node -e "new (require('better-sqlite3'))(':memory:').close()")
  touch "$stamp"
fi
./scripts/python-env.sh

trap - ERR
if [ "$#" -eq 0 ]; then
  set -- tests/e2e/migration/*.test.mjs
fi
E2E_TARGET=both exec tests/e2e/node_modules/.bin/node tests/e2e/run.mjs "$@"
