#!/usr/bin/env bash
# Bulk account import, interrupted and resumed, and createAccount rates of
# our PDS and the reference PDS (@atproto/pds), all in one run; writes the
# "Bulk account import" section of docs/benchmarks.md (other sections are
# kept).
#
#   1. builds `pds` (release) and generates a CSV of BENCH_IMPORT_ACCOUNTS
#      rows (default 1000), each with its own small PNG avatar and a first
#      post;
#   2. starts `pds serve` in development mode (embedded PLC directory, rate
#      limits off) on a fresh data directory and runs `pds accounts import`;
#      once about half the rows are `done` in the output CSV the import is
#      killed with SIGKILL, then run again to completion;
#   3. checks through the server (sync.listRepos, repo.getRecord,
#      sync.getBlob) and the output CSV: exactly that many accounts, no
#      duplicate handle or DID, every profile with its avatar served back
#      byte for byte;
#   4. creates BENCH_CREATE_ACCOUNTS accounts (default 100) one after the
#      other with @atproto/api against a fresh `pds serve` and against the
#      reference PDS (with the in-memory PLC directory of tests/e2e).
#
# Environment: BENCH_IMPORT_ACCOUNTS, BENCH_CREATE_ACCOUNTS,
# BENCH_SKIP_REFERENCE=1 (ours only; the report then says so).
# Needs the Rust toolchain, python3, openssl, curl, and tests/e2e and
# tests/e2e/reference installed (scripts/e2e-reference.sh does it).
set -euo pipefail
cd "$(dirname "$0")/.."

ACCOUNTS=${BENCH_IMPORT_ACCOUNTS:-1000}
CREATE=${BENCH_CREATE_ACCOUNTS:-100}
target_dir=${CARGO_TARGET_DIR:-target}
pds_bin=$target_dir/release/pds
node22=tests/e2e/node_modules/.bin/node
out_doc=docs/benchmarks.md
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-import.XXXXXX")
admin=bench-import-admin

# step, load, wait_ready, stop
. scripts/bench-lib.sh
now() { date +%s.%N; }

# Processes started here, stopped on exit (by their pid only).
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  if [ "$status" = 0 ]; then rm -rf "$work"; else echo "kept $work for a look" >&2; fi
}
trap cleanup EXIT

free_port() {
  python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()"
}

# Starts `pds serve` on data directory $1 and port $2; prints its pid.
start_ours() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  env PDS_HOSTNAME=localhost PDS_PORT="$port" PDS_DATA_DIRECTORY="$dir" \
    PDS_ADMIN_PASSWORD=$admin PDS_RATE_LIMITS_ENABLED=false \
    PDS_INVITE_REQUIRED=false RUST_LOG=warn \
    "$pds_bin" serve >"$dir.log" 2>&1 &
  echo $!
}

