//! The sample corpus of the smoke profile, generated on disk: a small world of coloured shapes
//! that every data kind of the reference recipe talks about, so the tiny models can learn it.
//!
//! Layout under `dir` (each folder holds `*.jsonl`, images in its own `images/` or `frames/`):
//!
//! | folder           | kind          | content                                             |
//! |------------------|---------------|-----------------------------------------------------|
//! | text/            | text          | noisy web-like pages about the shapes               |
//! | text_hq/         | text          | clean, regular lessons                              |
//! | long_text/       | text          | long stories of moving shapes with questions at the end |
//! | caption/         | image_text    | 32x32 shape pictures, captions "small red circle, top left" |
//! | long_text_heldout/ | text        | 8 held-out long stories for the long-context evaluation |
//! | caption_heldout/ | image_text    | 64 distinct held-out pairs for retrieval evaluation |
//! | ocr/             | image_text    | 48x16 pictures of a rendered word or number, text = the word |
//! | interleaved/     | interleaved   | pages mixing sentences and 1-3 pictures             |
//! | multimodal_hq/   | interleaved   | clean picture + exact description pairs             |
//! | long_video/      | video         | 6-frame clips of a shape moving, with a description |
//! | long_doc/        | interleaved   | long illustrated stories                            |
//!
//! Everything comes from one ChaCha stream per folder seeded by `seed`: the same seed gives
//! byte-identical files.

mod draw;
mod font;
mod text;
mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::RgbImage;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use serde_json::{Value, json};

use super::error::{DataError, Result};
use world::{Dice, Obj, Place, Scene};

/// Side of the shape pictures in pixels.
pub const PICTURE_SIDE: u32 = 32;

/// What [`generate_sample_data`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSummary {
    pub dir: PathBuf,
    /// Records (JSONL lines) per folder.
    pub records: BTreeMap<String, usize>,
    pub images: usize,
    pub files: usize,
    pub bytes: u64,
}

struct Writer {
    root: PathBuf,
    summary: SampleSummary,
}

impl Writer {
    fn dir(&self, folder: &str) -> Result<PathBuf> {
        let d = self.root.join(folder);
        std::fs::create_dir_all(&d).map_err(|e| DataError::io(&d, e))?;
        Ok(d)
    }

    fn write(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        std::fs::write(path, bytes).map_err(|e| DataError::io(path, e))?;
        self.summary.files += 1;
        self.summary.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Writes `img` as `folder/rel` and returns `rel` (the path the JSONL refers to).
    fn png(&mut self, folder: &str, rel: String, img: &RgbImage) -> Result<String> {
        let path = self.dir(folder)?.join(&rel);
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| DataError::io(&path, std::io::Error::other(e)))?;
        self.write(&path, &bytes)?;
        self.summary.images += 1;
        Ok(rel)
    }

    fn jsonl(&mut self, folder: &str, file: &str, lines: &[Value]) -> Result<()> {
        let path = self.dir(folder)?.join(file);
        let mut out = String::new();
        for l in lines {
            out.push_str(&l.to_string());
            out.push('\n');
        }
        self.write(&path, out.as_bytes())?;
        *self.summary.records.entry(folder.to_string()).or_default() += lines.len();
        Ok(())
    }
}

fn dice(seed: u64, stream: u64) -> Dice {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    Dice(rng)
}

/// A scene picture; each object is jittered by up to one pixel so no two pictures are equal.
fn render(scene: &Scene, d: &mut Dice) -> RgbImage {
    let b = scene.background;
    let mut img = draw::canvas(PICTURE_SIDE, PICTURE_SIDE, [b, b, b]);
    for (o, p) in &scene.objs {
        let (cx, cy) = p.centre(PICTURE_SIDE);
        let jx = d.range(0, 2) as f32 - 1.0;
        let jy = d.range(0, 2) as f32 - 1.0;
        draw::draw_obj(&mut img, o, cx + jx, cy + jy);
    }
    img
}

