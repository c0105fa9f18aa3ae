#!/usr/bin/env bash
# Installs the Debian packages Gregor builds and tests with, when any is missing.
# Uses sudo when not root. Safe to run repeatedly: does nothing when all are present.
set -euo pipefail

PKGS=(
  build-essential clang clang-format libclang-rt-14-dev pkg-config
  libraft-dev libuv1-dev librdkafka-dev libmicrohttpd-dev
  zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev libssl-dev openssl libpcre2-dev
  kcat python3 python3-confluent-kafka python3-kafka
  jq strace iproute2 procps
)
# With --test (.ci/run): Chromium too, headless, for the web console's page tests
# (tests/interop/test_console.py). Best effort: without it that test checks the JSON API only
# and says the browser part was skipped. `make run` never needs it.
TEST_PKGS=(chromium)
# Node.js may come from outside Debian (then it brings its own npm): only install Debian's
# packages when the commands are missing.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
updated=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  updated=1
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [ "${1:-}" = "--test" ]; then
  for p in "${TEST_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
    echo "install-deps: installing $p (tests)" >&2
    [ "$updated" -eq 1 ] || { $SUDO apt-get update -qq || true; updated=1; }
    $SUDO apt-get install -y -qq --no-install-recommends "$p" >&2 ||
      echo "install-deps: $p could not be installed; its tests skip what needs it" >&2
  done
fi

# The Node.js clients of the interop tests (kafkajs, kafka-crab-js with its native binary
# kafka-crab-js-linux-x64-gnu, @platformatic/kafka), from package-lock.json; again whenever
# one of them is missing (a node_modules from before a client was added).
here=$(cd "$(dirname "$0")/.." && pwd)
missing=0
for m in kafkajs kafka-crab-js kafka-crab-js-linux-x64-gnu @platformatic/kafka; do
  [ -d "$here/node_modules/$m" ] || missing=1
done
if [ -f "$here/package-lock.json" ] && [ "$missing" = 1 ]; then
  (cd "$here" && npm ci --no-audit --no-fund --silent) >&2
fi
