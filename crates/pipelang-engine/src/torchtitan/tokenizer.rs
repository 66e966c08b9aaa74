//! pipelang's byte tokenizer as a HuggingFace tokenizer folder, so that torchtitan's own
//! `HuggingFaceTokenizer` (and its `MultiModalTokenizer`) give a byte-level recipe the ids
//! `pipe run` trains on: id b for byte b, then the specials in the language's order
//! (`pipelang::schema::tokenizer`). A byte-level BPE without merges does that: the ByteLevel
//! pre-tokenizer turns every byte into one character (GPT-2's table), and each character is one
//! vocabulary entry whose id is the byte's value.

use std::path::PathBuf;

use pipelang::schema::tokenizer::{BYTE_BASE, SPECIALS};
use serde_json::{Value, json};

/// The folder under the export, torchtitan's `hf_assets_path` for byte-level runs.
pub const DIR: &str = "tokenizer-bytes";

/// The specials' token strings, in the language's order (end of document, image placeholder,
/// image start, image end, padding): ids 256..261.
const TOKENS: [&str; SPECIALS as usize] = [
    "<|eod|>",
    "<|image|>",
    "<|image_start|>",
    "<|image_end|>",
    "<|pad|>",
];

/// GPT-2's printable stand-in for byte `b` (the table the ByteLevel pre-tokenizer uses):
/// printable Latin-1 bytes stand for themselves, the others for 256, 257, ... in byte order.
fn byte_char(b: u8) -> char {
    let printable = |x: u8| matches!(x, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        return char::from(b);
    }
    let before = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + before).expect("below the surrogates")
}

fn tokenizer_json() -> Value {
    let vocab: serde_json::Map<String, Value> = (0..=255u8)
        .map(|b| (byte_char(b).to_string(), json!(b)))
        .collect();
    let added: Vec<Value> = TOKENS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({
                "id": BYTE_BASE + i as u64, "content": t, "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true
            })
        })
        .collect();
    let byte_level = json!({
        "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false
    });
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": null,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": []
        }
    })
}

/// `tokenizer_config.json`: the end-of-document token as torchtitan's EOS (appended after
/// every document, as `pipe run` packs them; there is no BOS), padding, and under `pipelang`
/// the multimodal tokens for torchtitan's `MultiModalTokenizer` (`pipelang_titan.py` reads them).
fn tokenizer_config() -> Value {
    json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": TOKENS[0],
        "pad_token": TOKENS[4],
        "model_max_length": 1_000_000_000u64,
        "pipelang": {
            "image_token": TOKENS[1],
            "video_token": TOKENS[1],
            "vision_start_token": TOKENS[2],
            "vision_end_token": TOKENS[3],
            "pad_token": TOKENS[4]
        }
    })
}

/// The folder's files, relative to the export.
pub fn files() -> Vec<(PathBuf, String)> {
    let pretty = |v: Value| serde_json::to_string_pretty(&v).expect("JSON") + "\n";
    vec![
        (
            PathBuf::from(DIR).join("tokenizer.json"),
            pretty(tokenizer_json()),
        ),
        (
            PathBuf::from(DIR).join("tokenizer_config.json"),
            pretty(tokenizer_config()),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_has_its_own_character() {
        let chars: std::collections::BTreeSet<char> = (0..=255u8).map(byte_char).collect();
        assert_eq!(chars.len(), 256);
        assert_eq!(byte_char(b'a'), 'a');
        // GPT-2's table: the space is the 33rd non-printable byte, `Ġ`; newline `Ċ`; the soft
        // hyphen, the first after the Latin-1 gap, `Ń`.
        assert_eq!(byte_char(b' '), 'Ġ');
        assert_eq!(byte_char(b'\n'), 'Ċ');
        assert_eq!(byte_char(0xAD), '\u{143}');
    }
}
