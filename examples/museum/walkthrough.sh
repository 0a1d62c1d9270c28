#!/usr/bin/env bash
# The museum scenario on a local stack: a development PDS (with its embedded
# PLC directory) on a temporary data directory, the collection's accounts
# created in bulk from collection.csv, a post with an image, a repository
# export, and the relay step (printed only: there is no relay on loopback).
#
#   examples/museum/walkthrough.sh
#
# Environment:
#   PDS_BIN   the pds binary to use (default: build it with cargo and use
#             <target>/debug/pds)
#   KEEP_DATA=1  keep the temporary directory at the end (its path is printed)
#
# See docs/museum.md for the same steps on a real deployment.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

step() { printf '\n== %s\n' "$*"; }

# 1. The binary.
if [[ -z "${PDS_BIN:-}" ]]; then
    step "Building the pds binary"
    (cd "$root" && cargo build -p pds --quiet)
    target="${CARGO_TARGET_DIR:-$root/target}"
    PDS_BIN="$target/debug/pds"
fi
if [[ ! -x "$PDS_BIN" ]]; then
    echo "no pds binary at $PDS_BIN" >&2
    exit 1
fi
pds() { "$PDS_BIN" "$@"; }

# 2. A temporary data directory and a free port. Every pds command below
#    reads these two variables: `serve` to know where to keep its data and
#    where to listen, the operator commands to find the server
#    (http://localhost:$PDS_PORT) and its generated admin password.
work="$(mktemp -d "${TMPDIR:-/tmp}/museum-walkthrough.XXXXXX")"
export PDS_DATA_DIRECTORY="$work/pds-data"
export PDS_PORT="${PDS_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
# Development defaults: host name localhost, handles under .test, an
# embedded PLC directory, generated secrets. Never in production.
unset PDS_HOSTNAME PDS_DID_PLC_URL PDS_ADMIN_PASSWORD PDS_JWT_SECRET PDS_SERVICE_HANDLE_DOMAINS
url="http://localhost:$PDS_PORT"

server_pid=""
cleanup() {
    local status=$?
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ "$status" -ne 0 && -f "$work/server.log" ]]; then
        echo "--- last lines of the server log ---" >&2
        tail -n 20 "$work/server.log" >&2 || true
    fi
    if [[ "${KEEP_DATA:-}" == 1 ]]; then
        echo "kept $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT INT TERM

# 3. The server.
step "Starting pds serve on $url (data in $PDS_DATA_DIRECTORY)"
# (The binary itself, not the `pds` function: a function in the
# background runs in a subshell, and stopping that subshell would leave
# the server running.)
"$PDS_BIN" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if curl -fsS "$url/xrpc/_health" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "pds serve exited" >&2
        exit 1
    fi
    sleep 0.2
done
curl -fsS "$url/xrpc/_health"
echo

# 4. One account per object of the collection: profile with avatar, first
#    post, and an app password, written to accounts.csv.
step "Importing the collection (examples/museum/collection.csv)"
pds accounts import "$here/collection.csv" -o "$work/accounts.csv" --email-domain museum.example --no-progress
echo "--- accounts.csv (handle,did,app_password,status) ---"
cat "$work/accounts.csv"

step "The accounts on the server"
pds account list

# 5. A post with an image, as the astrolabe, with its app password.
handle="astrolabe.test"
app_password="$(awk -F, -v h="$handle" '$1 == h && $4 == "done" { p = $3 } END { print p }' "$work/accounts.csv")"
if [[ -z "$app_password" ]]; then
    echo "no app password for $handle in accounts.csv" >&2
    exit 1
fi
step "Posting with an image as $handle"
pds post --handle "$handle" --password "$app_password" \
    --text "New in Gallery 7: see how I find the hour from the height of a star." \
    --image "$here/images/collection.png" --alt "The astrolabe's gallery, in colours"

# 6. The repository as a CAR file: what relays and other services read.
step "Exporting the repository of $handle"
pds repo export "$handle" -o "$work/$handle.car"
echo "$work/$handle.car: $(wc -c <"$work/$handle.car") bytes"

# 7. Relays: on a public deployment the PDS asks them to crawl it.
step "Asking relays to crawl (not run: no relay can reach a loopback server)"
echo "On a public server:  pds --env-file /pds/pds.env request-crawl https://bsky.network"

# 8. Stop the server (the trap also does it on any failure).
step "Stopping the server"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""
echo "done"
