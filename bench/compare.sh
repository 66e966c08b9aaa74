#!/usr/bin/env bash
# Training throughput, pipelang against PyTorch, measured alternately in one run (issue 6).
#
# Runs `pipe bench` and bench/torch_reference.py K times each, alternating (and swapping which
# goes first every round, so slow drift of a noisy machine hits both sides alike), collects
# their `RESULT framework=... tokens_per_s=... mfu=...` lines, prints every pair and the median
# ratio pipelang/torch with its min and max.
#
# Run from anywhere:
#   bash bench/setup_torch.sh                      # once
#   bash bench/compare.sh [--rounds K] [--steps N] [--warmup W] [--threads T] [--compile]
#     --rounds K   alternations (default 5; the issue asks for at least 5)
#     --steps N    timed steps per run, both sides (default 30)
#     --warmup W   warm-up steps, both sides (default: each side's own default, 5)
#     --threads T  threads, both sides (default: each side's own default, all cores)
#     --compile    compare against torch.compile instead of PyTorch eager
#     --device D   cpu (default) or cuda, both sides (pipelang needs a `--features cuda` build)
# Env: PIPE (pipelang binary; default target/release/pipe, built with
#      `cargo build --release` when missing), TORCH_PYTHON (a python with torch; default the
#      venv of bench/setup_torch.sh), PIPE_ARGS / TORCH_ARGS (extra arguments for one side).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv_python="${TORCH_PYTHON:-$repo_root/.tools/torch-venv/bin/python}"
# TORCH_PYTHON may be a command name (python3) as well as a path.
venv_python="$(command -v "$venv_python" || echo "$venv_python")"
default_pipe="$repo_root/target/release/pipe"
pipe="${PIPE:-$default_pipe}"

rounds=5
steps=30
shared_args=()
torch_only=()
die() { echo "compare: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
        --steps) steps="${2:?--steps needs a value}"; shift 2 ;;
        --warmup | --threads | --device) shared_args+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
        --compile) torch_only+=(--compile); shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, got '$rounds'"
[[ "$steps" =~ ^[1-9][0-9]*$ ]] || die "--steps must be a positive integer, got '$steps'"

if [[ ! -x "$venv_python" ]] || ! "$venv_python" -c 'import torch' 2>/dev/null; then
    die "no PyTorch venv at $venv_python; create it with: bash bench/setup_torch.sh"
fi

if [[ ! -x "$pipe" ]]; then
    [[ "$pipe" == "$default_pipe" ]] || die "PIPE=$pipe is not an executable file"
    echo "compare: $pipe missing, building it with cargo build --release" >&2
    (cd "$repo_root" && cargo build --release --bin pipe) || die "cargo build --release failed"
fi

# Extra per-side arguments are whitespace-separated words, like a command line.
read -r -a pipe_extra <<<"${PIPE_ARGS:-}"
read -r -a torch_extra <<<"${TORCH_ARGS:-}"
pipe_cmd=("$pipe" bench --steps "$steps" ${shared_args[@]+"${shared_args[@]}"}
    ${pipe_extra[@]+"${pipe_extra[@]}"})
torch_cmd=("$venv_python" "$repo_root/bench/torch_reference.py" --steps "$steps"
    ${shared_args[@]+"${shared_args[@]}"} ${torch_only[@]+"${torch_only[@]}"}
    ${torch_extra[@]+"${torch_extra[@]}"})

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
results="$logs/results"
: >"$results"

# Runs one side, appends "round side RESULT..." to $results, or fails with the run's log tail.
run_side() {
    local round="$1" side="$2"; shift 2
    local log="$logs/$side.$round.log"
    echo "compare: round $round/$rounds: $side: $*" >&2
    if ! "$@" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "$side run failed in round $round (command: $*)"
    fi
    local line
    line="$(grep '^RESULT ' "$log" | tail -n 1 || true)"
    [[ -n "$line" ]] || { tail -n 20 "$log" >&2; die "$side printed no RESULT line in round $round"; }
    echo "$round $side $line" >>"$results"
}

for ((round = 1; round <= rounds; round++)); do
    if ((round % 2)); then
        run_side "$round" pipelang "${pipe_cmd[@]}"
        run_side "$round" torch "${torch_cmd[@]}"
    else
        run_side "$round" torch "${torch_cmd[@]}"
        run_side "$round" pipelang "${pipe_cmd[@]}"
    fi
done

"$venv_python" - "$results" <<'PY'
import statistics, sys

runs = {}
for line in open(sys.argv[1]):
    round_, side, _, *fields = line.split()
    kv = dict(f.split("=", 1) for f in fields)
    for key in ("framework", "tokens_per_s", "mfu"):
        if key not in kv:
            sys.exit(f"compare: {side} RESULT line of round {round_} lacks {key}=: {line.strip()}")
    runs.setdefault(int(round_), {})[side] = kv

print(f"{'round':>5}  {'pipelang tok/s':>14} {'MFU':>6}  {'torch tok/s':>12} {'MFU':>6}  {'ratio':>6}")
ratios = []
for r in sorted(runs):
    p, t = runs[r]["pipelang"], runs[r]["torch"]
    ratio = float(p["tokens_per_s"]) / float(t["tokens_per_s"])
    ratios.append(ratio)
    print(f"{r:>5}  {float(p['tokens_per_s']):>14.0f} {float(p['mfu']) * 100:>5.1f}%"
          f"  {float(t['tokens_per_s']):>12.0f} {float(t['mfu']) * 100:>5.1f}%  {ratio:>6.3f}")

first = runs[min(runs)]
med = lambda side, key: statistics.median(float(runs[r][side][key]) for r in runs)
print(f"{first['pipelang']['framework']}: median {med('pipelang', 'tokens_per_s'):.0f} tokens/s, "
      f"MFU {med('pipelang', 'mfu') * 100:.1f}%")
print(f"{first['torch']['framework']}: median {med('torch', 'tokens_per_s'):.0f} tokens/s, "
      f"MFU {med('torch', 'mfu') * 100:.1f}%")
print(f"ratio pipelang/{first['torch']['framework']}: median {statistics.median(ratios):.3f} "
      f"(min {min(ratios):.3f}, max {max(ratios):.3f}) over {len(ratios)} rounds")
PY