/// Writes the sample corpus into `dir` (created if needed) and returns what it wrote.
pub fn generate_sample_data(dir: &Path, seed: u64) -> Result<SampleSummary> {
    let mut w = Writer {
        root: dir.to_path_buf(),
        summary: SampleSummary {
            dir: dir.to_path_buf(),
            records: BTreeMap::new(),
            images: 0,
            files: 0,
            bytes: 0,
        },
    };
    text_folders(&mut w, seed)?;
    captions(&mut w, seed)?;
    ocr(&mut w, seed)?;
    interleaved(&mut w, seed)?;
    videos(&mut w, seed)?;
    long_docs(&mut w, seed)?;
    Ok(w.summary)
}

fn text_folders(w: &mut Writer, seed: u64) -> Result<()> {
    let mut d = dice(seed, 1);
    for file in ["web_0.jsonl", "web_1.jsonl"] {
        let docs: Vec<Value> = (0..150)
            .map(|_| json!({ "text": text::web_doc(&mut d) }))
            .collect();
        w.jsonl("text", file, &docs)?;
    }
    let mut d = dice(seed, 2);
    let docs: Vec<Value> = (0..200)
        .map(|_| json!({ "text": text::hq_doc(&mut d) }))
        .collect();
    w.jsonl("text_hq", "hq.jsonl", &docs)?;
    let mut d = dice(seed, 3);
    let docs: Vec<Value> = (0..30)
        .map(|_| json!({ "text": text::long_doc(&mut d) }))
        .collect();
    w.jsonl("long_text", "long.jsonl", &docs)?;
    // Stories of their own stream, never trained on: the loss at a grown context before and
    // after a context extension.
    let mut d = dice(seed, 11);
    let docs: Vec<Value> = (0..8)
        .map(|_| json!({ "text": text::long_doc(&mut d) }))
        .collect();
    w.jsonl("long_text_heldout", "heldout.jsonl", &docs)
}

fn captions(w: &mut Writer, seed: u64) -> Result<()> {
    let mut d = dice(seed, 4);
    let mut lines = Vec::new();
    for i in 0..320 {
        let scene = d.scene(1);
        let rel = w.png(
            "caption",
            format!("images/c{i:04}.png"),
            &render(&scene, &mut d),
        )?;
        lines.push(json!({ "image": rel, "text": scene.caption() }));
    }
    w.jsonl("caption", "train.jsonl", &lines)?;

    // Held-out pairs have pairwise distinct captions, so retrieval has one right answer.
    let mut d = dice(seed, 5);
    let mut seen = std::collections::HashSet::new();
    let mut lines = Vec::new();
    while lines.len() < 64 {
        let scene = d.scene(1);
        if !seen.insert(scene.caption()) {
            continue;
        }
        let i = lines.len();
        let rel = w.png(
            "caption_heldout",
            format!("images/h{i:04}.png"),
            &render(&scene, &mut d),
        )?;
        lines.push(json!({ "image": rel, "text": scene.caption() }));
    }
    w.jsonl("caption_heldout", "heldout.jsonl", &lines)
}

fn ocr(w: &mut Writer, seed: u64) -> Result<()> {
    let mut d = dice(seed, 6);
    let mut words: Vec<&str> = world::COLOURS.iter().map(|c| c.word()).collect();
    words.extend(text::shape_words().into_iter().filter(|s| s.len() <= 6));
    words.extend(["small", "large", "top", "left", "right", "bottom", "center"]);
    let mut lines = Vec::new();
    for i in 0..160 {
        let label = if d.chance(30) {
            format!("{}", d.below(1_000_000))
        } else {
            d.pick(&words).to_uppercase()
        };
        debug_assert!(font::can_render(&label) && label.len() <= 6);
        let (bg, fg) = if d.chance(50) {
            ([20, 20, 20], [235, 235, 235])
        } else {
            ([235, 230, 215], [20, 20, 60])
        };
        let mut img = draw::canvas(48, 16, bg);
        draw::draw_text(&mut img, &label, 3, 2, fg);
        let rel = w.png("ocr", format!("images/o{i:04}.png"), &img)?;
        lines.push(json!({ "image": rel, "text": label }));
    }
    w.jsonl("ocr", "ocr.jsonl", &lines)
}

