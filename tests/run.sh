#!/usr/bin/env bash
# Runs every test: unit tests (release, ASan/UBSan and ThreadSanitizer builds), then interop
# and fault tests that drive a real gregor process with real clients. Each test program prints
# "ok NAME" / "not ok NAME: why" lines; this script counts them and ends with the line
# "N passed, N failed" that CI reads. A program that dies without reporting counts as a failure.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PASS=0
FAIL=0
FAILED_NAMES=()
LOGDIR=$(mktemp -d /tmp/gregor-test-logs.XXXXXX)
export GREGOR_BIN_RELEASE="$ROOT/build/gregor"
export GREGOR_BIN_ASAN="$ROOT/build-asan/gregor"
export GREGOR_BIN_TSAN="$ROOT/build-tsan/gregor"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"
# A race report fails the program (exit 66) after it ran all its tests; the suppressions cover
# only uninstrumented system libraries (see the file).
export TSAN_OPTIONS="suppressions=$ROOT/tests/tsan.supp:exitcode=66"
PY=/usr/bin/python3

# Test programs run GREGOR_TEST_JOBS (2) at a time: each starts its own brokers on free ports
# in its own temporary directories, and most of a program's time is spent waiting (cluster
# formation, session timeouts, fault windows), so two share this machine's cores well. The
# results are reported in the order the programs were started. GREGOR_TEST_JOBS=1 runs them
# one by one.
JOBS=${GREGOR_TEST_JOBS:-2}
LABELS=()

# run_one LABEL TIMEOUT CMD...: starts CMD in the background (at most JOBS at once); its log
# and a result line (ok count, not-ok count, exit status, seconds) go to LOGDIR.
run_one() {
  local label=$1 tmo=$2; shift 2
  local log="$LOGDIR/$(echo "$label" | tr '/ ' '__').log"
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  LABELS+=("$label")
  (
    start=$(date +%s)
    timeout -k 10 "$tmo" "$@" >"$log" 2>&1
    rc=$?
    res="$(grep -c '^ok ' "$log") $(grep -c '^not ok ' "$log") $rc $(( $(date +%s) - start ))"
    echo "$res" >"$log.res"
    echo "finished: $label (ok, failed, exit, seconds: $res)"
  ) &
}

# report LABEL: tallies a finished program's ok/not ok lines.
report() {
  local label=$1
  local log="$LOGDIR/$(echo "$label" | tr '/ ' '__').log"
  local ok nok rc secs
  read -r ok nok rc secs <"$log.res" || { ok=0; nok=0; rc=255; secs=0; }
  if [ "$ok" -eq 0 ] && [ "$nok" -eq 0 ]; then nok=1; echo "not ok $label: reported nothing (exit $rc)" >>"$log"; fi
  if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then nok=1; echo "not ok $label: exit status $rc" >>"$log"; fi
  PASS=$((PASS + ok)); FAIL=$((FAIL + nok))
  printf '%-60s %4d ok %3d failed  %3ss\n' "$label" "$ok" "$nok" "$secs"
  if [ "$nok" -gt 0 ]; then
    grep '^not ok ' "$log" | sed 's/^/    /'
    FAILED_NAMES+=("$label")
    echo "    --- last lines of $log ---"; tail -n 25 "$log" | sed 's/^/    | /'
  fi
}

echo "running test programs $JOBS at a time; logs in $LOGDIR"
for flavour in build build-asan build-tsan; do
  for t in "$flavour"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "unit[$flavour] $(basename "$t")" 600 "$t"
  done
done

# Interop and fault tests: each file starts its own broker(s) on free loopback ports.
# GREGOR_BIN selects the binary; the ASan flavour runs the files marked "asan-smoke", the
# ThreadSanitizer flavour those marked "tsan-smoke" (GREGOR_ASAN=1 there too: a slow,
# sanitized build whose log must stay free of reports).
for t in tests/interop/test_* tests/faults/test_*; do
  [ -f "$t" ] || continue
  case "$t" in
    *.py) cmd=("$PY" "$t") ;;
    *.js) cmd=(node "$t") ;;
    *.sh) cmd=(bash "$t") ;;
    *) continue ;;
  esac
  GREGOR_BIN="$GREGOR_BIN_RELEASE" run_one "interop $t" 900 "${cmd[@]}"
  if grep -q 'asan-smoke' "$t"; then
    GREGOR_BIN="$GREGOR_BIN_ASAN" GREGOR_ASAN=1 run_one "interop[asan] $t" 900 "${cmd[@]}"
  fi
  if grep -q 'tsan-smoke' "$t"; then
    GREGOR_BIN="$GREGOR_BIN_TSAN" GREGOR_ASAN=1 run_one "interop[tsan] $t" 900 "${cmd[@]}"
  fi
done

if [ -d tests/fuzz ] && [ -f tests/fuzz/run.sh ]; then
  run_one "fuzz (short)" 600 bash tests/fuzz/run.sh --short
fi

wait
echo "--- results, in the order the programs started ---"
for label in "${LABELS[@]}"; do report "$label"; done

echo "logs: $LOGDIR"
[ ${#FAILED_NAMES[@]} -gt 0 ] && echo "failed programs: ${FAILED_NAMES[*]}"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
