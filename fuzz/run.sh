#!/usr/bin/env bash
# Builds one fuzz target with the stable toolchain and runs it (see fuzz/README.md).
#   fuzz/run.sh TARGET 600s      run for ten minutes
#   fuzz/run.sh TARGET 1000000   run one million inputs
# Extra arguments after the budget go to libFuzzer (e.g. -jobs=2, -seed=1).
# TARGET is one of: parse check plan fmt lsp.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
target=${1:?usage: fuzz/run.sh TARGET SECONDS|RUNS [libFuzzer flags]}
budget=${2:?usage: fuzz/run.sh TARGET SECONDS|RUNS [libFuzzer flags]}
shift 2
case "$target" in parse | check | plan | fmt | lsp) ;; *)
    echo "fuzz/run.sh: no target \`$target\`; targets: parse check plan fmt lsp" >&2
    exit 2
    ;;
esac
case "$budget" in
*s) limit=(-max_total_time="${budget%s}") ;;
*[!0-9]* | '')
    echo "fuzz/run.sh: the budget is seconds (\`600s\`) or a number of runs (\`1000000\`), not \`$budget\`" >&2
    exit 2
    ;;
*) limit=(-runs="$budget") ;;
esac

# What `cargo fuzz build -s none` passes, as plain rustc flags: SanitizerCoverage and the
# libFuzzer hooks are stable codegen options, so no nightly is needed. `--target` keeps the
# flags off build scripts and proc macros, which run on the host uninstrumented.
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cllvm-args=-sanitizer-coverage-stack-depth \
 -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
 --cfg fuzzing"
cd "$here"
nice cargo build --locked --release --target "$host" --bin "$target"

# The first directory collects what libFuzzer finds (not committed); the others are read:
# the shipped recipes, the checker's UI fixtures, per-target seeds and past crashes.
corpus="$here/corpus/$target"
mkdir -p "$corpus" "$here/artifacts/$target"
seeds=("$root/pipelines" "$root/crates/pipelang/tests/ui")
for d in "$here/seeds/$target" "$here/regressions/$target"; do
    [ -d "$d" ] && seeds+=("$d")
done
exec nice "$here/target/$host/release/$target" \
    "$corpus" "${seeds[@]}" \
    -dict="$here/pipe.dict" \
    -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$here/artifacts/$target/" \
    -print_final_stats=1 "${limit[@]}" "$@"
