//! WebDataset sources end to end on tar shards written by the tests: bad samples counted and
//! skipped, captions from `.txt` or a `.json` field, a brace range of shards, exact resume.

use std::path::Path;

use super::*;
use pipelang_test_support::tar::{jpeg, png, write};

const CFG: ImageConfig = ImageConfig {
    patch: 4,
    merge: 2,
    max_side: 16,
};

/// Three shards of four samples; shard 1 holds a sample without a caption, one without an
/// image and one whose image does not decode.
fn shards(dir: &Path) {
    std::fs::create_dir_all(dir.join("wds")).unwrap();
    for shard in 0..3u32 {
        let mut entries: Vec<(String, Vec<u8>)> = vec![];
        for k in 0..4u32 {
            let key = format!("{shard}{k:04}");
            let caption = format!("shard {shard} sample {k}: {}", "word ".repeat(k as usize));
            let (img, cap) = match (shard, k) {
                (1, 1) => (Some(png(16, 8, k)), None),
                (1, 2) => (None, Some(caption)),
                (1, 3) => (Some(b"not an image".to_vec()), Some(caption)),
                (_, k) if k % 2 == 0 => (Some(png(16, 16, k + shard)), Some(caption)),
                _ => (Some(jpeg(24, 16, k + shard)), Some(caption)),
            };
            if let Some(img) = img {
                let ext = if img.starts_with(&[0xff, 0xd8]) {
                    "jpg"
                } else {
                    "png"
                };
                entries.push((format!("{key}.{ext}"), img));
            }
            if let Some(c) = cap {
                entries.push((format!("{key}.txt"), c.clone().into_bytes()));
                entries.push((
                    format!("{key}.json"),
                    serde_json::json!({ "caption": format!("json {c}"), "n": k })
                        .to_string()
                        .into_bytes(),
                ));
            }
        }
        write(&dir.join(format!("wds/{shard:03}.tar")), &entries);
    }
}

fn spec(pattern: &str, caption: Option<&str>) -> SourceSpec {
    SourceSpec {
        name: "laion".into(),
        kind: SourceKind::ImageText,
        patterns: vec![pattern.into()],
        column: None,
        caption: caption.map(str::to_string),
    }
}

fn open(dir: &Path, caption: Option<&str>) -> Source {
    Source::open(
        &spec("wds/{000..002}.tar", caption),
        dir,
        &Tokenizer::Bytes,
        CFG,
    )
    .unwrap()
}

#[test]
fn bad_samples_are_counted_and_skipped_and_captions_come_from_txt_or_json() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path());
    let mut s = open(dir.path(), None);
    assert_eq!(s.files().len(), 3);
    let mut captions = vec![];
    for _ in 0..9 {
        let pair = s.next_caption_pair().unwrap();
        assert!(pair.image.n_patches() > 0);
        captions.push(Tokenizer::Bytes.decode(&pair.caption));
    }
    // 12 samples, 3 bad: the 9 good ones in order, then the first again (epoch 1).
    assert_eq!(captions[0], "shard 0 sample 0:");
    assert_eq!(captions[4], "shard 1 sample 0:");
    assert_eq!(captions[5], "shard 2 sample 0:");
    let c = s.cursor();
    assert_eq!(c.bad_samples, 3);
    let first = c.first_bad.unwrap();
    assert!(
        first.contains("001.tar, sample 2 (`10001`): no caption"),
        "{first}"
    );
    assert_eq!(
        Tokenizer::Bytes.decode(&s.next_caption_pair().unwrap().caption),
        captions[0]
    );
    assert_eq!(s.epoch(), 1);

    let mut j = open(dir.path(), Some("caption"));
    assert_eq!(
        Tokenizer::Bytes.decode(&j.next_caption_pair().unwrap().caption),
        "json shard 0 sample 0: "
    );
    let mut n = open(dir.path(), Some("n"));
    let err = n.next_caption_pair().err().unwrap();
    let msg = err.to_string();
    assert!(
        matches!(err, DataError::AllSamplesBad { count: 12, .. }),
        "{msg}"
    );
    assert!(msg.contains("`n` is not a string but a number"), "{msg}");
}

