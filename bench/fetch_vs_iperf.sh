#!/usr/bin/env bash
# Raw fetch throughput next to the loopback's own (issue 18): one `gregor serve` (free port,
# temporary data dir) is filled with N 1 KiB records in one partition (gregor bench produce,
# acks=1), stopped, and its data directory copied; two brokers are started on the two copies,
# one as by default (fetch.local.copy.enable=true: a client on this host gets the records by
# pread + write through a 256 KiB buffer) and one with fetch.local.copy.enable=false (sendfile,
# as a remote client gets them). Then, alternating: bench/fetch_raw.c (one connection, Fetch
# v4 of up to 16 MiB, one request in flight, bytes discarded: the thinnest consumer) reads it
# all from offset 0 from each broker, streaming each response through a 256 KiB buffer (as
# iperf3 reads through 128 KiB), and once more from the default broker holding each whole
# response (as librdkafka does); bench/loopback_send.c sends the partition's segment file over
# loopback TCP with no broker, by sendfile and by pread + write, to a 256 KiB reader; and
# iperf3 measures one TCP stream over 127.0.0.1 for a few seconds. Prints each run, the
# medians and the ratios: fetch/iperf3 (issue 18's target: >= 0.9), each fetch over its bare
# mechanism (the broker's own overhead) and each bare mechanism over iperf3 (the kernel's
# ceiling on this machine). Not part of make test.
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
SF_PID=
cleanup() {
  stop_broker
  BROKER_PID=$SF_PID stop_broker
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# start_broker DATA_DIR PORT [--override k=v ...]: starts a broker, waits until it answers;
# its PID in STARTED_PID.
start_broker() {
  local dir=$1 port=$2
  shift 2
  "$BIN" serve --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$dir" \
    "$@" >>"$dir.log" 2>&1 &
  STARTED_PID=$!
  for _ in $(seq 1 100); do
    "$BIN" cluster info -b "127.0.0.1:$port" --timeout-ms 1000 >/dev/null 2>&1 && return 0
    kill -0 "$STARTED_PID" 2>/dev/null || { echo "broker exited" >&2; tail "$dir.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "broker on $port not answering" >&2; tail "$dir.log" >&2
  exit 1
}

PORT=$(free_port)
start_broker "$TMP/data" "$PORT"
BROKER_PID=$STARTED_PID
timeout 600 "$BIN" bench produce -b "127.0.0.1:$PORT" -t fetchraw --partitions 1 -s 1024 -n "$N" \
  -a 1 --json >"$TMP/produce.json"
stop_broker
cp -a "$TMP/data" "$TMP/data-sf"
start_broker "$TMP/data" "$PORT"
BROKER_PID=$STARTED_PID
SF_PORT=$(free_port)
start_broker "$TMP/data-sf" "$SF_PORT" --override fetch.local.copy.enable=false
SF_PID=$STARTED_PID
echo "filled: $N x 1 KiB in one partition; load average $(cut -d' ' -f1-3 /proc/loadavg)"
SEGMENT=$(ls -S "$TMP"/data/fetchraw-0/*.log | head -1)
cat "$SEGMENT" "$(ls -S "$TMP"/data-sf/fetchraw-0/*.log | head -1)" >/dev/null # page cache

for r in $(seq 1 "$ROUNDS"); do
  timeout 300 build/bench/fetch_raw 127.0.0.1 "$PORT" fetchraw 0 "$N" | tee -a "$TMP/fetch.jsonl"
  timeout 300 build/bench/fetch_raw 127.0.0.1 "$PORT" fetchraw 0 "$N" $((16 << 20)) 0 |
    tee -a "$TMP/fetch-whole.jsonl"
  timeout 300 build/bench/fetch_raw 127.0.0.1 "$SF_PORT" fetchraw 0 "$N" |
    tee -a "$TMP/fetch-sf.jsonl"
  timeout 300 build/bench/loopback_send sendfile "$SEGMENT" $((16 << 20)) 262144 |
    tee -a "$TMP/sendfile.jsonl"
  timeout 300 build/bench/loopback_send copy "$SEGMENT" 262144 262144 | tee -a "$TMP/copy.jsonl"
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
fs, s, c = med("fetch-sf.jsonl"), med("sendfile.jsonl"), med("copy.jsonl")
fw = med("fetch-whole.jsonl")
print("medians: raw fetch %.0f MiB/s (pread + write; %.0f with sendfile; %.0f reading whole "
      "responses), bare sendfile %.0f, bare pread + write %.0f, iperf3 single-stream loopback "
      "%.0f (load average %.2f)" % (f, fs, fw, s, c, i, os.getloadavg()[0]))
print("ratios: fetch/iperf3 %.2f (sendfile fetch %.2f, whole responses %.2f), fetch/bare "
      "pread + write %.2f, sendfile fetch/bare sendfile %.2f, bare sendfile/iperf3 %.2f, bare "
      "pread + write/iperf3 %.2f" % (f / i, fs / i, fw / i, f / c, fs / s, s / i, c / i))
EOF
