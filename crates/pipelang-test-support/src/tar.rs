//! WebDataset shards written with the `tar` crate's own writer, and the images they hold.

use std::path::Path;

/// A shard of `(entry name, bytes)` in order, closed with the end-of-archive blocks.
pub fn write<N: AsRef<str>>(path: &Path, entries: &[(N, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name.as_ref(), bytes.as_slice())
            .unwrap();
    }
    b.finish().unwrap();
}

/// `w` x `h` pixels of noise drawn from `seed`: noise, so an encoded file is about as large as
/// its pixels and a cut at a given byte falls inside it.
fn noise(w: u32, h: u32, seed: u32) -> image::RgbImage {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    image::RgbImage::from_fn(w, h, |_, _| {
        let mut px = [0u8; 3];
        for c in &mut px {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *c = (state >> 24) as u8;
        }
        image::Rgb(px)
    })
}

fn encoded(img: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(vec![]);
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A PNG file's bytes.
pub fn png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    encoded(&noise(w, h, seed), image::ImageFormat::Png)
}

/// A JPEG file's bytes.
pub fn jpeg(w: u32, h: u32, seed: u32) -> Vec<u8> {
    encoded(&noise(w, h, seed), image::ImageFormat::Jpeg)
}

/// A lossless WebP file's bytes.
pub fn webp(w: u32, h: u32, seed: u32) -> Vec<u8> {
    encoded(&noise(w, h, seed), image::ImageFormat::WebP)
}
