#!/bin/sh
# Run one libFuzzer target for a bounded time over a scratch copy of its
# seed corpus (the source tree is never written). Fails when the fuzzer
# finds a crash, a leak or a timeout; the input is then kept in
# $FUZZ_ARTIFACTS (default: the build directory's meson-logs/fuzz) for a
# crash-* regression file in tests/fuzz/corpus/TARGET/.
#   run-fuzzer.sh FUZZER CORPUS_DIR
# FUZZ_TIME (seconds, default 20) and FUZZ_RUNS (default 10000000) bound it.
set -eu
fuzzer=$1
corpus=$2
name=$(basename "$fuzzer")
time=${FUZZ_TIME:-20}
runs=${FUZZ_RUNS:-10000000}
artifacts=${FUZZ_ARTIFACTS:-$(dirname "$fuzzer")/../../meson-logs/fuzz}
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/sockherd-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cp "$corpus"/* "$work/corpus/"
dict=$(dirname "$corpus")/../$(basename "$corpus").dict
set -- -max_total_time="$time" -runs="$runs" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$name-"
[ -f "$dict" ] && set -- "$@" -dict="$dict"
echo "$fuzzer $* $work/corpus"
rc=0
"$fuzzer" "$@" "$work/corpus" || rc=$?
if [ "$rc" -ne 0 ]; then
        echo "$name: fuzzer failed (exit $rc); inputs in $artifacts:" >&2
        ls -l "$artifacts" | grep -- "$name-" >&2 || true
fi
exit "$rc"
