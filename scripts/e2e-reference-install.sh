#!/usr/bin/env bash
# Installs what the end-to-end runs against the reference PDS need, on first
# use or when a lock file changed: the suite's node packages
# (tests/e2e), the reference PDS (tests/e2e/reference, @atproto/pds) with
# better-sqlite3 compiled for the Node.js pinned in tests/e2e/package.json
# (the reference needs Node >= 22; the headers come with that Node), and
# the Python test peers. Used by scripts/e2e-reference.sh and
# scripts/e2e-migration.sh; exits nonzero when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

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
