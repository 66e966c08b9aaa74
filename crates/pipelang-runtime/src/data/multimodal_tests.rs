//! Tests of multimodal records, the loader and the sample corpus, end to end on real files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::RgbImage;

use super::*;

const CFG: ImageConfig = ImageConfig {
    patch: 4,
    merge: 2,
    max_side: 16,
};

/// One generated sample corpus shared by the tests (generation is deterministic).
fn sample_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        generate_sample_data(dir.path(), 2025).unwrap();
        dir
    })
    .path()
}

fn spec(name: &str, kind: SourceKind, pattern: &str) -> SourceSpec {
    SourceSpec {
        name: name.into(),
        kind,
        patterns: vec![pattern.into()],
        column: None,
        caption: None,
    }
}

fn open(dir: &Path, kind: SourceKind, pattern: &str) -> Source {
    Source::open(&spec("s", kind, pattern), dir, &Tokenizer::Bytes, CFG).unwrap()
}

fn write_png(path: &Path, w: u32, h: u32) {
    RgbImage::from_pixel(w, h, image::Rgb([200, 10, 10]))
        .save(path)
        .unwrap();
}

const SP: SpecialIds = SpecialIds {
    eod: 256,
    image: 257,
    image_start: 258,
    image_end: 259,
    pad: 260,
};

fn image_block() -> Vec<u32> {
    let mut b = vec![SP.image_start];
    b.extend([SP.image; 4]);
    b.push(SP.image_end);
    b
}

fn tiny_image_text() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("img")).unwrap();
    write_png(&dir.path().join("img/a.png"), 16, 16);
    write_png(&dir.path().join("img/b.png"), 32, 32);
    std::fs::write(
        dir.path().join("pairs.jsonl"),
        "{\"image\": \"img/a.png\", \"text\": \"ab\"}\n{\"image\": \"img/b.png\", \"text\": \"cd\"}\n",
    )
    .unwrap();
    dir
}

#[test]
fn image_text_record_has_placeholders_mask_and_patches() {
    let dir = tiny_image_text();
    let mut s = open(dir.path(), SourceKind::ImageText, "*.jsonl");
    let seq = s.next_sequence(8).unwrap();
    let mut want = image_block();
    want.extend([b'a' as u32, b'b' as u32, SP.eod]);
    assert_eq!(seq.tokens, want);
    assert_eq!(
        seq.loss_mask,
        [false, false, false, false, false, false, true, true, true]
    );
    // The first caption token is a target (predicted from the image), image tokens are not.
    assert_eq!(seq.loss_tokens(), 3);
    assert_eq!(seq.images.len(), 1);
    let img = &seq.images[0];
    assert_eq!((img.rows, img.cols, img.n_patches()), (4, 4, 16));
    assert_eq!(img.data.len(), 16 * 48);
    // The 32x32 image is downscaled to max_side 16: the same 4 placeholders.
    let seq = s.next_sequence(8).unwrap();
    assert_eq!(&seq.tokens[..6], &image_block()[..]);
    assert_eq!(seq.images[0].n_patches(), 16);
}

#[test]
fn records_that_do_not_fit_start_the_next_sequence() {
    let dir = tiny_image_text();
    let mut s = open(dir.path(), SourceKind::ImageText, "*.jsonl");
    // 21 slots: two records of 9 fit, the third (9) does not fit the 3 left: padding.
    let seq = s.next_sequence(20).unwrap();
    assert_eq!(seq.images.len(), 2);
    assert_eq!(&seq.tokens[18..], &[SP.pad; 3]);
    assert_eq!(&seq.loss_mask[18..], &[false; 3]);
    let seq = s.next_sequence(20).unwrap();
    assert_eq!(&seq.tokens[..6], &image_block()[..]);
    assert_eq!(seq.tokens[6], b'a' as u32);
}

