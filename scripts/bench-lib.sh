# Shell functions shared by scripts/bench-pds.sh and scripts/bench-import.sh
# (sourced by them, not run on its own): progress lines, the load average,
# waiting for a server and stopping it.

step() { printf '\n==> %s\n' "$*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# Waits until describeServer answers at $1, for at most $2 seconds, as long
# as the server's process $3 lives.
wait_ready() {
  local url=$1 seconds=$2 pid=$3
  for _ in $(seq $((seconds * 5))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "the server (pid $pid) exited before answering" >&2
      return 1
    fi
    if curl -fsS -o /dev/null "$url/xrpc/com.atproto.server.describeServer" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "no answer from $url within $seconds s" >&2
  return 1
}

# Stops pid $1 with SIGTERM, waiting up to $2 seconds (default 15), then
# with SIGKILL.
stop() {
  local pid=$1 seconds=${2:-15}
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq $((seconds * 5))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
}
