"""Reads a `pipe prepare-data --format megatron` folder with megatron-core's own IndexedDataset
and prints, per source, each document's tokens (as the dataset returns its sequences) as JSON."""
import json
import logging
import sys
from pathlib import Path

logging.disable(logging.CRITICAL)
from megatron.core.datasets.indexed_dataset import IndexedDataset  # noqa: E402

out = Path(sys.argv[1])
manifest = json.loads((out / "manifest.json").read_text())
result = {}
for src in manifest["sources"]:
    docs = []
    dtypes = set()
    for shard in src["shards"]:
        prefix = str(out / shard["outputs"][0])[: -len(".bin")]
        ds = IndexedDataset(prefix)
        idx = ds.document_indices
        for d in range(len(idx) - 1):
            seqs = [ds[i] for i in range(idx[d], idx[d + 1])]
            dtypes.update(str(s.dtype) for s in seqs)
            docs.append([int(t) for s in seqs for t in s])
        assert ds.sequence_lengths.sum() == shard["tokens"], prefix
    result[src["name"]] = {"documents": docs, "dtypes": sorted(dtypes)}
print(json.dumps(result))