#[test]
fn long_records_split_between_text_tokens_never_inside_images() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("x.png"), 16, 16);
    std::fs::write(
        dir.path().join("d.jsonl"),
        "{\"items\": [{\"text\": \"0123456789\"}, {\"image\": \"x.png\"}, {\"text\": \"abc\"}, {\"image\": \"x.png\"}]}\n",
    )
    .unwrap();
    let mut s = open(dir.path(), SourceKind::Interleaved, "*.jsonl");
    // Record: 10 text + 6 image + 3 text + 6 image + eod = 26 tokens, 13 slots per sequence.
    let a = s.next_sequence(12).unwrap();
    let b = s.next_sequence(12).unwrap();
    let c = s.next_sequence(12).unwrap();
    // a: 10 digits, then the image (6) does not fit in 3 slots: padding.
    assert_eq!(a.images.len(), 0);
    assert_eq!(&a.tokens[10..], &[SP.pad; 3]);
    // b: image, "abc", then the second image does not fit in 4 slots.
    assert_eq!(b.images.len(), 1);
    assert_eq!(&b.tokens[6..9], &[b'a' as u32, b'b' as u32, b'c' as u32]);
    assert_eq!(&b.tokens[9..], &[SP.pad; 4]);
    // c: last image and end of document, then the record repeats (next epoch) if it fits.
    assert_eq!(
        &c.tokens[..7],
        &[&image_block()[..], &[SP.eod]].concat()[..]
    );
    assert_eq!(c.images.len(), 1);
    assert_eq!(s.epoch(), 1);
}

#[test]
fn multimodal_cursors_resume_the_identical_stream() {
    let dir = sample_dir();
    let lens = [32usize, 7, 128, 32, 16, 64, 9, 32, 40, 17, 128, 32];
    for (kind, pattern) in [
        (SourceKind::Interleaved, "interleaved/*.jsonl"),
        (SourceKind::Video, "long_video/*.jsonl"),
        (SourceKind::Interleaved, "long_doc/*.jsonl"),
        (SourceKind::ImageText, "caption/*.jsonl"),
    ] {
        let mut full = open(dir, kind, pattern);
        let all: Vec<_> = lens
            .iter()
            .map(|&l| full.next_sequence(l).unwrap())
            .collect();
        for cut in [1, 3, 6, 10] {
            let mut a = open(dir, kind, pattern);
            for &l in &lens[..cut] {
                a.next_sequence(l).unwrap();
            }
            let saved = ron::to_string(&a.cursor()).unwrap();
            let mut b = open(dir, kind, pattern);
            b.restore(&ron::from_str(&saved).unwrap()).unwrap();
            for (i, &l) in lens.iter().enumerate().skip(cut) {
                assert_eq!(
                    b.next_sequence(l).unwrap(),
                    all[i],
                    "{pattern} cut {cut} seq {i}"
                );
            }
        }
    }
}

#[test]
fn bad_multimodal_records_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("ok.png"), 16, 16);
    write_png(&dir.path().join("wide.png"), 24, 16);
    write_png(&dir.path().join("tiny.png"), 4, 4);
    std::fs::write(dir.path().join("junk.png"), b"garbage").unwrap();
    let cases = [
        (
            "{\"image\": \"gone.png\", \"text\": \"x\"}",
            "gone.png",
            "does not exist",
        ),
        (
            "{\"image\": \"junk.png\", \"text\": \"x\"}",
            "junk.png",
            "cannot be decoded",
        ),
        (
            "{\"image\": \"tiny.png\", \"text\": \"x\"}",
            "tiny.png",
            "smaller than one 8x8",
        ),
        (
            "{\"image\": 3, \"text\": \"x\"}",
            "`image` is a number",
            "expected",
        ),
        ("{\"image\": \"ok.png\"", "malformed JSON", "line"),
    ];
    for (line, a, b) in cases {
        std::fs::write(
            dir.path().join("p.jsonl"),
            format!("{{\"image\": \"ok.png\", \"text\": \"fine\"}}\n{line}\n"),
        )
        .unwrap();
        let mut s = open(dir.path(), SourceKind::ImageText, "p.jsonl");
        s.next_sequence(10).unwrap();
        let msg = s.next_sequence(10).unwrap_err().to_string();
        assert!(
            msg.contains("p.jsonl:2") && msg.contains(a) && msg.contains(b),
            "{msg}"
        );
    }

    std::fs::write(
        dir.path().join("v.jsonl"),
        "{\"frames\": [\"ok.png\", \"wide.png\"], \"text\": \"moves\"}\n",
    )
    .unwrap();
    let mut s = open(dir.path(), SourceKind::Video, "v.jsonl");
    let msg = s.next_sequence(32).unwrap_err().to_string();
    assert!(
        msg.contains("v.jsonl:1") && msg.contains("first frame"),
        "{msg}"
    );

    // An image that needs more tokens than a whole sequence holds.
    std::fs::write(
        dir.path().join("p.jsonl"),
        "{\"image\": \"ok.png\", \"text\": \"x\"}\n",
    )
    .unwrap();
    let mut s = open(dir.path(), SourceKind::ImageText, "p.jsonl");
    let msg = s.next_sequence(4).unwrap_err().to_string();
    assert!(
        msg.contains("p.jsonl:1") && msg.contains("needs 6 tokens"),
        "{msg}"
    );
}

