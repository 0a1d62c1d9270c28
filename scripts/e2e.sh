#!/usr/bin/env bash
# End-to-end suite against our server: builds the `pds` binary, installs
# the suite's npm packages (tests/e2e) when needed, makes sure the Python
# test peers exist (the SMTP server), and runs every tests/e2e/tests/*.test.mjs
# with the official client (@atproto/api) against `target/debug/pds serve`.
#
# The suite runs on the Node.js pinned in tests/e2e/package.json (the
# `node` package: the @atproto packages need Node >= 22).
#
# Prints the node:test report and a final line "e2e: N passed, N failed";
# exits nonzero on any failure. Arguments, if any, are test files to run
# instead of all of them. E2E_KEEP=1 keeps the run's data, mail and log.
set -euo pipefail
cd "$(dirname "$0")/.."

# A setup step that fails still ends with the count line.
trap 'echo "e2e: 0 passed, 1 failed (setup failed: see above)"' ERR

cargo build -p pds

if [ ! -x tests/e2e/node_modules/.bin/node ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund)
fi
./scripts/python-env.sh

trap - ERR
E2E_TARGET=ours exec tests/e2e/node_modules/.bin/node tests/e2e/run.mjs "$@"
