#!/usr/bin/env bash
# The same end-to-end suite as scripts/e2e.sh, against the reference PDS
# (@atproto/pds, pinned in tests/e2e/reference/package.json and installed
# here on first use) instead of ours: shows that the suite itself asks the
# right questions.
#
# The reference runs on the Node.js pinned in tests/e2e/package.json (it
# needs Node >= 22); better-sqlite3 is compiled for that Node, with the
# headers that come with it.
# Prints "e2e: N passed, N failed"; exits nonzero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# A setup step that fails still ends with the count line.
trap 'echo "e2e: 0 passed, 1 failed (setup failed: see above)"' ERR

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
E2E_TARGET=reference exec tests/e2e/node_modules/.bin/node tests/e2e/run.mjs "$@"
