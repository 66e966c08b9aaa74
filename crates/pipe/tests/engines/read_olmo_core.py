"""Reads a `pipe prepare-data --format olmo-core` folder with OLMo-core's own numpy dataset
classes and prints, per source: the token stream of NumpyFSLDataset (sequence length 1, so no
token is dropped), its instances at sequence length 7 with their document lengths, and the
document boundaries OLMo-core finds, from the EOS tokens in the array and from the .csv.gz
metadata."""
import json
import logging
import sys
from pathlib import Path

logging.disable(logging.CRITICAL)
import numpy as np  # noqa: E402
from olmo_core.data.numpy_dataset import NumpyFSLDataset  # noqa: E402
from olmo_core.data.utils import iter_document_indices  # noqa: E402

out = Path(sys.argv[1])
manifest = json.loads((out / "manifest.json").read_text())
result = {}
for src in manifest["sources"]:
    paths = [str(out / s["outputs"][0]) for s in src["shards"]]
    dtype = getattr(np, src["dtype"])
    common = dict(
        pad_token_id=src["pad"],
        eos_token_id=src["eos"],
        vocab_size=src["vocab_size"],
        dtype=dtype,
    )
    ones = NumpyFSLDataset(*paths, sequence_length=1, **common)
    stream = [int(ones[i]["input_ids"][0]) for i in range(len(ones))]
    sevens = NumpyFSLDataset(*paths, sequence_length=7, generate_doc_lengths=True, **common)
    chunks = []
    for i in range(len(sevens)):
        item = sevens[i]
        chunks.append(
            {
                "input_ids": [int(t) for t in item["input_ids"]],
                "doc_lens": [int(t) for t in item["doc_lens"]],
            }
        )
    from_array, from_metadata = [], []
    for p in paths:
        from_array.append(
            [list(map(int, se)) for se in iter_document_indices(p, eos_token_id=src["eos"], dtype=dtype)]
        )
        from_metadata.append(
            [
                list(map(int, se))
                for se in iter_document_indices(
                    p, eos_token_id=src["eos"], dtype=dtype, use_array_if_local=False
                )
            ]
        )
    result[src["name"]] = {
        "stream": stream,
        "sizes": [int(n) for n in ones.file_sizes],
        "chunks": chunks,
        "from_array": from_array,
        "from_metadata": from_metadata,
    }
print(json.dumps(result))
