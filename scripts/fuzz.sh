#!/usr/bin/env bash
# Builds each libFuzzer target (clang, ASan+UBSan) and runs it for SECONDS.
#   scripts/fuzz.sh SECONDS fuzz/fuzz_<name>.c...
# A target links the storage sources, the generated protobuf code and its own extra sources
# (extra_srcs below) directly (no libraries, so no sanitizer/variant mismatch). Corpora
# persist in fuzz/corpus-<name>/ (gitignored); a target with seed inputs (seed_corpus below)
# gets them written into an empty corpus, so the seeds live in this script, under version
# control. BUILD (default build) is the build root holding gen/ (make passes it).
# Exits non-zero if any target fails to build or finds a crash.
set -euo pipefail
secs=${1:?usage: scripts/fuzz.sh SECONDS fuzz/fuzz_*.c}
shift
cd "$(dirname "$0")/.."
root=${BUILD:-build}
out="$root/fuzz"
mkdir -p "$out"
FLAGS=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -std=c11 -D_GNU_SOURCE -I. -I"$root/gen")
SRCS=(storage/*.c "$root"/gen/proto/*.pb-c.c)
LIBS=(-lprotobuf-c -lleveldb -lsnappy -lxxhash)

# Sources a target needs besides storage and the generated protobuf code.
extra_srcs() {
    case "$1" in
    pb) echo node/pb_codec.c node/errors.c ;;
    cstate) echo ring/cstate.c ring/ring.c ring/claim.c ;;
    esac
}

# fuzz_pb seeds: the first byte is the chunk size - 1 the rest is fed in; then client frames.
seed_pb() {
    local d=$1
    # ping, whole
    printf '\377\000\000\000\001\001' >"$d/seed-ping"
    # riak-facts 6.1 GetReq bucket "b" key "k", fed one byte at a time
    printf '\000\000\000\000\007\011\012\001b\022\001k' >"$d/seed-get-bytewise"
    # PutReq bucket "b" key "k" content{value "v"} + ListKeysReq bucket "b", in 3-byte chunks
    printf '\002\000\000\000\014\013\012\001b\022\001k\042\003\012\001v\000\000\000\004\021\012\001b' \
        >"$d/seed-put-listkeys"
    # SetBucketReq bucket "b" props{n_val 1, allow_mult true} + ResetBucketReq + GetBucketTypeReq "default"
    printf '\377\000\000\000\012\025\012\001b\022\004\010\001\020\001\000\000\000\004\035\012\001b\000\000\000\012\037\012\007default' \
        >"$d/seed-bucket-props"
    # pipelined bodyless requests, a response code, an unknown code, a malformed body
    printf '\017\000\000\000\001\003\000\000\000\001\007\000\000\000\001\002\000\000\000\001\226\000\000\000\003\011\012\005' \
        >"$d/seed-mixed-bad"
    # zero length, then an oversize header
    printf '\377\000\000\000\000\377\377\377\377' >"$d/seed-bad-lengths"
}

seed_corpus() {
    case "$1" in
    pb) seed_pb "$2" ;;
    esac
}

fail=0
for src in "$@"; do
    name=$(basename "$src" .c); name=${name#fuzz_}
    bin="$out/fuzz_$name"
    echo "fuzz: building $name"
    # shellcheck disable=SC2046  # extra_srcs prints plain paths without spaces
    clang "${FLAGS[@]}" "$src" "${SRCS[@]}" $(extra_srcs "$name") "${LIBS[@]}" -o "$bin"
    corpus="fuzz/corpus-$name"
    mkdir -p "$corpus"
    if [ -z "$(ls -A "$corpus")" ]; then
        seed_corpus "$name" "$corpus"
    fi
    echo "fuzz: running $name for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$out/crash-$name-" "$corpus" >"$out/$name.log" 2>&1; then
        echo "fuzz: $name FAILED (see $out/$name.log and $out/crash-$name-*)"
        tail -30 "$out/$name.log"
        fail=1
    else
        echo "fuzz: $name ok: $(grep -a -o 'Done [0-9]* runs' "$out/$name.log" | tail -1)"
    fi
done
exit $fail