fn interleaved(w: &mut Writer, seed: u64) -> Result<()> {
    let mut d = dice(seed, 7);
    let mut lines = Vec::new();
    for i in 0..120 {
        let mut items = Vec::new();
        if d.chance(50) {
            items.push(json!({ "text": format!("{} ", text::fact(&mut d)) }));
        }
        for j in 0..d.range(1, 3) {
            let n = d.range(1, 2);
            let scene = d.scene(n);
            items.push(json!({ "text": text::picture_intro(&mut d) }));
            let rel = w.png(
                "interleaved",
                format!("images/i{i:04}_{j}.png"),
                &render(&scene, &mut d),
            )?;
            items.push(json!({ "image": rel }));
            let about = text::fact_about(&mut d, &scene.objs[0].0);
            items.push(json!({ "text": format!(" {} {about} ", scene.sentence()) }));
        }
        lines.push(json!({ "items": items }));
    }
    w.jsonl("interleaved", "docs.jsonl", &lines)?;

    let mut d = dice(seed, 8);
    let mut lines = Vec::new();
    for i in 0..100 {
        let mut items = Vec::new();
        for j in 0..d.range(1, 2) {
            let scene = d.scene(1);
            let rel = w.png(
                "multimodal_hq",
                format!("images/m{i:04}_{j}.png"),
                &render(&scene, &mut d),
            )?;
            items.push(json!({ "image": rel }));
            items.push(json!({ "text": format!("{} ", scene.sentence()) }));
        }
        lines.push(json!({ "items": items }));
    }
    w.jsonl("multimodal_hq", "docs.jsonl", &lines)
}

fn videos(w: &mut Writer, seed: u64) -> Result<()> {
    const FRAMES: usize = 6;
    let mut d = dice(seed, 9);
    let mut lines = Vec::new();
    for i in 0..40 {
        let obj: Obj = d.obj();
        let from = d.place();
        let mut to = d.place();
        while to == from {
            to = d.place();
        }
        let b = d.pick(&[16u8, 28, 40]);
        let (x0, y0) = from.centre(PICTURE_SIDE);
        let (x1, y1) = to.centre(PICTURE_SIDE);
        let mut frames = Vec::new();
        for f in 0..FRAMES {
            let t = f as f32 / (FRAMES - 1) as f32;
            let mut img = draw::canvas(PICTURE_SIDE, PICTURE_SIDE, [b, b, b]);
            draw::draw_obj(&mut img, &obj, x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            frames.push(w.png("long_video", format!("frames/v{i:04}_{f}.png"), &img)?);
        }
        lines.push(json!({ "frames": frames, "text": text::movement(&obj, from, to) }));
    }
    w.jsonl("long_video", "videos.jsonl", &lines)
}

fn long_docs(w: &mut Writer, seed: u64) -> Result<()> {
    let mut d = dice(seed, 10);
    let mut lines = Vec::new();
    for i in 0..24 {
        let mut scene = d.scene(2);
        let start = scene.clone();
        let mut items =
            vec![json!({ "text": format!("An illustrated story. {} ", scene.sentence()) })];
        for j in 0..d.range(4, 7) {
            let rel = w.png(
                "long_doc",
                format!("images/l{i:04}_{j}.png"),
                &render(&scene, &mut d),
            )?;
            items.push(json!({ "image": rel }));
            let k = d.below(scene.objs.len());
            let to: Place = d.place();
            let mut t = format!(" Picture {} shows it. ", j + 1);
            if scene.objs.iter().all(|(_, q)| *q != to) {
                let (o, from) = scene.objs[k];
                t.push_str(&text::movement(&o, from, to));
                t.push(' ');
                scene.objs[k].1 = to;
            } else {
                t.push_str("Then nothing moves. ");
            }
            let k = d.below(scene.objs.len());
            t.push_str(&text::fact_about(&mut d, &scene.objs[k].0));
            t.push(' ');
            items.push(json!({ "text": t }));
        }
        for ((o, first), (_, last)) in start.objs.iter().zip(&scene.objs) {
            items.push(json!({ "text": format!(
                "Where did the {} start? {}. Where is it now? {}. ",
                o.name(),
                text::capitalise(&world::at(*first)),
                text::capitalise(&world::at(*last))
            ) }));
        }
        lines.push(json!({ "items": items }));
    }
    w.jsonl("long_doc", "docs.jsonl", &lines)
}
