#!/usr/bin/env bash
# log.page.cache.max.bytes on and off (issue 18), in the peer benchmark's order on one broker:
# a fresh `gregor serve` takes four topics of 3M x 100 B (acks=1), then 1M x 1 KiB with acks=1
# and 1M x 1 KiB with acks=all (1 partition each), all from librdkafka's rdkbench (the peer
# benchmark's client, built from $PEERS_DIR/rdkbench.c into build/bench/). Alternates the
# default bound (1 GiB) with -1 (no bound, Kafka's behaviour) for ROUNDS rounds and prints
# MB/s and the broker's CPU seconds (utime+stime from /proc) of the two 1 KiB runs. On a VM
# whose host takes freed memory back, the unbounded broker grows its page cache into memory
# that costs a host fault per page; the bounded one reuses the pages it dropped.
#
#   bash bench/page_cache_budget.sh        env: GREGOR_BIN, ROUNDS (2), PEERS_DIR
#
# Bounded: every client run has a timeout; brokers and data dirs go at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BIN=${GREGOR_BIN:-build/gregor}
ROUNDS=${ROUNDS:-2}
PEERS=${PEERS_DIR:-/work/shared/bench-peers}
RDK=build/bench/rdkbench
[ -x "$BIN" ] || { echo "page_cache_budget: $BIN not built (run make)" >&2; exit 1; }
mkdir -p build/bench
if [ ! -x "$RDK" ] || [ "$PEERS/rdkbench.c" -nt "$RDK" ]; then
  cc -O2 -std=c17 -Wall -Wextra -Werror -pthread -o "$RDK" "$PEERS/rdkbench.c" -lrdkafka -lm
fi

TMP=$(mktemp -d /var/tmp/gregor-pcb.XXXXXX)
BROKER_PID=
cleanup() {
  stop_broker
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
produce() { # boot topic size n acks
  timeout 300 "$RDK" produce -b "$1" -t "$2" -s "$3" -n "$4" -X acks="$5" -X linger.ms=5 \
    -X batch.size=1000000 2>/dev/null | tail -n 1 | jq -r .mb_per_s
}

one_run() { # bound
  local port boot hz t0 t1 t2 a b
  port=$(free_port)
  boot=127.0.0.1:$port
  rm -rf "$TMP/data"
  "$BIN" serve --override "listeners=PLAINTEXT://$boot" --override "log.dirs=$TMP/data" \
    --override "log.page.cache.max.bytes=$1" >"$TMP/broker.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  for t in a b c d k1 k2; do timeout 30 "$RDK" create -b "$boot" -t "$t" -p 1 >/dev/null 2>&1; done
  for t in a b c d; do produce "$boot" "$t" 100 3000000 1 >/dev/null; done
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$BROKER_PID")
  a=$(produce "$boot" k1 1024 1000000 1)
  t1=$(cpu_ticks "$BROKER_PID")
  b=$(produce "$boot" k2 1024 1000000 all)
  t2=$(cpu_ticks "$BROKER_PID")
  printf "log.page.cache.max.bytes=%-11s acks=1 %7.1f MB/s %5.2f CPU-s   acks=all %7.1f MB/s %5.2f CPU-s  (load %s)\n" \
    "$1" "$a" "$(echo "($t1 - $t0) / $hz" | bc -l)" "$b" "$(echo "($t2 - $t1) / $hz" | bc -l)" \
    "$(cut -d' ' -f1 /proc/loadavg)"
  stop_broker
}

for r in $(seq 1 "$ROUNDS"); do
  one_run 1073741824
  one_run -1
done
