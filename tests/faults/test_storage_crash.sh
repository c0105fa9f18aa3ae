#!/usr/bin/env bash
# Crash test for the storage engine: a writer appends and group-commits in a loop, printing
# every offset it was told is durable; we SIGKILL it at random moments, restart it (recovery
# runs at open), and finally check that every offset ever reported flushed is present, intact
# and in order. Prints "ok NAME" / "not ok NAME: reason" lines for tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
NAME=storage_crash_kill9_keeps_every_flushed_offset
TMP=$(mktemp -d /tmp/gregor-storage-crash.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
LIBS=$(sed -n 's/^LIBS *:= *//p' Makefile)
[ -n "$LIBS" ] || LIBS="-lz -lsnappy -llz4 -lzstd -lpthread -lm"
CFLAGS="-std=c17 -D_GNU_SOURCE -O1 -g -Isrc"

# Link against build/libgregor.a when it is up to date; otherwise compile the layers it needs.
if [ -f build/libgregor.a ] && [ -z "$(find src/record src/storage -newer build/libgregor.a)" ] &&
   cc $CFLAGS tests/faults/storage_crash_writer.c build/libgregor.a -o "$TMP/writer" $LIBS \
     2>"$TMP/cc.log"; then
  :
elif cc $CFLAGS tests/faults/storage_crash_writer.c src/record/*.c src/storage/*.c src/base/logger.c \
     -o "$TMP/writer" -lz -lsnappy -llz4 -lzstd -lpthread -lm 2>>"$TMP/cc.log"; then
  :
else
  echo "not ok $NAME: helper does not build: $(tail -3 "$TMP/cc.log" | tr '\n' ' ')"
  exit 1
fi

DATA="$TMP/data"
MAX_FLUSHED=0
ROUNDS=8
for round in $(seq 1 $ROUNDS); do
  "$TMP/writer" write "$DATA" >"$TMP/out.$round" 2>"$TMP/err.$round" &
  pid=$!
  # 0.2 .. 1.2 s of appending before the kill.
  sleep "0.$((RANDOM % 10 + 2))"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "not ok $NAME: writer exited early in round $round: $(tail -3 "$TMP/err.$round")"
    exit 1
  fi
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  last=$(grep '^flushed ' "$TMP/out.$round" | awk '{print $2}' | sort -n | tail -1)
  last=${last:-0}
  [ "$last" -gt "$MAX_FLUSHED" ] && MAX_FLUSHED=$last
  # Verify after every kill: recovery must keep all flushed data.
  out=$("$TMP/writer" verify "$DATA" 2>"$TMP/verr.$round")
  rc=$?
  end=$(echo "$out" | sed -n 's/^end //p')
  if [ $rc -ne 0 ] || [ -z "$end" ]; then
    echo "not ok $NAME: round $round: verify failed: $out $(tail -3 "$TMP/verr.$round")"
    exit 1
  fi
  if [ "$end" -lt "$MAX_FLUSHED" ]; then
    echo "not ok $NAME: round $round: log ends at $end but $MAX_FLUSHED was reported flushed"
    exit 1
  fi
  echo "# round $round: flushed up to $last, log end after recovery $end"
done
if [ "$MAX_FLUSHED" -le 0 ]; then
  echo "not ok $NAME: nothing was ever reported flushed"
  exit 1
fi
echo "ok $NAME"
