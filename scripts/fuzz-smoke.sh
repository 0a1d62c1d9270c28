#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/fuzz_targets for a bounded time and
# fails if any target cannot be built or finds a crash.
#
#   scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]     (default 20)
#
# With the seven targets (one or more per library crate) the default is
# about 140 s of fuzzing after the build; keep the total under CI's budget
# of about three minutes (15 s per target if targets are added).
# Works with the stable toolchain: cargo-fuzz passes flags that rustc only
# accepts on nightly, so RUSTC_BOOTSTRAP=1 is set for these builds. Installs
# cargo-fuzz if it is missing. FUZZ_SANITIZER=none|address|... picks the
# sanitizer (default: address). Crashing inputs are kept in
# fuzz/artifacts/<target>/; the corpus grows in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
case "$seconds" in
  ''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

targets=()
for file in fuzz/fuzz_targets/*.rs; do
  targets+=("$(basename "$file" .rs)")
done
if [ "${#targets[@]}" -eq 0 ]; then
  echo "no fuzz targets found in fuzz/fuzz_targets" >&2
  exit 1
fi

echo "==> building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
(cd fuzz && cargo fuzz build --sanitizer "$sanitizer")

failed=()
for name in "${targets[@]}"; do
  echo "==> fuzzing $name for ${seconds}s"
  mkdir -p "fuzz/corpus/$name" "fuzz/artifacts/$name"
  if (cd fuzz && cargo fuzz run --sanitizer "$sanitizer" "$name" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1); then
    echo "    $name: no crash"
  else
    echo "    $name: FAILED (see fuzz/artifacts/$name/)" >&2
    failed+=("$name")
  fi
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzz targets with crashes: ${failed[*]}" >&2
  exit 1
fi
echo "all ${#targets[@]} fuzz targets ran ${seconds}s each without a crash"
