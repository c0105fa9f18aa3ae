#!/usr/bin/env bash
# A local three-node Gregor cluster (`make cluster`): nodes 1, 2 and 3, each a broker and a
# controller voter, clients on 127.0.0.1:9092, 9093 and 9094, raft on 127.0.0.1:19091-19093,
# data in ./data/node-1 .. ./data/node-3. Every output line is prefixed with "[node-N] ".
# Ctrl-C (or SIGTERM) stops all three (SIGTERM to each, then waits); if one node exits by
# itself, the others are stopped too and the script exits non-zero.
#
# Environment: GREGOR_BIN (default ./build/gregor), GREGOR_CLUSTER_DATA (default ./data),
# GREGOR_CLUSTER_PORT (first client port, default 9092), GREGOR_CLUSTER_RAFT_PORT (first raft
# port, default 19091), GREGOR_CLUSTER_CONSOLE_PORT (first web console port, default the client
# port + 552, i.e. 9644 for 9092; 0 = any free port, each node logs its address; "off" = no
# console). Extra arguments are passed to every node (e.g. --override K=V).
set -u
cd "$(dirname "$0")/.."

BIN=${GREGOR_BIN:-./build/gregor}
DATA=${GREGOR_CLUSTER_DATA:-./data}
PORT=${GREGOR_CLUSTER_PORT:-9092}
RAFT=${GREGOR_CLUSTER_RAFT_PORT:-19091}
CONSOLE=${GREGOR_CLUSTER_CONSOLE_PORT:-$((PORT + 552))}
HOST=127.0.0.1
NODES=(1 2 3)

if [ ! -x "$BIN" ]; then
  echo "cluster.sh: $BIN is missing; build it with make" >&2
  exit 1
fi

VOTERS=""
for n in "${NODES[@]}"; do
  VOTERS="${VOTERS:+$VOTERS,}$n@$HOST:$((RAFT + n - 1))"
done

RUN=$(mktemp -d "${TMPDIR:-/tmp}/gregor-cluster.XXXXXX")
STOPPING=0

node_pids() {
  local f
  for f in "$RUN"/node-*.pid; do
    [ -s "$f" ] && cat "$f"
  done
}

stop_all() {
  [ "$STOPPING" -eq 1 ] && return
  STOPPING=1
  # A second Ctrl-C while the nodes shut down kills them.
  trap 'echo "[cluster] killing all nodes" >&2; for p in $(node_pids); do kill -KILL "$p" 2>/dev/null; done' INT
  trap '' TERM
  local pid
  for pid in $(node_pids); do
    kill -TERM "$pid" 2>/dev/null
  done
  while [ -n "$(jobs -rp)" ]; do
    wait
  done
  rm -rf "$RUN"
}

trap 'echo "[cluster] stopping all nodes" >&2; stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

console_port() { # node n's console port (0 stays 0: any free port)
  if [ "$CONSOLE" -eq 0 ]; then echo 0; else echo $((CONSOLE + $1 - 1)); fi
}

for n in "${NODES[@]}"; do
  mkdir -p "$DATA/node-$n"
  CONSOLE_ARGS=()
  [ "$CONSOLE" != off ] && CONSOLE_ARGS=(--override console.listener="http://$HOST:$(console_port "$n")")
  # The subshell writes its pid, then execs gregor under that pid; sed prefixes each line.
  # Background jobs of a non-interactive shell ignore SIGINT: Ctrl-C reaches only this
  # script, which stops the nodes with SIGTERM, and sed keeps running to print their last
  # lines.
  (
    echo "$BASHPID" >"$RUN/node-$n.pid"
    exec "$BIN" serve \
      --override node.id="$n" \
      --override process.roles=broker,controller \
      --override listeners="PLAINTEXT://$HOST:$((PORT + n - 1)),CONTROLLER://$HOST:$((RAFT + n - 1))" \
      --override controller.listener.names=CONTROLLER \
      --override controller.quorum.voters="$VOTERS" \
      --override log.dirs="$DATA/node-$n" \
      "${CONSOLE_ARGS[@]}" "$@" 2>&1
  ) | sed -u "s/^/[node-$n] /" &
done

# Wait until every node has written its pid (so a Ctrl-C right now still stops them all).
for _ in $(seq 100); do
  [ "$(node_pids | wc -l)" -eq "${#NODES[@]}" ] && break
  sleep 0.02
done

echo "[cluster] nodes ${NODES[*]}: bootstrap $HOST:$PORT,$HOST:$((PORT + 1)),$HOST:$((PORT + 2)); Ctrl-C stops all" >&2
if [ "$CONSOLE" = off ]; then
  :
elif [ "$CONSOLE" -eq 0 ]; then
  echo "[cluster] web consoles on free ports: see each node's '[console] web console on' line" >&2
else
  echo "[cluster] web consoles: http://$HOST:$CONSOLE/ http://$HOST:$((CONSOLE + 1))/ http://$HOST:$((CONSOLE + 2))/ (loopback only)" >&2
fi

# Returns when any node's pipeline ends (or a trapped signal arrives).
wait -n
echo "[cluster] a node exited; stopping the others" >&2
stop_all
exit 1
