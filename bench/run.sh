#!/usr/bin/env bash
# Gregor throughput/latency benchmark, with baselines measured in the same run.
#
# Starts a fresh broker (build/gregor serve on a free loopback port, data in a temporary
# directory), then runs `gregor bench` (librdkafka clients):
#   produce 100 B and 1 KiB records with acks=1 and acks=all, consume each 1 KiB topic back,
#   and an end-to-end latency run at a fixed rate.
# Baselines on the same machine, same run:
#   loopback TCP throughput (iperf3, if installed) and sequential write with fdatasync (dd) on
#   the filesystem holding the broker's data directory.
# Prints one table with records/s, MiB/s, latency percentiles and the ratios to the baselines.
# Not part of `make test`.
#
# Environment:
#   GREGOR_BIN          binary (default build/gregor)
#   BENCH_RECORDS_100   records per 100 B run (default 2000000)
#   BENCH_RECORDS_1K    records per 1 KiB run (default 500000)
#   BENCH_PARTITIONS    partitions per topic (default 6)
#   BENCH_E2E_RATE      e2e records/s (default 10000), BENCH_E2E_SECONDS (default 5)
#   BENCH_DD_MB         size of the dd baseline write (default 1024)
#   BENCH_TMP           parent directory for the data directory (default /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BIN=${GREGOR_BIN:-build/gregor}
N100=${BENCH_RECORDS_100:-2000000}
N1K=${BENCH_RECORDS_1K:-500000}
PARTS=${BENCH_PARTITIONS:-6}
E2E_RATE=${BENCH_E2E_RATE:-10000}
E2E_SECONDS=${BENCH_E2E_SECONDS:-5}
DD_MB=${BENCH_DD_MB:-1024}
PY=/usr/bin/python3

[ -x "$BIN" ] || { echo "bench: $BIN not built (run make)" >&2; exit 1; }
"$BIN" bench --help >/dev/null 2>&1 || { echo "bench: $BIN has no 'bench' subcommand" >&2; exit 1; }

TMP=$(mktemp -d "${BENCH_TMP:-/tmp}/gregor-bench.XXXXXX")
BROKER_PID=
IPERF_PID=
cleanup() {
  [ -n "$IPERF_PID" ] && kill "$IPERF_PID" 2>/dev/null || true
  stop_broker
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM


PORT=$(free_port)
BROKERS=127.0.0.1:$PORT
mkdir -p "$TMP/data" "$TMP/results"
"$BIN" serve --override "listeners=PLAINTEXT://$BROKERS" --override "log.dirs=$TMP/data" \
  >"$TMP/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 1 100); do
  "$BIN" cluster info -b "$BROKERS" --timeout-ms 1000 >/dev/null 2>&1 && break
  kill -0 "$BROKER_PID" 2>/dev/null || { echo "bench: broker exited:" >&2; tail "$TMP/broker.log" >&2; exit 1; }
  sleep 0.1
done
"$BIN" cluster info -b "$BROKERS" >/dev/null

echo "gregor bench: $("$BIN" version), broker on $BROKERS, data in $TMP/data, $(nproc) cores"
echo

# run NAME ARGS...: one gregor bench run, JSON kept for the table; progress shows on a tty.
run() {
  local name=$1; shift
  echo "== $name: gregor bench $*"
  "$BIN" bench "$@" -b "$BROKERS" --json >"$TMP/results/$name.json"
}

run produce-100B-acks1   produce -t p100-a1  --partitions "$PARTS" -n "$N100" -s 100  -a 1
run produce-100B-acksall produce -t p100-all --partitions "$PARTS" -n "$N100" -s 100  -a all
run produce-1KiB-acks1   produce -t p1k-a1   --partitions "$PARTS" -n "$N1K"  -s 1024 -a 1
run produce-1KiB-acksall produce -t p1k-all  --partitions "$PARTS" -n "$N1K"  -s 1024 -a all
run consume-100B         consume -t p100-a1
run consume-1KiB         consume -t p1k-a1
run e2e-100B-acksall     e2e     -t e2e --partitions "$PARTS" -s 100 -a all \
                                 --rate "$E2E_RATE" -n $((E2E_RATE * E2E_SECONDS))

# Baselines.
echo "== baseline: dd ${DD_MB} MiB sequential write + fdatasync in the data directory's filesystem"
dd if=/dev/zero of="$TMP/dd.bin" bs=1M count="$DD_MB" conv=fdatasync 2>"$TMP/dd.txt" || true
rm -f "$TMP/dd.bin"
if command -v iperf3 >/dev/null 2>&1; then
  echo "== baseline: iperf3 loopback TCP, 3 s"
  IPORT=$(free_port)
  iperf3 -s -1 -p "$IPORT" >/dev/null 2>&1 &
  IPERF_PID=$!
  sleep 0.5
  iperf3 -c 127.0.0.1 -p "$IPORT" -t 3 -J >"$TMP/iperf3.json" 2>/dev/null || true
  wait "$IPERF_PID" 2>/dev/null || true
  IPERF_PID=
else
  echo "== baseline: iperf3 not installed; no network baseline"
fi
echo

"$PY" - "$TMP" <<'EOF'
import json, os, re, sys
tmp = sys.argv[1]
res = {}
for f in sorted(os.listdir(os.path.join(tmp, "results"))):
    with open(os.path.join(tmp, "results", f)) as fh:
        res[f[:-5]] = json.load(fh)

dd = None
try:
    txt = open(os.path.join(tmp, "dd.txt")).read()
    m = re.search(r"(\d+) bytes.*copied, ([\d.]+) s", txt)
    if m:
        dd = int(m.group(1)) / float(m.group(2)) / 2**20
except OSError:
    pass
net = None
try:
    j = json.load(open(os.path.join(tmp, "iperf3.json")))
    net = j["end"]["sum_received"]["bits_per_second"] / 8 / 2**20
except (OSError, ValueError, KeyError):
    pass

def ms(j, k):
    lat = j.get("latency_ms")
    return "%9.2f" % lat[k] if lat else "%9s" % "-"

print("%-22s %12s %10s %9s %9s %9s %9s %9s" % ("run", "records/s", "MiB/s", "p50 ms",
                                                 "p95 ms", "p99 ms", "p99.9 ms", "max ms"))
order = ["produce-100B-acks1", "produce-100B-acksall", "produce-1KiB-acks1",
         "produce-1KiB-acksall", "consume-100B", "consume-1KiB", "e2e-100B-acksall"]
for name in order:
    j = res.get(name)
    if not j:
        print("%-22s %s" % (name, "(missing)"))
        continue
    print("%-22s %12.0f %10.2f %s %s %s %s %s%s" % (
        name, j["records_per_sec"], j["mib_per_sec"], ms(j, "p50"), ms(j, "p95"),
        ms(j, "p99"), ms(j, "p99_9"), ms(j, "max"),
        "  (%d errors)" % j["errors"] if j["errors"] else ""))
print()
print("baselines: dd write+fdatasync %s MiB/s, iperf3 loopback %s MiB/s" % (
    "%.1f" % dd if dd else "n/a", "%.1f" % net if net else "n/a"))

def ratio(name, base, label):
    j = res.get(name)
    if j and base:
        print("  %-22s %6.1f%% of %s" % (name, 100.0 * j["mib_per_sec"] / base, label))
for name in order[:4]:
    ratio(name, dd, "dd write+fdatasync")
for name in order[4:6]:
    ratio(name, net, "iperf3 loopback")
EOF
