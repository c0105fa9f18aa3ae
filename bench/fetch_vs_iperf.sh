#!/usr/bin/env bash
# Raw fetch throughput next to the loopback's own (issue 18): one `gregor serve` (free port,
# temporary data dir) is filled with N 1 KiB records in one partition (gregor bench produce,
# acks=1); then, alternating, bench/fetch_raw.c (one connection, Fetch v4, one request in flight,
# bytes discarded: the thinnest consumer) reads it all from offset 0; bench/loopback_send.c sends
# the partition's segment file over loopback TCP with no broker, once by sendfile (the mechanism
# Gregor's fetch uses) and once by pread + write (two copies); and iperf3 measures one TCP stream
# over 127.0.0.1 for a few seconds. Prints each run, the medians and the ratios: fetch/iperf3
# (issue 18's target: >= 0.9), fetch/bare sendfile (the broker's own overhead) and bare
# sendfile/iperf3 (the kernel mechanism's ceiling on this machine). Not part of make test.
#
#   bash bench/fetch_vs_iperf.sh        env: GREGOR_BIN, FETCH_RECORDS (1000000), FETCH_ROUNDS (3)
#
# Needs iperf3: installed here with apt-get when missing (the bench's own dependency only).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BIN=${GREGOR_BIN:-build/gregor}
N=${FETCH_RECORDS:-1000000}
ROUNDS=${FETCH_ROUNDS:-3}
PY=/usr/bin/python3

[ -x "$BIN" ] || { echo "fetch_vs_iperf: $BIN not built (run make)" >&2; exit 1; }
if ! command -v iperf3 >/dev/null 2>&1; then
  echo "fetch_vs_iperf: iperf3 missing, installing it with apt-get" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q iperf3 >/dev/null ||
    { echo "fetch_vs_iperf: cannot install iperf3" >&2; exit 1; }
fi
mkdir -p build/bench
cc -O2 -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -o build/bench/fetch_raw bench/fetch_raw.c
cc -O2 -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -o build/bench/loopback_send bench/loopback_send.c

TMP=$(mktemp -d /tmp/gregor-fetch-raw.XXXXXX)
BROKER_PID=
cleanup() {
  stop_broker
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

PORT=$(free_port)
"$BIN" serve --override "listeners=PLAINTEXT://127.0.0.1:$PORT" --override "log.dirs=$TMP/data" \
  >"$TMP/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 1 100); do
  "$BIN" cluster info -b "127.0.0.1:$PORT" --timeout-ms 500 >/dev/null 2>&1 && break
  kill -0 "$BROKER_PID" 2>/dev/null || { echo "broker exited" >&2; tail "$TMP/broker.log" >&2; exit 1; }
  sleep 0.1
done
timeout 600 "$BIN" bench produce -b "127.0.0.1:$PORT" -t fetchraw --partitions 1 -s 1024 -n "$N" \
  -a 1 --json >"$TMP/produce.json"
echo "filled: $N x 1 KiB in one partition; load average $(cut -d' ' -f1-3 /proc/loadavg)"
SEGMENT=$(ls -S "$TMP"/data/fetchraw-0/*.log | head -1)
cat "$SEGMENT" >/dev/null # in the page cache, as the broker's fetches find it

for r in $(seq 1 "$ROUNDS"); do
  timeout 300 build/bench/fetch_raw 127.0.0.1 "$PORT" fetchraw 0 "$N" | tee -a "$TMP/fetch.jsonl"
  timeout 300 build/bench/loopback_send sendfile "$SEGMENT" | tee -a "$TMP/sendfile.jsonl"
  timeout 300 build/bench/loopback_send copy "$SEGMENT" | tee -a "$TMP/copy.jsonl"
  IP=$(free_port)
  iperf3 -s -1 -p "$IP" >/dev/null 2>&1 &
  IPERF_PID=$!
  sleep 0.3
  timeout 60 iperf3 -c 127.0.0.1 -p "$IP" -t 3 -J >"$TMP/iperf3.json" || true
  wait "$IPERF_PID" 2>/dev/null || true
  "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); \
print(json.dumps({"iperf3_mib_per_sec": round(j["end"]["sum_received"]["bits_per_second"]/8/2**20, 1)}))' \
    "$TMP/iperf3.json" | tee -a "$TMP/iperf.jsonl"
done

"$PY" - "$TMP" <<'EOF'
import json, os, statistics, sys
def med(name, key="mib_per_sec"):
    return statistics.median(json.loads(l)[key] for l in open(os.path.join(sys.argv[1], name)))
f, i = med("fetch.jsonl"), med("iperf.jsonl", "iperf3_mib_per_sec")
s, c = med("sendfile.jsonl"), med("copy.jsonl")
print("medians: raw fetch %.0f MiB/s, bare sendfile %.0f, bare pread+write %.0f, iperf3 "
      "single-stream loopback %.0f (load average %.2f)" % (f, s, c, i, os.getloadavg()[0]))
print("ratios: fetch/iperf3 %.2f, fetch/bare sendfile %.2f, bare sendfile/iperf3 %.2f, "
      "bare pread+write/iperf3 %.2f" % (f / i, f / s, s / i, c / i))
EOF
