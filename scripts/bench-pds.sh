#!/usr/bin/env bash
# Runs the same load against our PDS and the reference PDS (@atproto/pds),
# one after the other on this machine, and writes the "PDS under load"
# section of docs/benchmarks.md (the other sections are kept).
#
#   scripts/bench-pds.sh                 build, run both, write the section
#   scripts/bench-pds.sh --report-only   rewrite the section from the last
#                                        run (target/bench-pds/)
#
# Environment:
#   BENCH_DURATION       seconds per timed scenario (default 10)
#   BENCH_CONCURRENCY    concurrent requests (default 8)
#   BENCH_REPO_RECORDS   records in the getRepo repository (default 100000)
#   BENCH_FILL_SECONDS   cap on filling that repository (default 150)
#   BENCH_MANY_ACCOUNTS  accounts created for the memory figure (ours only;
#                        default 10000, capped by BENCH_ACCOUNTS_SECONDS)
#   BENCH_ACCOUNTS_SECONDS  cap on creating them (default 420: 10,000
#                        accounts at 24/s, the rate of a busy 2-CPU machine)
#   BENCH_PDS_OUT        the file to write (default docs/benchmarks.md)
#   BENCH_PDS_WORK       where the servers keep their data and the results
#                        (default target/bench-pds; its file system is named
#                        in the report: on tmpfs an fsync costs nothing)
#   BENCH_NO_BUILD=1     use the binaries already in target/release
#   BENCH_SKIP_REFERENCE=1  run ours only (the report keeps the reference's
#                        figures of the last run, if any)
#
# Needs the Rust toolchain and Node.js; installs tests/e2e (Node 22 and the
# PLC directory) and tests/e2e/reference (@atproto/pds) on first use, like
# scripts/e2e-reference.sh. The load average is recorded before, between
# and after the two sides: figures from a busy machine say so.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${BENCH_DURATION:-10}
CONCURRENCY=${BENCH_CONCURRENCY:-8}
REPO_RECORDS=${BENCH_REPO_RECORDS:-100000}
FILL_SECONDS=${BENCH_FILL_SECONDS:-150}
MANY_ACCOUNTS=${BENCH_MANY_ACCOUNTS:-10000}
ACCOUNTS_SECONDS=${BENCH_ACCOUNTS_SECONDS:-420}
target_dir=${CARGO_TARGET_DIR:-target}
work=${BENCH_PDS_WORK:-$target_dir/bench-pds}
results="$work/results.jsonl"
out=${BENCH_PDS_OUT:-docs/benchmarks.md}
node22=tests/e2e/node_modules/.bin/node

# step, load, wait_ready, stop
. scripts/bench-lib.sh

# Processes started here, stopped on exit (by their pid only).
pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

