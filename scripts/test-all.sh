#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, every Rust test (unit,
# protocol test vectors, cross-implementation checks against the reference
# TypeScript implementation), documentation, and a bounded fuzzing pass.
#
# Needs: the Rust toolchain, Node.js with npm, and the shared test vectors
# beside the checkout (../shared, or ATPROTO_INTEROP_TESTS / MST_TEST_SUITE).
# Set FUZZ_SECONDS=0 to skip the fuzzing pass (default: 20 s per target).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT

step "reference implementation packages (tests/interop)"
if [ ! -d tests/interop/node_modules ] || [ tests/interop/package-lock.json -nt tests/interop/node_modules ]; then
  (cd tests/interop && npm ci --no-audit --no-fund)
fi

step "python test peers (tests/python: aiosmtpd, moto)"
./scripts/python-env.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test"
# Tests print what they ran; the summary below adds up every test binary.
set +e
cargo test --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

step "end-to-end suite: the official client against our pds (scripts/e2e.sh)"
# Its last line, "e2e: N passed, N failed", counts in the summary below.
set +e
./scripts/e2e.sh 2>&1 | tee -a "$log"
e2e_status=${PIPESTATUS[0]}
set -e

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

if [ "${FUZZ_SECONDS:-20}" != "0" ]; then
  step "fuzz targets, ${FUZZ_SECONDS:-20} s each"
  scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-20}"
fi

step "summary"
grep -h '^interop vectors:' "$log" | sort || true
passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
ignored=$(grep -Eo '[0-9]+ ignored;' "$log" | awk '{s+=$1} END {print s+0}')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
e2e_line=$(grep -Eo '^e2e: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 || true)
e2e_passed=$(echo "$e2e_line" | awk '{print $2+0}')
e2e_failed=$(echo "$e2e_line" | awk '{print $4+0}')
if [ "$e2e_status" -ne 0 ] && [ "$e2e_failed" -eq 0 ]; then e2e_failed=1; fi
echo "e2e: $e2e_passed passed, $e2e_failed failed"
passed=$((passed + e2e_passed))
failed=$((failed + e2e_failed))
if [ "$status" -eq 0 ] && [ "$e2e_status" -ne 0 ]; then status=$e2e_status; fi
echo "tests: $passed passed, $failed failed, $ignored skipped"
exit "$status"
