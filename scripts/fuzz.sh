#!/usr/bin/env bash
# Builds each libFuzzer target (clang, ASan+UBSan) and runs it for SECONDS.
#   scripts/fuzz.sh SECONDS fuzz/fuzz_<name>.c...
# A target links the storage sources and the generated protobuf code directly (no libraries,
# so no sanitizer/variant mismatch). Corpora persist in fuzz/corpus-<name>/ (gitignored).
# Exits non-zero if any target fails to build or finds a crash.
set -euo pipefail
secs=${1:?usage: scripts/fuzz.sh SECONDS fuzz/fuzz_*.c}
shift
cd "$(dirname "$0")/.."
out=build/fuzz
mkdir -p "$out"
FLAGS=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -std=c11 -D_GNU_SOURCE -I. -Ibuild/gen)
SRCS=(storage/*.c build/gen/proto/*.pb-c.c)
LIBS=(-lprotobuf-c -lleveldb -lsnappy)
fail=0
for src in "$@"; do
    name=$(basename "$src" .c); name=${name#fuzz_}
    bin="$out/fuzz_$name"
    echo "fuzz: building $name"
    clang "${FLAGS[@]}" "$src" "${SRCS[@]}" "${LIBS[@]}" -o "$bin"
    corpus="fuzz/corpus-$name"
    mkdir -p "$corpus"
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