#[test]
fn a_cursor_resumes_the_identical_stream_across_shards_and_bad_samples() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path());
    let lens = [32usize, 7, 64, 32, 16, 9, 40, 17, 64, 32, 20, 33, 48];
    let mut full = open(dir.path(), None);
    let all: Vec<_> = lens
        .iter()
        .map(|&l| full.next_sequence(l).unwrap())
        .collect();
    let end = full.cursor();
    assert!(all.iter().any(|s| !s.images.is_empty()));
    for cut in 0..lens.len() {
        let mut a = open(dir.path(), None);
        for &l in &lens[..cut] {
            a.next_sequence(l).unwrap();
        }
        let saved = ron::to_string(&a.cursor()).unwrap();
        let mut b = open(dir.path(), None);
        b.restore(&ron::from_str(&saved).unwrap()).unwrap();
        for (i, &l) in lens.iter().enumerate().skip(cut) {
            assert_eq!(b.next_sequence(l).unwrap(), all[i], "cut {cut} seq {i}");
        }
        assert_eq!(b.cursor(), end, "cut {cut}");
    }
}

#[test]
fn a_shard_of_the_range_that_is_missing_or_truncated_is_named() {
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path());
    let err = Source::open(
        &spec("wds/{000..003}.tar", None),
        dir.path(),
        &Tokenizer::Bytes,
        CFG,
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("wds/003.tar: no such file"),
        "{err}"
    );

    let p = dir.path().join("wds/002.tar");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let mut s = open(dir.path(), None);
    let err = (0..20).find_map(|_| s.next_caption_pair().err()).unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("002.tar: byte") && msg.contains("truncated"),
        "{msg}"
    );

    std::fs::write(dir.path().join("wds/x.jsonl"), "{}\n").unwrap();
    let err = Source::open(&spec("wds/*", None), dir.path(), &Tokenizer::Bytes, CFG)
        .err()
        .unwrap();
    assert!(matches!(err, DataError::UnsupportedFile { .. }), "{err}");
}

#[test]
fn the_census_counts_samples_as_training_reads_them_and_names_the_bad_ones() {
    use super::census::count_source;
    let dir = tempfile::tempdir().unwrap();
    shards(dir.path());
    let bar = indicatif::ProgressBar::hidden();
    let count = |caption: Option<&str>| {
        count_source(
            SourceKind::ImageText,
            dir.path(),
            &["wds/{000..002}.tar".into()],
            "text",
            caption,
            &Tokenizer::Bytes,
            CFG,
            &bar,
        )
    };
    let c = count(None);
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    assert_eq!(
        (c.count.files, c.count.documents, c.count.images),
        (3, 9, 9)
    );
    assert_eq!(c.count.bad_samples, 3);
    assert_eq!(c.bad.len(), 3);
    assert!(
        c.bad[0].contains("001.tar, sample 2 (`10001`): no caption"),
        "{:?}",
        c.bad
    );
    assert!(
        c.bad[1].contains("sample 3 (`10002`): no image"),
        "{:?}",
        c.bad
    );
    assert!(
        c.bad[2].contains("`10003.png` cannot be decoded"),
        "{:?}",
        c.bad
    );
    // One pass of training emits exactly the tokens counted: packed into one long sequence.
    let mut s = open(dir.path(), None);
    let n = c.count.tokens as usize;
    let seq = s.next_sequence(n + 64).unwrap();
    let eod = Tokenizer::Bytes.specials().eod;
    let eods = seq.tokens[..n].iter().filter(|&&t| t == eod).count();
    assert_eq!((eods, seq.tokens[n - 1]), (9, eod));

    let c = count(Some("n"));
    assert_eq!(c.count.documents, 0);
    assert!(
        matches!(
            c.problems[0].error,
            DataError::AllSamplesBad { count: 12, .. }
        ),
        "{:?}",
        c.problems
    );

    let p = dir.path().join("wds/001.tar");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 1024]).unwrap();
    let c = count(None);
    let msg = c.problems[0].error.to_string();
    assert!(
        msg.contains("001.tar: byte") && msg.contains("end-of-archive"),
        "{msg}"
    );
}