#[test]
fn a_caption_field_on_jsonl_records_is_an_error_not_ignored() {
    let dir = tiny_image_text();
    let mut sp = spec("s", SourceKind::ImageText, "*.jsonl");
    sp.caption = Some("caption".into());
    let Err(e) = Source::open(&sp, dir.path(), &Tokenizer::Bytes, CFG) else {
        panic!("a caption field on JSONL records was accepted");
    };
    let msg = e.to_string();
    assert!(
        msg.contains(".jsonl") && msg.contains("remove `caption`"),
        "{msg}"
    );
}

#[test]
fn caption_pairs_for_coca() {
    let dir = tiny_image_text();
    let mut s = open(dir.path(), SourceKind::ImageText, "*.jsonl");
    let p = s.next_caption_pair().unwrap();
    assert_eq!(p.caption, vec![b'a' as u32, b'b' as u32]);
    assert_eq!(p.image.n_patches(), 16);
    assert_eq!(
        s.next_caption_pair().unwrap().caption,
        vec![b'c' as u32, b'd' as u32]
    );
    assert_eq!(s.epoch(), 0);
    assert_eq!(
        s.next_caption_pair().unwrap().caption,
        vec![b'a' as u32, b'b' as u32]
    );
    assert_eq!(s.epoch(), 1);

    let mut v = open(sample_dir(), SourceKind::Video, "long_video/*.jsonl");
    assert!(matches!(
        v.next_caption_pair(),
        Err(DataError::WrongKind { .. })
    ));
}

fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn sample_data_is_deterministic_small_and_fast() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let summary = generate_sample_data(a.path(), 7).unwrap();
    let took = t0.elapsed();
    generate_sample_data(b.path(), 7).unwrap();
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    assert_eq!(ta, tb, "same seed, same bytes");
    assert_eq!(ta.len(), summary.files);
    let bytes: u64 = ta.values().map(|v| v.len() as u64).sum();
    assert_eq!(bytes, summary.bytes);
    assert!(bytes < 4_000_000, "{bytes} bytes");
    assert!(took.as_secs_f64() < 10.0, "{took:?}");
    assert!(summary.images > 1000);

    let c = tempfile::tempdir().unwrap();
    generate_sample_data(c.path(), 8).unwrap();
    assert_ne!(ta, tree(c.path()), "another seed, another corpus");
}

/// The data declarations of pipelines/kimi_vl.pipe, pointed at the generated corpus.
fn kimi_sources() -> Vec<SourceSpec> {
    vec![
        spec("web_text", SourceKind::Text, "text/*.jsonl"),
        spec("hq_text", SourceKind::Text, "text_hq/*.jsonl"),
        spec("image_text", SourceKind::ImageText, "caption/*.jsonl"),
        spec(
            "interleaved",
            SourceKind::Interleaved,
            "interleaved/*.jsonl",
        ),
        spec("ocr", SourceKind::ImageText, "ocr/*.jsonl"),
        spec(
            "hq_multimodal",
            SourceKind::Interleaved,
            "multimodal_hq/*.jsonl",
        ),
        spec("long_text", SourceKind::Text, "long_text/*.jsonl"),
        spec("long_video", SourceKind::Video, "long_video/*.jsonl"),
        spec("long_doc", SourceKind::Interleaved, "long_doc/*.jsonl"),
        spec("heldout", SourceKind::ImageText, "caption_heldout/*.jsonl"),
    ]
}

