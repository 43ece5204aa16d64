#!/usr/bin/env bash
# Installs the Debian packages Cairn needs to build and test, only when something is missing.
# Called by `make deps`, which every other target depends on. Checks files, not dpkg state,
# so it is fast (no apt-get at all) on a machine that already has everything.
set -euo pipefail

need=()
check() {  # check <path-or-command> <package>
    case "$1" in
        /*) [ -e "$1" ] || need+=("$2") ;;
        *)  command -v "$1" >/dev/null 2>&1 || need+=("$2") ;;
    esac
}
check /usr/include/uv.h                              libuv1-dev
check /usr/include/protobuf-c/protobuf-c.h           libprotobuf-c-dev
check protoc-c                                       protobuf-c-compiler
check /usr/include/leveldb/c.h                       libleveldb-dev
check /usr/include/snappy-c.h                        libsnappy-dev
check /usr/include/criterion/criterion.h             libcriterion-dev
check /usr/include/openssl/hmac.h                    libssl-dev
check /usr/include/xxhash.h                          libxxhash-dev
check /usr/include/jemalloc/jemalloc.h                libjemalloc-dev
check node                                         nodejs
check npm                                          npm
check pkg-config                                     pkg-config
check cc                                             gcc
if [ "${CAIRN_WITH_REDIS:-0}" = 1 ]; then
    check redis-server                               redis-server
    check redis-benchmark                            redis-tools
fi
if [ "${CAIRN_WITH_ETCD:-0}" = 1 ]; then
    check etcd                                       etcd-server
    check etcdctl                                    etcd-client
fi
if [ "${CAIRN_WITH_JEPSEN:-0}" = 1 ]; then
    check ip                                         iproute2
    check iptables                                   iptables
    check faketime                                   faketime
    check /usr/include/libnetfilter_queue/libnetfilter_queue.h libnetfilter-queue-dev
fi
if [ "${CAIRN_WITH_ERLANG:-0}" = 1 ]; then
    check erl                                        erlang-base
    check /usr/lib/erlang/usr/include/erl_nif.h       erlang-dev
fi

[ ${#need[@]} -eq 0 ] && exit 0
# sort -u: one package may be named by several checks
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "deps: installing missing Debian packages: ${need[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
