#!/usr/bin/env bash
# Builds and runs Gregor's libFuzzer targets (tests/fuzz/fuzz_*.c) with ASan + UBSan.
#
#   bash tests/fuzz/run.sh               every target for FUZZ_SECONDS (default 60 s) each
#   bash tests/fuzz/run.sh --short       ~8 s each (make test)
#   bash tests/fuzz/run.sh --build-only  just build
#   bash tests/fuzz/run.sh request storage   only these targets
#
# Each target is compiled by clang directly against the broker sources it needs (objects are
# cached in build-fuzz/obj and rebuilt when a source or any header is newer). Per target:
#   1. replays every input under tests/fuzz/regressions/<target>/ (a crash found earlier must
#      stay fixed): "ok fuzz_<target>_regressions (N inputs)" / "not ok ...";
#   2. fuzzes from tests/fuzz/corpus/<target>/ (committed seeds: hand-made + captured client
#      traffic), generated seeds (build-fuzz/seeds/<target>) and the growing working corpus
#      build-fuzz/corpus/<target>: "ok fuzz_<target> (N execs)" or "not ok fuzz_<target>: ...".
#      A crash input is copied to tests/fuzz/regressions/<target>/ (commit it with the fix).
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT="$ROOT/build-fuzz"
SECONDS_EACH=${FUZZ_SECONDS:-60}
BUILD_ONLY=0
TARGETS=()
for a in "$@"; do
  case "$a" in
    --short) SECONDS_EACH=${FUZZ_SECONDS:-8} ;;
    --build-only) BUILD_ONLY=1 ;;
    -*) echo "unknown option $a" >&2; exit 2 ;;
    *) TARGETS+=("$a") ;;
  esac
