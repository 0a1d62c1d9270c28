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

./scripts/e2e-reference-install.sh

trap - ERR
E2E_TARGET=reference exec tests/e2e/node_modules/.bin/node tests/e2e/run.mjs "$@"
