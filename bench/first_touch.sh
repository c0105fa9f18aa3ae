#!/bin/bash
# What new page cache costs on this machine, without any broker (issue 18).
#
# On this VM (virtio_balloon free page reporting) guest pages that stay free for a few seconds
# are handed back to the host; the next write that needs one as page cache takes a host fault.
# A broker writing its log through the page cache pays that for every GiB it ingests until the
# page cache fills the memory (then the kernel recycles pages and the cost is gone); an
# in-memory broker (the peer benchmark's mock) never pays it.
#
# This does what a broker's log does: `dd` appends GIB files of 1 GiB one after another, all
# kept (the page cache grows by GIB GiB), and prints each file's seconds. The first files reuse
# pages freed just before (warm); once those are used up every page comes from the host
# (cold). PAUSE_S of idle first lets the host take back what was freed before the run.
#
#   bash bench/first_touch.sh [GIB=6] [PAUSE_S=0] [DIR=/tmp]
# Bounded: each dd has a timeout; the files are removed at the end.
set -euo pipefail
GIB=${1:-6} PAUSE=${2:-0} DIR=${3:-/tmp}
D=$(mktemp -d -p "$DIR" first-touch.XXXXXX)
trap 'rm -rf "$D"' EXIT

sync
sleep "$PAUSE"
best="" worst=""
for i in $(seq "$GIB"); do
    t0=$(date +%s%N)
    timeout 300 dd if=/dev/zero of="$D/f$i" bs=1M count=1024 status=none
    t1=$(date +%s%N)
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    echo "GiB $i: $s s"
    best=$(awk -v x="$s" -v b="${best:-$s}" 'BEGIN { print (x < b ? x : b) }')
    worst=$(awk -v x="$s" -v w="${worst:-$s}" 'BEGIN { print (x > w ? x : w) }')
done
echo "page cache growth: fastest GiB ${best} s (pages reused), slowest ${worst} s (pages from the host):" \
    "$(awk -v b="$best" -v w="$worst" 'BEGIN { printf "%.2f", w - b }') s per GiB is the first-touch cost"
