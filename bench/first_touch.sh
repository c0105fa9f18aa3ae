#!/bin/bash
# Cost of the page cache growing into memory the VM's host has taken back (issue 18).
#
# On this machine (virtio_balloon free page reporting) guest pages that stay free for a few
# seconds are handed back to the host; the next write that needs them as page cache takes a host
# fault per page. A broker writing a fresh log pays this for every new GiB until the page cache
# is full (then the kernel recycles pages and the cost is gone); an in-memory broker never does.
# This measures it without any broker: `dd` writes SIZE MiB into a new file
#   cold: after PAUSE s of idle, so its pages come back from the host,
#   warm: right after a file of the same size was deleted, so it reuses just-freed pages,
# and prints seconds per GiB of each and their difference (the first-touch cost per GiB).
#
#   bash bench/first_touch.sh [SIZE_MIB=2000] [PAUSE_S=20] [DIR=/tmp]
# Bounded: each dd has a timeout; the files are removed at the end.
set -euo pipefail
SIZE=${1:-2000} PAUSE=${2:-20} DIR=${3:-/tmp}
F=$(mktemp -p "$DIR" first-touch.XXXXXX)
trap 'rm -f "$F"' EXIT

write_s() { # seconds to write SIZE MiB into $F (buffered, no sync)
    local t0 t1
    rm -f "$F"
    t0=$(date +%s%N)
    timeout 300 dd if=/dev/zero of="$F" bs=1M count="$SIZE" status=none
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}
per_gib() { awk -v s="$1" -v m="$SIZE" 'BEGIN { printf "%.2f", s / (m * 1048576 / 1073741824) }'; }

sync
sleep "$PAUSE"
cold=$(write_s)
rm -f "$F"
warm=$(write_s)
rm -f "$F"
echo "dd ${SIZE} MiB into new page cache: cold (after ${PAUSE} s idle) ${cold} s = $(per_gib "$cold") s/GiB," \
    "warm (pages just freed) ${warm} s = $(per_gib "$warm") s/GiB"
echo "first-touch cost: $(awk -v c="$cold" -v w="$warm" -v m="$SIZE" 'BEGIN { printf "%.2f", (c - w) / (m / 1024) }') s per GiB of page cache"
