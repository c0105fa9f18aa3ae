#!/usr/bin/env bash
# CRC-32C throughput: crc32c_update (VPCLMULQDQ folding where the CPU has AVX-512) against
# the crc32-instruction path, same run, ratios printed.   bash bench/crc32c.sh [SECONDS_PER_CASE]
set -eu
cd "$(dirname "$0")/.."
BIN=$(mktemp /tmp/gregor-crc32c-bench.XXXXXX)
trap 'rm -f "$BIN"' EXIT
cc -std=c17 -D_GNU_SOURCE -O2 -g -Isrc bench/crc32c_bench.c src/record/crc32c.c -o "$BIN" -lpthread
grep -m1 -o 'vpclmulqdq' /proc/cpuinfo >/dev/null && echo "CPU: VPCLMULQDQ present" || echo "CPU: no VPCLMULQDQ (folding not used)"
"$BIN" "${1:-0.5}"
