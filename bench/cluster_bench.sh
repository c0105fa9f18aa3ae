#!/bin/bash
# Builds and runs the controller benchmark against build/libgregor.a (make first).
# Usage: bench/cluster_bench.sh [topics] [partitions] [dir]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
cc -std=c17 -D_GNU_SOURCE -O2 -g -Isrc -o build/bench/cluster_bench bench/cluster_bench.c \
    build/libgregor.a -lraft -luv -lrdkafka -lmicrohttpd -lssl -lcrypto -lz -lsnappy -llz4 -lzstd -lpthread -lm
exec build/bench/cluster_bench "$@"