# Creates $3 accounts (prefix $2) one after the other at $1 with
# @atproto/api; prints `{"accounts": N, "seconds": S}`.
create_accounts() {
  (cd tests/e2e && exec node_modules/.bin/node --input-type=module -e "
    import { AtpAgent } from '@atproto/api'
    const [url, prefix, n] = process.argv.slice(1)
    const start = performance.now()
    for (let i = 0; i < Number(n); i++) {
      const agent = new AtpAgent({ service: url })
      const handle = prefix + i + '.test'
      await agent.createAccount({ handle, email: handle + '@example.com', password: 'bench-password-' + i })
      if (!agent.session?.did?.startsWith('did:plc:')) throw new Error('no DID for ' + handle)
    }
    const seconds = (performance.now() - start) / 1000
    console.log(JSON.stringify({ accounts: Number(n), seconds }))
  " "$1" "$2" "$3")
}

step "building pds (release)"
cargo build --release -p pds --bin pds
load_before=$(load)

step "generating $ACCOUNTS rows with PNG avatars in $work"
python3 - "$work" "$ACCOUNTS" <<'EOF'
import csv, os, struct, sys, zlib
work, n = sys.argv[1], int(sys.argv[2])
os.makedirs(os.path.join(work, "avatars"))

def png(r, g, b):
    """An 8x8 PNG of one colour."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    raw = b"".join(b"\x00" + bytes([r, g, b]) * 8 for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

with open(os.path.join(work, "people.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["handle", "display name", "description", "avatar", "first post"])
    for i in range(n):
        name = f"user{i:05d}"
        with open(os.path.join(work, "avatars", f"{name}.png"), "wb") as a:
            a.write(png(i % 256, (i // 256) % 256, 77))
        w.writerow([name, f"User {i}", f"Imported account {i}, with a comma",
                    f"avatars/{name}.png", f"Hello from {name}"])
EOF

step "starting pds serve (embedded PLC directory)"
port=$(free_port)
url="http://localhost:$port"
ours_pid=$(start_ours "$work/data" "$port")
pids+=("$ours_pid")
wait_ready "$url" 120 "$ours_pid"

csv_in=$work/people.csv
csv_out=$work/people.out.csv
half=$((ACCOUNTS / 2))
done_rows() {
  if [ -f "$csv_out" ]; then grep -c ',done$' "$csv_out" || true; else echo 0; fi
}

step "import, killed with SIGKILL after $half done rows"
t0=$(now)
PDS_ADMIN_PASSWORD=$admin "$pds_bin" --pds-url "$url" accounts import "$csv_in" \
  -o "$csv_out" --no-progress >"$work/import-1.log" 2>&1 &
import_pid=$!
pids+=("$import_pid")
while kill -0 "$import_pid" 2>/dev/null && [ "$(done_rows)" -lt "$half" ]; do
  sleep 0.05
done
kill -9 "$import_pid" 2>/dev/null || true
wait "$import_pid" 2>/dev/null || true
t1=$(now)
first_done=$(done_rows)
first_lines=$(wc -l <"$csv_out")
echo "killed after $first_done done rows ($first_lines output lines)" >&2

step "import again, to completion"
t2=$(now)
PDS_ADMIN_PASSWORD=$admin "$pds_bin" --pds-url "$url" accounts import "$csv_in" \
  -o "$csv_out" --no-progress >"$work/import-2.log" 2>&1
t3=$(now)
cat "$work/import-2.log" >&2
second_summary=$(grep ' rows: ' "$work/import-2.log" | tail -n 1)

step "checking accounts, profiles and avatars through the server"
check=$(python3 - "$url" "$work" "$ACCOUNTS" <<'EOF'
import csv, json, os, sys, urllib.parse, urllib.request
url, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

def get(method, **params):
    q = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}/xrpc/{method}?{q}") as r:
        return r.read()

# Output file: the last row of each handle is done; handles and DIDs unique.
last = {}
with open(os.path.join(work, "people.out.csv")) as f:
    for row in csv.DictReader(f):
        last[row["handle"]] = row
assert len(last) == n, f"{len(last)} handles in the output, {n} expected"
assert all(r["status"] == "done" for r in last.values()), "unfinished rows"
dids = [r["did"] for r in last.values()]
assert len(set(dids)) == n, "duplicate DIDs in the output"

# Server: every repository, no more, no fewer.
repos, cursor = [], None
while True:
    params = {"limit": 1000}
    if cursor:
        params["cursor"] = cursor
    page = json.loads(get("com.atproto.sync.listRepos", **params))
    repos += [r["did"] for r in page["repos"]]
    cursor = page.get("cursor")
    if not cursor or not page["repos"]:
        break
assert len(repos) == n, f"{len(repos)} accounts on the server, {n} expected"
assert len(set(repos)) == n, "duplicate repositories on the server"
assert set(repos) == set(dids), "server accounts differ from the output file"

handles = set()
for handle, row in last.items():
    did = row["did"]
    name = handle.split(".")[0]
    handles.add(json.loads(get("com.atproto.repo.describeRepo", repo=did))["handle"])
    profile = json.loads(get("com.atproto.repo.getRecord", repo=did,
                             collection="app.bsky.actor.profile", rkey="self"))["value"]
    i = int(name[4:])
    assert profile["displayName"] == f"User {i}", profile
    cid = profile["avatar"]["ref"]["$link"]
    blob = get("com.atproto.sync.getBlob", did=did, cid=cid)
    with open(os.path.join(work, "avatars", f"{name}.png"), "rb") as a:
        assert blob == a.read(), f"avatar of {handle} differs"
    posts = json.loads(get("com.atproto.repo.listRecords", repo=did,
                           collection="app.bsky.feed.post"))["records"]
    assert len(posts) == 1, f"{handle} has {len(posts)} posts"
assert handles == set(last), "handles on the server differ from the output"
print(json.dumps({"accounts": len(repos), "profiles": n, "avatars": n, "posts": n}))
EOF
)
echo "$check" >&2
stop "$ours_pid" 10
load_middle=$(load)

step "createAccount: ours ($CREATE accounts, @atproto/api, one after the other)"
port=$(free_port)
ours2_pid=$(start_ours "$work/data-create" "$port")
pids+=("$ours2_pid")
wait_ready "http://localhost:$port" 120 "$ours2_pid"
ours_create=$(create_accounts "http://localhost:$port" ours "$CREATE")
echo "$ours_create" >&2
stop "$ours2_pid" 10

ref_create=null
if [ "${BENCH_SKIP_REFERENCE:-}" != 1 ]; then
  step "createAccount: the reference ($CREATE accounts)"
  mkdir -p "$work/ref/blocks"
  (cd tests/e2e && exec node_modules/.bin/node --input-type=module -e "
    import { startPlc } from './lib/servers.mjs'
    const plc = await startPlc()
    console.log(plc.url)
    process.on('SIGTERM', async () => { await plc.stop(); process.exit(0) })
  ") >"$work/plc-url" 2>"$work/plc-log" &
  plc_pid=$!
  pids+=("$plc_pid")
  for _ in $(seq 200); do [ -s "$work/plc-url" ] && break; sleep 0.1; done
  plc_url=$(head -n1 "$work/plc-url")
  port=$(free_port)
  env PDS_HOSTNAME=localhost PDS_PORT="$port" PDS_DATA_DIRECTORY="$work/ref" \
    PDS_BLOBSTORE_DISK_LOCATION="$work/ref/blocks" PDS_DEV_MODE=true \
    PDS_INVITE_REQUIRED=false PDS_SERVICE_HANDLE_DOMAINS=.test \
    PDS_RATE_LIMITS_ENABLED=false PDS_ADMIN_PASSWORD=$admin \
    PDS_JWT_SECRET="$(openssl rand -hex 16)" \
    PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX="$(openssl rand -hex 32)" \
    PDS_DID_PLC_URL="$plc_url" LOG_ENABLED=false \
    "$node22" tests/e2e/reference/launch.mjs >"$work/ref.log" 2>&1 &
  ref_pid=$!
  pids+=("$ref_pid")
  wait_ready "http://localhost:$port" 120 "$ref_pid"
  ref_create=$(create_accounts "http://localhost:$port" ref "$CREATE")
  echo "$ref_create" >&2
  stop "$ref_pid" 10
  stop "$plc_pid" 10
fi
load_after=$(load)

step "writing the section of $out_doc"
export ACCOUNTS CREATE first_done first_lines second_summary check ours_create ref_create
export load_before load_middle load_after
export T0=$t0 T1=$t1 T2=$t2 T3=$t3
export RUSTC_VERSION=$(rustc --version)
export NODE_VERSION=$("$node22" --version)
python3 - "$out_doc" <<'EOF'
import json, os, re, subprocess, sys, datetime
doc = sys.argv[1]
e = os.environ
n, create = int(e["ACCOUNTS"]), int(e["CREATE"])
first_done = int(e["first_done"])
t_first = float(e["T1"]) - float(e["T0"])
t_second = float(e["T3"]) - float(e["T2"])
first_rate = first_done / t_first
second_rate = (n - first_done) / t_second
ours = json.loads(e["ours_create"])
ref = json.loads(e["ref_create"])
ours_rate = ours["accounts"] / ours["seconds"]

def lock_version(path, name):
    try:
        with open(path) as f:
            return json.load(f)["packages"][f"node_modules/{name}"]["version"]
    except Exception:
        return "?"

cpu = "?"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
mem_kib = 0
with open("/proc/meminfo") as f:
    for line in f:
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
cores = os.cpu_count()
date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
pds_version = lock_version("tests/e2e/reference/package-lock.json", "@atproto/pds")
api_version = lock_version("tests/e2e/package-lock.json", "@atproto/api")
plc_version = lock_version("tests/e2e/package-lock.json", "@did-plc/server")
check = json.loads(e["check"])

L = []
w = L.append
w("## Bulk account import")
w("")
w("Written by `scripts/bench-import.sh` (all figures below come from one run).")
w("")
w(f"- Machine: {cores} cores ({cpu}), {mem_kib / 1024 / 1024:.1f} GiB; {date}.")
w(f"- Ours: `pds` release build, {e['RUSTC_VERSION']}; development mode, embedded PLC directory, rate limits off, blobs on disk.")
if ref:
    w(f"- Reference: @atproto/pds {pds_version} on Node.js {e['NODE_VERSION']}, PLC directory @did-plc/server {plc_version} (in memory); client @atproto/api {api_version}.")
w(f"- Load average (1, 5, 15 min) before: {e['load_before']}; after the import: {e['load_middle']}; at the end: {e['load_after']}. The machine is shared (2 cores, other builds and tests running), so these rates are lower bounds of an idle machine's.")
w("")
w(f"### `pds accounts import`, {n:,} rows, killed and resumed")
w("")
w(f"Each row: resolveHandle, createAccount (its answer's session is used), uploadBlob of its own 8x8 PNG avatar, putRecord of `app.bsky.actor.profile/self`, a first post (after listRecords), listAppPasswords and createAppPassword; the output CSV is appended, flushed and synced after every step. One row at a time.")
w("")
w("| part | rows finished | seconds | accounts/second |")
w("|---|---:|---:|---:|")
w(f"| first run, SIGKILL once {first_done} rows were `done` (uninterrupted part) | {first_done} | {t_first:.1f} | **{first_rate:.1f}** |")
w(f"| second run, to completion | {n - first_done} | {t_second:.1f} | {second_rate:.1f} |")
w("")
w(f"- Second run's summary: `{e['second_summary']}`.")
w(f"- Checked after the second run: {check['accounts']:,} accounts on the server (`sync.listRepos`), exactly the DIDs of the output file, no duplicate handle or DID; each profile's avatar served back by `sync.getBlob` byte for byte; one first post each.")
w("")
w(f"### createAccount alone, {create} accounts one after the other (`@atproto/api`)")
w("")
w("| server | seconds | accounts/second |")
w("|---|---:|---:|")
w(f"| ours | {ours['seconds']:.1f} | {ours_rate:.1f} |")
if ref:
    ref_rate = ref["accounts"] / ref["seconds"]
    w(f"| reference | {ref['seconds']:.1f} | {ref_rate:.1f} |")
    w("")
    w(f"- Our import ({first_rate:.1f} accounts/s, eight requests per account) is {first_rate / ref_rate:.1f}x the reference's bare createAccount rate ({ref_rate:.1f}/s); our bare createAccount is {ours_rate / ref_rate:.1f}x the reference's.")
else:
    w("")
    w("- The reference was not run (BENCH_SKIP_REFERENCE=1).")
w("")
section = "\n".join(L) + "\n"

text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
# Drop an earlier version of this section (up to the next level-2 heading).
text = re.sub(r"(?ms)^## Bulk account import\n.*?(?=^## |\Z)", "", text)
text = text.rstrip("\n") + "\n\n" + section
open(doc, "w").write(text)
print(section)
EOF
