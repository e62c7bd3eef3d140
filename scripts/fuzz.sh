#!/usr/bin/env bash
# Runs fedroute's libFuzzer targets (issue 15).
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options…]
#   scripts/fuzz.sh all SECONDS          every target for SECONDS each, one after the other
#
# Targets: router-file csv jsonl wire signature chat-request sse checkpoint.
# Builds `fedroute-fuzz` with -sanitize=fuzzer,address into $FEDROUTE_FUZZ_BUILD (default .build-fuzz,
# so the normal build is left alone), seeds a corpus from fedroute's own writers and ../shared/data,
# adds Tests/Fuzz/regressions/TARGET, and fuzzes. The corpus grows in $FEDROUTE_FUZZ_BUILD/fuzz/corpus;
# crashing inputs land in $FEDROUTE_FUZZ_BUILD/fuzz/artifacts/TARGET. Exits non-zero on any crash,
# timeout (10 s per input), memory over 4 GB or build failure; prints one summary line per target:
#   fuzz TARGET: SECONDS s, EXECS executions, cov EDGES, ft FEATURES, corpus N, crashes 0|1
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ]; then
    echo "usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer options…]" >&2
    exit 2
fi
target=$1 seconds=$2
shift 2
all_targets="router-file csv jsonl wire signature chat-request sse checkpoint flower-message"
build=${FEDROUTE_FUZZ_BUILD:-.build-fuzz}

swiftc_path=$(readlink -f "$(command -v swiftc)")
fuzzer_lib=$(ls "$(dirname "$swiftc_path")"/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-"$(uname -m)".a 2>/dev/null | head -1 || true)
if [ -z "$fuzzer_lib" ]; then
    echo "error: this Swift toolchain has no libclang_rt.fuzzer_no_main (libFuzzer); fuzzing needs the Linux toolchain" >&2
    exit 1
fi
export FEDROUTE_FUZZ=1 FEDROUTE_FUZZER_LIB=$fuzzer_lib
swift build --scratch-path "$build" --product fedroute-fuzz 2>&1 | grep -v "Cannot export local symbol" | tail -3
driver=$build/debug/fedroute-fuzz
[ -x "$driver" ] || { echo "error: $driver was not built" >&2; exit 1; }

shared=../shared/data
[ -d "$shared" ] || shared=""
# Swift's backtracer would take minutes symbolicating a crash libFuzzer already reports.
export SWIFT_BACKTRACE=enable=no
# Swift runtime caches look like leaks to LeakSanitizer at exit; leaks are not what these targets look for.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}

run_one() {
    local t=$1
    shift
    local corpus=$build/fuzz/corpus/$t artifacts=$build/fuzz/artifacts/$t log=$build/fuzz/$t.log
    mkdir -p "$corpus" "$artifacts" "Tests/Fuzz/regressions/$t"
    "$driver" --write-seeds "$t" "$corpus" $shared >/dev/null
    local status=0
    "$driver" "$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -detect_leaks=0 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$@" "$corpus" "Tests/Fuzz/regressions/$t" >"$log" 2>&1 || status=$?
    local execs cov ft corp crashes=0
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    corp=$(ls "$corpus" | wc -l)
    if [ "$status" -ne 0 ]; then crashes=1; fi
    echo "fuzz $t: $seconds s, ${execs:-?} executions, cov ${cov:-?}, ft ${ft:-?}, corpus $corp, crashes $crashes"
    if [ "$status" -ne 0 ]; then
        echo "error: fuzz target $t failed (exit $status); its log is $log, the input in $artifacts:" >&2
        grep -E "ERROR|Fatal error|SUMMARY|Test unit written" "$log" | head -10 >&2 || true
        echo "keep the input in Tests/Fuzz/regressions/$t/ once it is fixed" >&2
        return 1
    fi
}

if [ "$target" = all ]; then
    failed=0
    for t in $all_targets; do run_one "$t" "$@" || failed=1; done
    exit $failed
fi
case " $all_targets " in
    *" $target "*) run_one "$target" "$@" ;;
    *) echo "error: unknown fuzz target '$target' (targets: $all_targets)" >&2; exit 2 ;;
esac