done
if [ ${#TARGETS[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do TARGETS+=("$(basename "$f" .c | sed 's/^fuzz_//')"); done
fi

CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null; then
  echo "not ok fuzz_build: $CC not found (apt-get install clang libclang-rt-14-dev)"
  exit 1
fi
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-std=c17 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -Isrc $SAN"
LIBS="-lraft -luv -lrdkafka -lmicrohttpd -lssl -lcrypto -lz -lsnappy -llz4 -lzstd -lpthread -lm"
# Every broker source but main.c, as the Makefile's library: the linker pulls in only what a
# target references, and dependencies between layers can change without editing this file.
SRCS=$(find src -name '*.c' ! -path src/main.c | sort)

mkdir -p "$OUT/obj" "$OUT/bin" "$OUT/logs"
build_fail() { echo "not ok fuzz_build: $1"; grep -m1 -B2 -A10 -E "error|undefined" "$OUT/logs/build.log" | sed 's/^/# /'; exit 1; }
# Objects are built by make from a generated makefile with compiler-written dependency files,
# so only sources whose own headers changed are recompiled.
LIB="$OUT/libgregor-fuzz.a"
cat >"$OUT/fuzz.mk" <<MK
OBJS := \$(patsubst %.c,$OUT/obj/%.o,$(echo $SRCS))
$LIB: \$(OBJS)
	@rm -f \$@ && ar rcs \$@ \$^
$OUT/obj/%.o: %.c
	@mkdir -p \$(dir \$@)
	$CC $CFLAGS -fsanitize=fuzzer-no-link -MMD -MP -c \$< -o \$@
-include \$(OBJS:.o=.d)
MK
: >"$OUT/logs/build.log"
if ! make -s -k -f "$OUT/fuzz.mk" -j"$(nproc)" "$LIB" >>"$OUT/logs/build.log" 2>&1; then
  # A source the targets do not need may be mid-edit by someone else: archive what compiled
  # and let the link of each target decide.
  echo "# warning: some sources did not compile (see $OUT/logs/build.log); linking with the rest"
  grep -m3 "error:" "$OUT/logs/build.log" | sed 's/^/#   /'
  rm -f "$LIB"; ar rcs "$LIB" $(find "$OUT/obj" -name '*.o' | sort) || build_fail "ar failed"
fi
for t in "${TARGETS[@]}"; do
  src="tests/fuzz/fuzz_$t.c"; bin="$OUT/bin/fuzz_$t"
  [ -f "$src" ] || { echo "not ok fuzz_$t: no $src"; continue; }
  if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ "$LIB" -nt "$bin" ] || [ tests/fuzz/fuzz_common.h -nt "$bin" ]; then
    $CC $CFLAGS -Itests/fuzz -fsanitize=fuzzer "$src" "$LIB" $LIBS -o "$bin" >>"$OUT/logs/build.log" 2>&1 \
      || build_fail "linking fuzz_$t failed"
  fi
done
[ "$BUILD_ONLY" = 1 ] && { echo "ok fuzz_build"; exit 0; }

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
FAILED=0
for t in "${TARGETS[@]}"; do
  bin="$OUT/bin/fuzz_$t"
  [ -x "$bin" ] || continue
  log="$OUT/logs/$t.log"
  # 1. Regressions.
  reg="tests/fuzz/regressions/$t"
  if [ -d "$reg" ] && [ -n "$(ls -A "$reg" 2>/dev/null)" ]; then
    n=$(ls "$reg" | wc -l)
    if "$bin" -runs=1 -timeout=30 "$reg"/* >"$log.regressions" 2>&1; then
      echo "ok fuzz_${t}_regressions ($n inputs)"
    else
      bad=$(grep -ao "Running: [^ ]*" "$log.regressions" | tail -1 | cut -d' ' -f2)
      why=$(grep -a -m1 -E "ERROR: |runtime error|FUZZ_CHECK" "$log.regressions" | cut -c1-200)
      echo "not ok fuzz_${t}_regressions: $bad: $why"
      grep -a -A12 -m1 -E "ERROR: |runtime error|FUZZ_CHECK" "$log.regressions" | sed 's/^/# /'
      FAILED=$((FAILED + 1))
    fi
  fi
  # 2. Fuzzing.
  seeds="$OUT/seeds/$t"
  if [ ! -d "$seeds" ] || [ "$bin" -nt "$seeds" ]; then
    rm -rf "$seeds"; mkdir -p "$seeds"
    FUZZ_WRITE_SEEDS="$seeds" "$bin" -runs=0 >/dev/null 2>&1 || true
    touch "$seeds"
  fi
  work="$OUT/corpus/$t"; crashes="$OUT/crashes/$t"
  mkdir -p "$work" "$crashes" "tests/fuzz/corpus/$t"
  dict=(); [ -f "tests/fuzz/$t.dict" ] && dict=("-dict=tests/fuzz/$t.dict")
  before=$(ls "$crashes" | wc -l)
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "${dict[@]}" \
    "$work" "tests/fuzz/corpus/$t" "$seeds" >"$log" 2>&1
  rc=$?
  execs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -ao '[0-9]*$' | tail -1)
  cov=$(grep -aoE 'cov: [0-9]+' "$log" | tail -1 | grep -ao '[0-9]*')
  newest=$(ls -t "$crashes" 2>/dev/null | head -1)
  if [ $rc -eq 0 ] && [ "$(ls "$crashes" | wc -l)" -eq "$before" ]; then
    echo "ok fuzz_$t (${execs:-?} execs, cov ${cov:-?}, ${SECONDS_EACH}s)"
  else
    why=$(grep -a -m1 -E "ERROR: |runtime error|FUZZ_CHECK|out-of-memory|timeout" "$log" | cut -c1-200)
    if [ -n "$newest" ]; then
      mkdir -p "$reg"; cp "$crashes/$newest" "$reg/"
      echo "not ok fuzz_$t: exit $rc, input saved as $reg/$newest: $why"
    else
      echo "not ok fuzz_$t: exit $rc: $why"
    fi
    grep -a -A15 -m1 -E "ERROR: |runtime error|FUZZ_CHECK" "$log" | sed 's/^/# /'
    echo "# full log: $log"
    FAILED=$((FAILED + 1))
  fi
done
[ "$FAILED" -eq 0 ]
