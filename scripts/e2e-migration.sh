#!/usr/bin/env bash
# Account migration between the reference PDS (@atproto/pds) and ours, in
# both directions, with the official client: runs tests/e2e/migration/ with
# E2E_TARGET=both (ours and the reference side by side on one PLC directory,
# one SMTP server). Needs the reference installed: this script installs it
# on first use (scripts/e2e-reference-install.sh). Run on demand (not in CI).
#
# Prints the node:test report and "e2e: N passed, N failed"; exits nonzero
# on any failure. E2E_KEEP=1 keeps both PDSes' data and logs.
set -euo pipefail
cd "$(dirname "$0")/.."

trap 'echo "e2e: 0 passed, 1 failed (setup failed: see above)"' ERR

cargo build -p pds

./scripts/e2e-reference-install.sh

trap - ERR
if [ "$#" -eq 0 ]; then
  set -- tests/e2e/migration/*.test.mjs
fi
E2E_TARGET=both exec tests/e2e/node_modules/.bin/node tests/e2e/run.mjs "$@"
