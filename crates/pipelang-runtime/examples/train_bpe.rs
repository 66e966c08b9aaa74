//! Trains a byte-level BPE `tokenizer.json` with the `tokenizers` crate's own trainer, for the
//! `pipe prepare-data` benchmark (bench/prepare_data_bpe.sh): no BPE tokenizer ships with the
//! repository and nothing may be downloaded at run time.
//!
//!     cargo run -p pipelang-runtime --example train_bpe -- CORPUS.jsonl OUT.json [VOCAB]
//!
//! CORPUS is JSONL (`{"text": ...}` per line), as text sources read it; VOCAB defaults to 8192.

use std::io::BufRead;

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{NormalizerWrapper, PostProcessorWrapper, TokenizerBuilder};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [corpus, out, rest @ ..] = args.as_slice() else {
        return Err("usage: train_bpe CORPUS.jsonl OUT.json [VOCAB]".into());
    };
    let vocab: usize = rest.first().map_or(Ok(8192), |v| v.parse())?;
    let file = std::io::BufReader::new(std::fs::File::open(corpus)?);
    let mut texts = vec![];
    for line in file.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)?;
        if let Some(t) = v.get("text").and_then(|t| t.as_str()) {
            texts.push(t.to_string());
        }
    }
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab)
        .min_frequency(2)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tokenizer = TokenizerBuilder::<
        BPE,
        NormalizerWrapper,
        ByteLevel,
        PostProcessorWrapper,
        ByteLevel,
    >::new()
    .with_model(BPE::default())
    .with_pre_tokenizer(Some(ByteLevel::default()))
    .with_decoder(Some(ByteLevel::default()))
    .build()?;
    tokenizer.train(&mut trainer, texts.iter())?;
    tokenizer.save(out, false)?;
    eprintln!(
        "trained a byte-level BPE of {} ids on {} documents: {out}",
        tokenizer.get_vocab_size(true),
        texts.len()
    );
    Ok(())
}
