#!/usr/bin/env bash
# Compatibility with existing Riak clients: starts a real cairnd (the build variant given as
# $1, default asan) on free ports with a temporary data dir and runs
# tests/compat/riak_nodejs_test.js, which uses Basho's official Node.js client from npm,
# unmodified. The npm package is installed once into $BUILD/compat (needs the npm registry).
# Prints "compat: ok" or the failing checks; exit status non-zero on any failure.
set -euo pipefail
variant=${1:-asan}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-build}
bin="$root/$build/$variant/bin"
compat="$root/$build/compat"

mkdir -p "$compat"
if [ ! -d "$compat/node_modules/basho-riak-client" ]; then
    cp "$root/tests/compat/package.json" "$compat/"
    (cd "$compat" && timeout 300 npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

free_port() {
    node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

client_port=$(free_port)
link_port=$(free_port)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
"$bin/cairnd" --nodename "compat@127.0.0.1:$link_port" --listen "127.0.0.1:$client_port" \
    --data-dir "$tmp/data" >"$tmp/cairnd.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    grep -q 'ready' "$tmp/cairnd.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "compat: cairnd exited at start:"; cat "$tmp/cairnd.out"; exit 1; }
    sleep 0.1
done
grep -q 'ready' "$tmp/cairnd.out" || { echo "compat: cairnd not ready after 10 s"; cat "$tmp/cairnd.out"; exit 1; }

rc=0
NODE_PATH="$compat/node_modules" timeout 180 node "$root/tests/compat/riak_nodejs_test.js" \
    "127.0.0.1:$client_port" || rc=$?
kill -TERM "$pid"
wait "$pid" || { echo "compat: cairnd exited with an error on SIGTERM:"; tail -30 "$tmp/cairnd.out"; rc=1; }
pid=
if [ "$rc" -ne 0 ]; then
    echo "compat: FAILED (server log tail follows)"
    tail -30 "$tmp/cairnd.out"
    exit 1
fi
echo "compat: ok"
