#!/usr/bin/env bash
# Fuzzes rwproxy's parsers of network input with libFuzzer (cargo-fuzz, on the stable toolchain
# with `--sanitizer none`): packet framing, the compressed protocol, the connection-phase
# parsers, the server-reply tracker and OK/ERR rewriters, the SQL classifier, and the session's
# other readers of statement text (CONNECTION_ID(), KILL, process list, DROP TEMPORARY TABLE).
#
#   integration/fuzz.sh [--seconds N] [--runs N] [TARGET...]
#
# Each target runs from its checked-in corpus (fuzz/corpus/<target>, new finds are not kept)
# for N seconds (default 20) or N executions. A crash fails the run; its input is left in
# fuzz/artifacts/<target>/ (make it a regression test). Ends with "N passed, M failed" (targets).
set -euo pipefail

REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT/fuzz"
SECONDS_EACH=20
RUNS=
TARGETS=()
while (($#)); do
    case $1 in
    --seconds) SECONDS_EACH=${2:?--seconds needs a value}; shift 2 ;;
    --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
    -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
    esac
done
((${#TARGETS[@]})) || TARGETS=(frame compress handshake reply classify session_text)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked --version 0.13.2
fi
echo "==> building the fuzz targets"
cargo fuzz build --sanitizer none --release 2>&1 | tail -n 3

passed=0 failed=0
for t in "${TARGETS[@]}"; do
    corpus=corpus/$t
    mkdir -p "$corpus"
    # A scratch copy: the run may add inputs; the checked-in corpus stays as it is.
    work=$(mktemp -d)
    cp -r "$corpus/." "$work/"
    limit=(-max_total_time="$SECONDS_EACH")
    [[ -n $RUNS ]] && limit=(-runs="$RUNS")
    echo "==> $t"
    log=$work.log
    set +e
    cargo fuzz run --sanitizer none --release "$t" "$work" -- "${limit[@]}" -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    grep -E 'stat::number_of_executed_units|Done [0-9]+ runs|ERROR|panicked|SUMMARY' "$log" || tail -n 20 "$log"
    rm -f "$log"
    if ((status == 0)); then
        passed=$((passed + 1))
    else
        echo "fuzz target $t FAILED (artifacts in fuzz/artifacts/$t)"
        failed=$((failed + 1))
    fi
    rm -rf "$work"
done
echo "$passed passed, $failed failed"
((failed == 0))
