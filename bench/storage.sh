#!/usr/bin/env bash
# Storage benchmark: measures dd's sequential write/read bandwidth on the target filesystem,
# then runs bench/storage_bench.c against the same directory and prints its numbers as ratios.
#   bash bench/storage.sh [DIR] [TOTAL_MB]     (defaults: a temp dir under /var/tmp, 1024 MB)
set -eu
cd "$(dirname "$0")/.."
BASE=${1:-/var/tmp}
MB=${2:-1024}
DIR=$(mktemp -d "$BASE/gregor-storage-bench.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
CFLAGS="-std=c17 -D_GNU_SOURCE -O2 -g -Isrc"
if [ -f build/libgregor.a ] && [ -z "$(find src/record src/storage -newer build/libgregor.a)" ] && cc $CFLAGS bench/storage_bench.c build/libgregor.a -o "$DIR/bench" \
     $(sed -n 's/^LIBS *:= *//p' Makefile) 2>/dev/null; then :; else
  cc $CFLAGS bench/storage_bench.c src/record/*.c src/storage/*.c src/base/logger.c -o "$DIR/bench" \
     -lz -lsnappy -llz4 -lzstd -lpthread -lm
fi
# dd baselines: write with a final fdatasync (what a durable append stream costs), read warm.
w=$(dd if=/dev/zero of="$DIR/dd.bin" bs=1M count="$MB" conv=fdatasync 2>&1 | tail -1)
r=$(dd if="$DIR/dd.bin" of=/dev/null bs=1M 2>&1 | tail -1)
rm -f "$DIR/dd.bin"
to_mbps() { # "... 1073741824 bytes (...) copied, 1.2 s, 894 MB/s" -> MB/s from bytes/secs
  echo "$1" | awk -F'[ ,]+' '{for(i=1;i<=NF;i++){if($i=="bytes")b=$(i-1); if($i=="s")s=$(i-1)}} END{printf "%.0f", b/s/1e6}'
}
echo "filesystem: $(df -T "$DIR" | awk 'NR==2{print $2" on "$1}')"
"$DIR/bench" "$DIR" "$MB" "$(to_mbps "$w")" "$(to_mbps "$r")"
