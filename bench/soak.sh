#!/usr/bin/env bash
# Soak test (make soak; not part of make test): SOAK_MINUTES of produce + consume + consumer
# group churn against one broker, then a data and memory check. GREGOR_BIN picks the binary.
set -u
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/soak.py "$@"