free_port() {
  "$node22" -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# The environment both servers read (reference-style PDS_* variables).
server_env() {
  local port=$1 dir=$2
  echo "PDS_HOSTNAME=localhost PDS_PORT=$port PDS_DATA_DIRECTORY=$dir"
  echo "PDS_BLOBSTORE_DISK_LOCATION=$dir/blocks PDS_DEV_MODE=true"
  echo "PDS_INVITE_REQUIRED=false PDS_SERVICE_HANDLE_DOMAINS=.test"
  echo "PDS_RATE_LIMITS_ENABLED=false PDS_ADMIN_PASSWORD=bench-admin"
  echo "PDS_JWT_SECRET=$(openssl rand -hex 16)"
  echo "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX=$(openssl rand -hex 32)"
}

# The timed scenarios, run on both servers.
scenarios=idle,create-one,create-many,apply-writes,get-record,list-records,upload-blob,create-account,firehose,get-repo

# Runs the load generator against one server; $1 label, $2 url, $3 pid,
# $4 scenarios.
run_load() {
  "$target_dir/release/pds-load" --url "$2" --target "$1" --pid "$3" \
    --scenario "$4" --duration "$DURATION" --concurrency "$CONCURRENCY" \
    --repo-records "$REPO_RECORDS" --fill-seconds "$FILL_SECONDS" \
    --json-out "$results"
}

if [ "${1:-}" != "--report-only" ]; then
  mkdir -p "$work/tmp"
  # both servers' temporary files (blob uploads) next to their data
  export TMPDIR="$PWD/$work/tmp"
  case "$work" in /*) TMPDIR="$work/tmp" ;; esac
  if [ "${BENCH_NO_BUILD:-}" != 1 ]; then
    step "building ours (release): pds and pds-load"
    cargo build --release -p pds -p atp-benches --bin pds --bin pds-load
  fi

  if [ ! -x "$node22" ]; then
    (cd tests/e2e && npm ci --no-audit --no-fund)
  fi
  ref=tests/e2e/reference
  stamp=$ref/node_modules/.e2e-built
  if [ "${BENCH_SKIP_REFERENCE:-}" != 1 ] && { [ ! -f "$stamp" ] || [ $ref/package-lock.json -nt "$stamp" ]; }; then
    step "installing the reference PDS"
    (cd $ref && npm ci --no-audit --no-fund)
    header=$(find tests/e2e/node_modules/node -path '*/include/node/node_api.h' | head -n 1)
    nodedir=$(cd "$(dirname "$header")/../.." && pwd)
    (cd $ref && PATH="$nodedir/bin:$PATH" npm_config_nodedir="$nodedir" npm rebuild better-sqlite3)
    touch "$stamp"
  fi

  # Keep the reference's lines of the last run when it is skipped.
  if [ "${BENCH_SKIP_REFERENCE:-}" = 1 ] && [ -f "$results" ]; then
    grep '"target":"reference"' "$results" >"$results.keep" || true
    mv "$results.keep" "$results"
  else
    rm -f "$results"
  fi
  load_before=$(load)

  # --- ours: the embedded PLC directory (SQLite, in process) ---
  step "ours: starting (load average $load_before)"
  rm -rf "$work/ours" && mkdir -p "$work/ours"
  port=$(free_port)
  # shellcheck disable=SC2046
  env $(server_env "$port" "$work/ours/data") RUST_LOG=warn NO_COLOR=1 \
    "$target_dir/release/pds" serve >"$work/ours/log" 2>&1 &
  ours_pid=$!
  pids+=("$ours_pid")
  wait_ready "http://127.0.0.1:$port" 60 "$ours_pid"
  run_load ours "http://127.0.0.1:$port" "$ours_pid" "$scenarios"
  step "ours: many accounts (up to $MANY_ACCOUNTS, $ACCOUNTS_SECONDS s)"
  "$target_dir/release/pds-load" --url "http://127.0.0.1:$port" --target ours \
    --pid "$ours_pid" --scenario many-accounts --many-accounts "$MANY_ACCOUNTS" \
    --fill-seconds "$ACCOUNTS_SECONDS" --concurrency "$CONCURRENCY" --json-out "$results"
  # idle again: what the server keeps once the load is over
  sleep 5
  "$target_dir/release/pds-load" --url "http://127.0.0.1:$port" --target ours \
    --pid "$ours_pid" --scenario idle --json-out "$results" 2>/dev/null
  stop "$ours_pid"
  rm -rf "$work/ours/data"
  load_middle=$(load)

  if [ "${BENCH_SKIP_REFERENCE:-}" != 1 ]; then
    # --- the reference: the PLC directory of tests/e2e (in memory) ---
    step "reference: starting the PLC directory and @atproto/pds (load average $load_middle)"
    rm -rf "$work/reference" && mkdir -p "$work/reference/data/blocks"
    (cd tests/e2e && exec node_modules/.bin/node --input-type=module -e "
      import { startPlc } from './lib/servers.mjs'
      const plc = await startPlc()
      console.log(plc.url)
      process.on('SIGTERM', async () => { await plc.stop(); process.exit(0) })
    ") >"$work/reference/plc-url" 2>"$work/reference/plc-log" &
    plc_pid=$!
    pids+=("$plc_pid")
    for _ in $(seq 100); do [ -s "$work/reference/plc-url" ] && break; sleep 0.1; done
    plc_url=$(head -n1 "$work/reference/plc-url")
    port=$(free_port)
    refdata="$PWD/$work/reference/data"
    case "$work" in /*) refdata="$work/reference/data" ;; esac
    # shellcheck disable=SC2046
    env $(server_env "$port" "$refdata") PDS_DID_PLC_URL="$plc_url" \
      LOG_ENABLED=false "$node22" tests/e2e/reference/launch.mjs >"$work/reference/log" 2>&1 &
    ref_pid=$!
    pids+=("$ref_pid")
    wait_ready "http://127.0.0.1:$port" 90 "$ref_pid"
    run_load reference "http://127.0.0.1:$port" "$ref_pid" "$scenarios"
    stop "$ref_pid"
    stop "$plc_pid"
    rm -rf "$work/reference/data"
  fi
  load_after=$(load)
  printf '%s\n%s\n%s\n' "$load_before" "$load_middle" "$load_after" >"$work/load.txt"
fi

for f in "$results" "$work/load.txt"; do
  [ -f "$f" ] || { echo "missing $f: run scripts/bench-pds.sh without --report-only" >&2; exit 1; }
done

step "writing the 'PDS under load' section of $out"
export BENCH_RESULTS="$results"
export BENCH_LOAD_FILE="$work/load.txt"
export BENCH_NPROC=$(nproc)
export BENCH_CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
export BENCH_MEMORY_KB=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
export BENCH_RUSTC=$(rustc --version)
export BENCH_NODE=$("$node22" --version)
export BENCH_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
export BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_DURATION=$DURATION BENCH_CONCURRENCY=$CONCURRENCY
export BENCH_OUT=$out
export BENCH_FS=$(stat -f -c %T "$work")

"$node22" --input-type=module <<'EOF'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'

const env = process.env
const lines = readFileSync(env.BENCH_RESULTS, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
const [loadBefore, loadMiddle, loadAfter] = readFileSync(env.BENCH_LOAD_FILE, 'utf8').trim().split('\n')
const refLock = JSON.parse(readFileSync('tests/e2e/reference/package-lock.json', 'utf8'))
const e2eLock = JSON.parse(readFileSync('tests/e2e/package-lock.json', 'utf8'))
const version = (lock, name) => lock.packages?.[`node_modules/${name}`]?.version ?? 'not installed'

// The first line of a scenario for a target (idle: the first and the last).
const find = (target, scenario) => lines.find((l) => l.target === target && l.scenario === scenario)
const findLast = (target, scenario) => lines.filter((l) => l.target === target && l.scenario === scenario).at(-1)

const mib = (kib) => (kib == null ? '-' : `${(kib / 1024).toFixed(1)} MiB`)
const ms = (x) => (x == null ? '-' : x >= 100 ? `${x.toFixed(0)} ms` : `${x.toFixed(1)} ms`)
function rate(x, unit) {
  if (x == null) return '-'
  if (unit === 'bytes') return `${(x / 1e6).toFixed(1)} MB/s`
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)} k/s`
  return `${x >= 100 ? x.toFixed(0) : x.toFixed(1)} /s`
}
const ratio = (a, b) => (a == null || b == null || b === 0 ? '-' : `${a / b >= 10 ? (a / b).toFixed(0) : (a / b).toFixed(1)}x`)

const scenarios = [
  ['create-one', 'createRecord, one account'],
  ['create-many', 'createRecord, 20 accounts'],
  ['apply-writes', 'applyWrites, 10 creates per call (records/s)'],
  ['get-record', 'getRecord'],
  ['list-records', 'listRecords, 50 per page'],
  ['upload-blob', 'uploadBlob, 16 KiB'],
  ['create-account', 'createAccount'],
  ['firehose', 'firehose writes while 100 subscribers read (commits/s)'],
  ['get-repo', 'getRepo (CAR bytes/s)'],
]

const p = []
const w = (s = '') => p.push(s)
w('## PDS under load')
w()
w('Our `pds serve` (release build) and the reference PDS (`@atproto/pds`) each')
w('started on loopback by `scripts/bench-pds.sh` and driven by the same load')
w('generator (`benches/src/bin/pds-load`, `cargo run --release -p atp-benches')
w('--bin pds-load -- --help`), one server after the other. Every timed scenario')
w(`runs ${env.BENCH_DURATION} s with ${env.BENCH_CONCURRENCY} requests in flight (closed loop: a worker sends`)
w('its next request when the previous one is answered; the firehose writers are')
w('64, paced to at most 1,000 commits/s). Latencies are per')
w('request, p50 and p99 by nearest rank. Both servers run with rate limits off and')
w('invites not required; ours uses its embedded PLC directory, the reference the')
w('in-memory `@did-plc/server` of tests/e2e. Memory is VmRSS of the server process')
w('read from `/proc`, sampled every 20 ms.')
w()
w(`- Date: ${env.BENCH_DATE}, commit \`${env.BENCH_COMMIT}\`.`)
w(`- Machine: ${env.BENCH_NPROC} CPUs (\`nproc\`), ${env.BENCH_CPU}, ${(Number(env.BENCH_MEMORY_KB) / 1024 / 1024).toFixed(1)} GiB; the load generator runs on the same CPUs.`)
w(`- The servers' data directories were on a \`${env.BENCH_FS}\` file system${env.BENCH_FS === 'tmpfs' ? ' (memory): an fsync costs nothing there, so these figures leave out the disk waits of both servers (ours fsyncs every commit, the reference does not: see below)' : ''}.`)
w(`- Load average (1, 5, 15 min) before ours: ${loadBefore}; between: ${loadMiddle}; after the reference: ${loadAfter} (the run itself adds about 2).`)
if (Number(loadBefore.split(' ')[0]) > 0.5 * Number(env.BENCH_NPROC)) {
  w('  **The machine was busy before the run started** (other work compiling or running): both sides are slowed, not necessarily equally.')
}
w(`- Ours: ${env.BENCH_RUSTC}. Reference: @atproto/pds ${version(refLock, '@atproto/pds')} on Node.js ${env.BENCH_NODE}, better-sqlite3 ${version(refLock, 'better-sqlite3')}; PLC directory @did-plc/server ${version(e2eLock, '@did-plc/server')}.`)
w()
w('| scenario | ours | p50 | p99 | reference | p50 | p99 | ratio |')
w('|---|---:|---:|---:|---:|---:|---:|---:|')
for (const [key, label] of scenarios) {
  const o = find('ours', key)
  const r = find('reference', key)
  const unit = (o ?? r)?.unit
  const errs = [o, r].filter((x) => x?.errors > 0).map((x) => `${x.target}: ${x.errors} errors`)
  w(`| ${label}${errs.length ? ` (${errs.join(', ')})` : ''} | ${rate(o?.throughput, unit)} | ${ms(o?.p50_ms)} | ${ms(o?.p99_ms)} | ${rate(r?.throughput, unit)} | ${ms(r?.p50_ms)} | ${ms(r?.p99_ms)} | ${ratio(o?.throughput, r?.throughput)} |`)
}
w()

const fo = find('ours', 'firehose')
const fr = find('reference', 'firehose')
const fh = (l) => l ? `${rate(l.throughput)} written by ${l.extra.writers} concurrent createRecord over 20 accounts (aim ${l.extra.target_rate}/s), ${l.extra.delivered_per_subscriber_per_s.toFixed(0)} commits/s delivered to each of ${l.extra.subscribers} subscribers, delay p50 ${ms(l.extra.delay_p50_ms)}, p99 ${ms(l.extra.delay_p99_ms)}, max ${ms(l.extra.delay_max_ms)}, ${l.extra.missed} deliveries missing after a 10 s drain` : 'not measured'
w('Firehose (delay: from sending createRecord to a subscriber receiving its `#commit`):')
w()
w(`- ours: ${fh(fo)}.`)
w(`- reference: ${fh(fr)}.`)
w()
const go = find('ours', 'get-repo')
const gr = find('reference', 'get-repo')
const gx = (l) => l ? `${l.extra.records_in_repo.toLocaleString('en')} records (filled by applyWrites of 200 at ${l.extra.fill_records_per_s.toFixed(0)} records/s), a ${(l.extra.car_bytes / 1e6).toFixed(1)} MB CAR, ${rate(l.throughput, 'bytes')}; server memory ${mib(l.rss_before_kib)} before, peak ${mib(l.rss_peak_kib)} during the downloads (filling included)` : 'not measured'
w('getRepo:')
w()
w(`- ours: ${gx(go)}.`)
w(`- reference: ${gx(gr)}.`)
w()
w('Memory of the server process:')
w()
w('| | ours | reference |')
w('|---|---:|---:|')
w(`| idle, just started | ${mib(find('ours', 'idle')?.rss_after_kib)} | ${mib(find('reference', 'idle')?.rss_after_kib)} |`)
for (const [key, label] of scenarios) {
  w(`| peak during ${label} | ${mib(find('ours', key)?.rss_peak_kib)} | ${mib(find('reference', key)?.rss_peak_kib)} |`)
}
const many = find('ours', 'many-accounts')
if (many) {
  const at = many.extra?.rss_kib_at_accounts ?? {}
  for (const count of Object.keys(at).map(Number).sort((a, b) => a - b)) {
    w(`| at the ${count.toLocaleString('en')}th of the many accounts (ours only) | ${mib(at[count])} | - |`)
  }
  w(`| peak while creating ${many.units.toLocaleString('en')} more accounts (ours only, ${rate(many.throughput)}) | ${mib(many.rss_peak_kib)} | - |`)
  w(`| after ${many.units.toLocaleString('en')} more accounts (ours only) | ${mib(many.rss_after_kib)} | - |`)
}
const idleAgain = findLast('ours', 'idle')
if (idleAgain && idleAgain !== find('ours', 'idle')) {
  w(`| idle after the whole run | ${mib(idleAgain.rss_after_kib)} | - |`)
}
w()

// Targets of issue 11: ratios to the reference in the same run.
const t = []
const target = (label, ours, ref, want) => {
  if (ours == null || ref == null) return t.push(`- ${label}: not measured.`)
  const r = ours / ref
  t.push(`- ${label} at least ${want}x the reference: ${r >= want ? '**met**' : '**missed**'} (${r.toFixed(1)}x; ${rate(ours)} against ${rate(ref)}${r >= want ? '' : `, ${((1 - r / want) * 100).toFixed(0)}% short: ${rate(want * ref)} needed`}).`)
}
target('createRecord on one account', find('ours', 'create-one')?.throughput, find('reference', 'create-one')?.throughput, 20)
target('getRecord', find('ours', 'get-record')?.throughput, find('reference', 'get-record')?.throughput, 20)
target('createAccount', find('ours', 'create-account')?.throughput, find('reference', 'create-account')?.throughput, 10)
if (go) {
  const mbs = go.throughput / 1e6
  const grow = go.rss_peak_kib - go.rss_before_kib
  t.push(`- getRepo of a ${go.extra.records_in_repo.toLocaleString('en')}-record repository at >= 100 MB/s: ${mbs >= 100 ? '**met**' : '**missed**'} (${mbs.toFixed(1)} MB/s); memory grew by ${mib(grow)} while filling and downloading a ${(go.extra.car_bytes / 1e6).toFixed(1)} MB CAR.`)
}
if (fo) {
  const ok = fo.extra.delivered_per_subscriber_per_s >= 1000 && fo.extra.delay_p99_ms != null && fo.extra.delay_p99_ms < 1000
  t.push(`- Firehose, 1,000 commits/s to 100 subscribers with p99 delay under 1 s: ${ok ? '**met**' : '**missed**'} (${fo.extra.delivered_per_subscriber_per_s.toFixed(0)} commits/s delivered per subscriber, p99 ${ms(fo.extra.delay_p99_ms)}).`)
}
const idle = find('ours', 'idle')?.rss_after_kib
if (idle != null) t.push(`- Idle resident memory under 50 MB: ${idle / 1024 < 50 ? '**met**' : '**missed**'} (${mib(idle)}).`)
if (many) {
  const peak = Math.max(many.rss_peak_kib, many.rss_after_kib) / 1024
  t.push(`- 10,000 accounts keep it under 200 MB: ${many.units >= 10000 ? (peak < 200 ? '**met**' : '**missed**') : `**not reached**: ${many.units.toLocaleString('en')} accounts in the time allowed, then`} (peak ${mib(many.rss_peak_kib)} while creating them, ${mib(many.rss_after_kib)} after).`)
}
w('### Targets (issue 11)')
w()
for (const line of t) w(line)
w()
// Replace the section (up to the next "## " heading) or append it; the
// hand-written analysis after the marker is kept.
const marker = '<!-- Hand-written below this line; scripts/bench-pds.sh keeps it. -->'
const doc = existsSync(env.BENCH_OUT) ? readFileSync(env.BENCH_OUT, 'utf8') : '# Benchmarks\n'
const start = doc.indexOf('\n## PDS under load\n')
let before = doc.trimEnd() + '\n\n'
let after = ''
let notes = ''
if (start >= 0) {
  const rest = doc.indexOf('\n## ', start + 1)
  const old = rest >= 0 ? doc.slice(start + 1, rest + 1) : doc.slice(start + 1)
  before = doc.slice(0, start + 1)
  after = rest >= 0 ? '\n' + doc.slice(rest + 1) : ''
  const m = old.indexOf(marker)
  if (m >= 0) notes = old.slice(m + marker.length).trim()
}
w(marker)
if (notes) {
  w()
  w(notes)
}
const next = before + p.join('\n') + '\n' + after
writeFileSync(env.BENCH_OUT, next)
EOF
echo "wrote $out" >&2
