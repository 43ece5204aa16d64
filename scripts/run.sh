#!/usr/bin/env bash
# make run: starts one cairnd in the foreground, data in ./data/node1 (gitignored), and prints
# how to talk to it. Ctrl-C (or SIGTERM) stops it cleanly. (A later issue turns this into a
# local cluster.)
# Env: RUN_DATA_DIR (default ./data/node1), RUN_PORT (client port, default 8087),
#      RUN_NODE_PORT (node link port, default 8086), RUN_RING_SIZE (default 64: fixed once the
#      data dir holds a ring), RUN_ARGS (extra cairnd flags, e.g. "--log-level debug").
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD:-build}/release/bin   # make run BUILD=... passes its build root
DATA=${RUN_DATA_DIR:-./data/node1}
PORT=${RUN_PORT:-8087}
NODE_PORT=${RUN_NODE_PORT:-8086}
NODE=cairn@127.0.0.1:$NODE_PORT
mkdir -p "$DATA"
cat <<INFO
Cairn: one node in the foreground; Ctrl-C stops it (in-flight requests drain first).
  node         $NODE
  client port  127.0.0.1:$PORT  (Riak PB API: any Riak client works)
    $BIN/cairn -h 127.0.0.1:$PORT ping
    $BIN/cairn -h 127.0.0.1:$PORT put mybucket mykey 'hello'
    $BIN/cairn -h 127.0.0.1:$PORT get mybucket mykey
  admin        $BIN/cairn-admin --node $NODE --data-dir $DATA status
  data dir     $DATA  (rm -rf it to start over; the log is $DATA/cairnd.log)

INFO
# shellcheck disable=SC2086
exec "$BIN/cairnd" --nodename "$NODE" --listen "127.0.0.1:$PORT" --data-dir "$DATA" \
    --ring-size "${RUN_RING_SIZE:-64}" ${RUN_ARGS:-}
