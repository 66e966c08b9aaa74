#!/usr/bin/env bash
# Throughput of `pipe prepare-data` with a byte-level BPE tokenizer against the byte tokenizer
# (BENCHMARKS.md). The corpus is the repository's own prose (README, ARCHITECTURE, docs/**/*.md),
# its paragraphs drawn at random into ${MB:-30} MB of JSONL documents; the BPE tokenizer.json
# (${VOCAB:-8192} ids) is trained on a 2 MB sample of it by the tokenizers crate's trainer
# (crates/pipelang-runtime/examples/train_bpe.rs): nothing is downloaded. MB per core-second is
# the input over the process's CPU time (user + sys), which a loaded machine does not inflate.
# Usage (from the repository root):
#   bash bench/prepare_data_bpe.sh [PIPE_BINARY] [TRAIN_BPE_BINARY]
#   (defaults: target/debug/pipe, target/debug/examples/train_bpe: the dev profile builds every
#   dependency, the tokenizers crate included, at opt-level 3)
set -euo pipefail
repo=$(pwd)
pipe=$(realpath "${1:-target/debug/pipe}")
train=$(realpath "${2:-target/debug/examples/train_bpe}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
MB=${MB:-30} REPO="$repo" python3 - <<'PY'
import glob, json, os, random
random.seed(7)
files = [os.path.join(os.environ["REPO"], f) for f in ("README.md", "ARCHITECTURE.md")]
files += sorted(glob.glob(os.path.join(os.environ["REPO"], "docs/**/*.md"), recursive=True))
paras = []
for f in files:
    paras += [p.strip() for p in open(f, encoding="utf-8").read().split("\n\n") if len(p.strip()) > 40]
def write(name, limit):
    with open(name, "w") as out:
        size = 0
        while size < limit:
            doc = "\n\n".join(random.choice(paras) for _ in range(random.randint(1, 6)))
            line = json.dumps({"text": doc}) + "\n"
            out.write(line)
            size += len(line)
write("corpus.jsonl", int(os.environ["MB"]) * 1_000_000)
write("sample.jsonl", 2_000_000)
print(f"{len(paras)} paragraphs from {len(files)} files")
PY
"$train" sample.jsonl tokenizer.json "${VOCAB:-8192}"
for tok in bytes bpe; do
  if [ "$tok" = bytes ]; then data='data web = text("corpus.jsonl")'; vocab=512; else
    data='data web = text("corpus.jsonl", tokenizer = "tokenizer.json")'; vocab=16_384; fi
  cat > p.pipe <<PIPE
pipeline t { seed = 1, batch = 4, seq_len = 32 }
model lm = decoder { vocab = $vocab, d_model = 16, layers = 1, heads = 2 }
$data
stage s { train = [lm], budget = 1_024, data = web, lr = constant(1e-3) }
PIPE
  for threads in 1 $(nproc); do
    rm -rf prep
    echo "== $tok tokenizer, $threads thread(s)"
    RAYON_NUM_THREADS=$threads /usr/bin/time -f "TIME %e %U %S" "$pipe" prepare-data p.pipe \
      --format olmo-core --out prep 2>time.txt >out.txt || { cat out.txt time.txt; exit 1; }
    grep -v TIME time.txt | tail -1
    grep web out.txt | head -1
    read -r _ wall user sys < <(grep TIME time.txt)
    bytes=$(stat -c %s corpus.jsonl)
    python3 -c "print(f'wall {$wall:.2f} s, cpu {$user + $sys:.2f} s: {$bytes / 1e6 / ($user + $sys):.1f} MB per core-second')"
  done
done
