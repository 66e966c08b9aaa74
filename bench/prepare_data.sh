#!/usr/bin/env bash
# Throughput of `pipe prepare-data` (BENCHMARKS.md): a generated ${MB:-100} MB JSONL corpus of
# 50-400-word documents, prepared for OLMo-core with the byte tokenizer and with a WordLevel
# tokenizer.json, on 1 core and on all cores (RAYON_NUM_THREADS). MB per core-second is the
# input over the process's CPU time (user + sys), which a loaded machine does not inflate. Usage:
#   bash bench/prepare_data.sh [PIPE_BINARY]   (default target/debug/pipe)
set -euo pipefail
pipe=$(realpath "${1:-target/debug/pipe}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
MB=${MB:-100} python3 - <<'PY'
import json, os, random
random.seed(7)
words = "the of and to in is was for on that with as by at from data".split()
with open("corpus.jsonl", "w") as f:
    size = 0
    while size < int(os.environ['MB']) * 1_000_000:
        line = json.dumps({"text": " ".join(random.choice(words) for _ in range(random.randint(50, 400)))}) + "\n"
        f.write(line)
        size += len(line)
vocab = {w: i for i, w in enumerate(["[UNK]"] + words)}
json.dump({"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
           "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
           "decoder": None, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}},
          open("tokenizer.json", "w"))
PY
for tok in bytes hf; do
  if [ "$tok" = bytes ]; then data='data web = text("corpus.jsonl")'; else
    data='data web = text("corpus.jsonl", tokenizer = "tokenizer.json")'; fi
  cat > p.pipe <<PIPE
pipeline t { seed = 1, batch = 4, seq_len = 32 }
model lm = decoder { vocab = 512, d_model = 16, layers = 1, heads = 2 }
$data
stage s { train = [lm], budget = 1_024, data = web, lr = constant(1e-3) }
PIPE
  for threads in 1 $(nproc); do
    rm -rf prep
    echo "== $tok tokenizer, $threads thread(s)"
    RAYON_NUM_THREADS=$threads /usr/bin/time -f "TIME %e %U %S" "$pipe" prepare-data p.pipe \
      --format olmo-core --out prep 2>time.txt >/dev/null
    grep -v TIME time.txt | tail -1
    read -r _ wall user sys < <(grep TIME time.txt)
    bytes=$(stat -c %s corpus.jsonl)
    python3 -c "print(f'wall {$wall:.2f} s, cpu {$user + $sys:.2f} s: {$bytes / 1e6 / ($user + $sys):.1f} MB per core-second')"
  done
done
