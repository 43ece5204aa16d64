#!/usr/bin/env bash
# make run: starts Cairn. Until cairnd exists (issue 4), this is the runtime demo: two nodes
# in two OS processes with supervision trees, cross-node calls and injected crashes.
# Env: RUN_SECONDS (0 = until Ctrl-C), RUN_PORT (default 7101; node b uses RUN_PORT+1).
set -euo pipefail
cd "$(dirname "$0")/.."
exec build/release/bin/rt_demo --seconds "${RUN_SECONDS:-0}" --port "${RUN_PORT:-7101}"
