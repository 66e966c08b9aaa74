//! Training data: sources, tokenizers, packing, per-step mixture sampling, sample data.