#[test]
fn every_kimi_source_reads_from_the_sample_corpus() {
    let dir = sample_dir();
    let cfg = ImageConfig {
        max_side: 32,
        ..CFG
    };
    for spec in kimi_sources() {
        let mut s = Source::open(&spec, dir, &Tokenizer::Bytes, cfg).unwrap();
        let mut images = 0;
        let mut loss = 0;
        for _ in 0..40 {
            let seq = s.next_sequence(64).unwrap();
            assert_eq!(seq.tokens.len(), 65);
            assert!(seq.tokens.iter().all(|&t| t < 261));
            let placeholders = seq.tokens.iter().filter(|&&t| t == SP.image).count();
            let merged: usize = seq.images.iter().map(|i| i.merged_tokens(2)).sum();
            assert_eq!(placeholders, merged, "{}", spec.name);
            images += seq.images.len();
            loss += seq.loss_tokens();
        }
        assert!(loss > 0, "{}", spec.name);
        assert_eq!(images > 0, spec.kind != SourceKind::Text, "{}", spec.name);
    }
    // Held-out captions are distinct: retrieval has one right answer.
    let text = std::fs::read_to_string(dir.join("caption_heldout/heldout.jsonl")).unwrap();
    let caps: std::collections::HashSet<_> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].to_string())
        .collect();
    assert_eq!(caps.len(), 64);
}

#[test]
fn loader_follows_the_joint_ramp_and_resumes_exactly() {
    let dir = sample_dir();
    let specs: Vec<SourceSpec> = kimi_sources()
        .into_iter()
        .filter(|s| ["web_text", "image_text", "interleaved", "ocr"].contains(&s.name.as_str()))
        .collect();
    let new_loader = || {
        let sources = specs
            .iter()
            .map(|s| Source::open(s, dir, &Tokenizer::Bytes, CFG).unwrap())
            .collect();
        DataLoader::new(sources, 2025)
    };
    let steps = 24;
    let shares = |step: usize| {
        let m = 0.4 * step as f64 / (steps - 1) as f64;
        vec![1.0 - m, 0.5 * m, 0.3 * m, 0.2 * m]
    };
    let mut full = new_loader();
    let mut saved = None;
    let mut batches = Vec::new();
    let mut realised = [0usize; 4];
    for step in 0..steps {
        if step == 11 {
            saved = Some(ron::to_string(&full.state()).unwrap());
        }
        let b = full.next_batch(&shares(step), 16, 32).unwrap();
        assert_eq!(b.sequences.len(), 16);
        for (seq, &src) in b.sequences.iter().zip(&b.source_of) {
            if src == 0 {
                assert!(seq.images.is_empty() && seq.loss_tokens() == 32);
            }
        }
        for (r, c) in realised.iter_mut().zip(&b.counts) {
            *r += c;
        }
        batches.push(b);
    }
    assert_eq!(batches[0].counts, vec![16, 0, 0, 0]);
    let mm: usize = realised[1..].iter().sum();
    assert!(
        (mm as f64 / (steps * 16) as f64 - 0.2).abs() < 0.02,
        "{realised:?}"
    );

    let mut resumed = new_loader();
    resumed
        .restore(&ron::from_str(saved.as_ref().unwrap()).unwrap())
        .unwrap();
    for (step, want) in batches.iter().enumerate().skip(11) {
        let got = resumed.next_batch(&shares(step), 16, 32).unwrap();
        assert_eq!(got.source_of, want.source_of, "step {step}");
        assert_eq!(got.sequences, want.sequences, "step {step}");
    }
}
