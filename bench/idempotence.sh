#!/usr/bin/env bash
# Idempotent-producer throughput cost: ratio of idempotent to plain confluent-kafka producer
# throughput against one broker, measured in the same run. Not part of make test.
#   bash bench/idempotence.sh [MESSAGES_PER_PRODUCER] [VALUE_BYTES]
set -eu
cd "$(dirname "$0")/.."
export GREGOR_BIN=${GREGOR_BIN:-build/gregor}
[ -x "$GREGOR_BIN" ] || make -j2 build/gregor
exec /usr/bin/python3 bench/idempotence.py "$@"
