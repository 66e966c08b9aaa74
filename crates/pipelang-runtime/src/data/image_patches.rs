//! Images: decode PNG/JPEG, resize to a patch grid the projector can merge, patchify.
//!
//! Pixels are RGB `f32` in [0, 1] (no mean/std normalisation: the ViT's patch embedding learns
//! any affine shift). Both sides are resized to multiples of `patch * merge` so that the
//! projector's `pixel_shuffle(merge)` always sees whole k x k blocks, and to at most `max_side`.

use std::path::Path;

use image::{RgbImage, imageops::FilterType};

use super::error::{DataError, Result};
use super::records::Origin;

/// How images are prepared for the ViT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageConfig {
    /// ViT patch side in pixels.
    pub patch: u32,
    /// The projector's pixel-shuffle factor k: k x k patches become one LLM token.
    pub merge: u32,
    /// Longest allowed image side in pixels (rounded down to a multiple of `patch * merge`).
    pub max_side: u32,
}

impl ImageConfig {
    fn cell(&self) -> u32 {
        self.patch * self.merge
    }

    /// The size an image of `w` x `h` is resized to: aspect kept as far as the grid allows,
    /// longest side at most `max_side`, both sides multiples of `patch * merge`.
    /// `None` when the image is smaller than one merge cell on a side.
    pub fn fitted_size(&self, w: u32, h: u32) -> Option<(u32, u32)> {
        let cell = self.cell();
        if w < cell || h < cell {
            return None;
        }
        let max_side = (self.max_side / cell).max(1) * cell;
        let scale = (max_side as f64 / w.max(h) as f64).min(1.0);
        let fit = |s: u32| {
            let scaled = (s as f64 * scale).round() as u32;
            ((scaled / cell).max(1)) * cell
        };
        Some((fit(w), fit(h)))
    }
}

/// One image cut into ViT patches, row-major over the patch grid.
/// `data` is `[n_patches, 3 * patch * patch]`, each patch laid out as `(dy, dx, channel)`;
/// `positions[i]` is the `(row, col)` of patch `i` in the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePatches {
    pub patch: u32,
    pub rows: u32,
    pub cols: u32,
    pub data: Vec<f32>,
    pub positions: Vec<(u32, u32)>,
}

impl ImagePatches {
    pub fn n_patches(&self) -> usize {
        (self.rows * self.cols) as usize
    }

    /// Length of one patch vector: `3 * patch * patch`.
    pub fn patch_dim(&self) -> usize {
        (3 * self.patch * self.patch) as usize
    }

    /// Number of LLM tokens after the projector's `pixel_shuffle(k)`: `(rows/k) * (cols/k)`.
    pub fn merged_tokens(&self, k: u32) -> usize {
        ((self.rows / k) * (self.cols / k)) as usize
    }

    /// Cuts an RGB image whose sides are multiples of `patch` into patches.
    pub fn from_rgb(img: &RgbImage, patch: u32) -> Self {
        let (w, h) = img.dimensions();
        debug_assert!(w % patch == 0 && h % patch == 0);
        let (rows, cols) = (h / patch, w / patch);
        let dim = (3 * patch * patch) as usize;
        let mut data = Vec::with_capacity((rows * cols) as usize * dim);
        let mut positions = Vec::with_capacity((rows * cols) as usize);
        for r in 0..rows {
            for c in 0..cols {
                positions.push((r, c));
                for dy in 0..patch {
                    for dx in 0..patch {
                        let px = img.get_pixel(c * patch + dx, r * patch + dy);
                        data.extend(px.0.iter().map(|&v| v as f32 / 255.0));
                    }
                }
            }
        }
        ImagePatches {
            patch,
            rows,
            cols,
            data,
            positions,
        }
    }
}

/// Reads, resizes and patchifies the image at `image`, referenced by the record at `origin`.
pub fn load_image(image: &Path, origin: Origin, cfg: &ImageConfig) -> Result<ImagePatches> {
    let rgb = decode_rgb(image, origin)?;
    fit_and_patchify(rgb, image, origin, cfg)
}

/// Decodes an image file to RGB8, with located errors.
pub fn decode_rgb(image: &Path, origin: Origin) -> Result<RgbImage> {
    if !image.is_file() {
        return Err(DataError::MissingImage {
            path: origin.path.to_path_buf(),
            line: origin.line,
            image: image.to_path_buf(),
        });
    }
    let bad = |message: String| DataError::BadImage {
        path: origin.path.to_path_buf(),
        line: origin.line,
        image: image.to_path_buf(),
        message,
    };
    let reader = image::ImageReader::open(image)
        .map_err(|e| bad(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?;
    let decoded = reader.decode().map_err(|e| bad(e.to_string()))?;
    Ok(decoded.to_rgb8())
}

/// Resizes a decoded image to its fitted size and patchifies it.
pub fn fit_and_patchify(
    rgb: RgbImage,
    image: &Path,
    origin: Origin,
    cfg: &ImageConfig,
) -> Result<ImagePatches> {
    let (w, h) = rgb.dimensions();
    let (tw, th) = cfg.fitted_size(w, h).ok_or_else(|| DataError::ImageSize {
        path: origin.path.to_path_buf(),
        line: origin.line,
        image: image.to_path_buf(),
        width: w,
        height: h,
        problem: format!(
            "smaller than one {0}x{0} merge cell (patch {1} x pixel_shuffle {2})",
            cfg.cell(),
            cfg.patch,
            cfg.merge
        ),
        hint: format!("use images of at least {0}x{0} pixels", cfg.cell()),
    })?;
    let rgb = if (tw, th) == (w, h) {
        rgb
    } else {
        image::imageops::resize(&rgb, tw, th, FilterType::Triangle)
    };
    Ok(ImagePatches::from_rgb(&rgb, cfg.patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: ImageConfig = ImageConfig {
        patch: 4,
        merge: 2,
        max_side: 32,
    };

    fn origin(p: &Path) -> Origin<'_> {
        Origin { path: p, line: 3 }
    }

    #[test]
    fn fitted_sizes_are_merge_multiples_within_max_side() {
        assert_eq!(CFG.fitted_size(32, 32), Some((32, 32)));
        assert_eq!(CFG.fitted_size(64, 32), Some((32, 16)));
        assert_eq!(CFG.fitted_size(30, 17), Some((24, 16)));
        assert_eq!(CFG.fitted_size(100, 9), Some((32, 8)));
        assert_eq!(CFG.fitted_size(7, 40), None);
    }

    #[test]
    fn patches_are_row_major_with_positions_and_unit_range() {
        let mut img = RgbImage::new(8, 4);
        img.put_pixel(5, 1, image::Rgb([255, 0, 51]));
        let p = ImagePatches::from_rgb(&img, 4);
        assert_eq!(
            (p.rows, p.cols, p.n_patches(), p.patch_dim()),
            (1, 2, 2, 48)
        );
        assert_eq!(p.positions, vec![(0, 0), (0, 1)]);
        // Pixel (x=5, y=1) is in patch 1 at dy=1, dx=1.
        let base = p.patch_dim() + (4 + 1) * 3;
        assert_eq!(&p.data[base..base + 3], &[1.0, 0.0, 0.2]);
        assert_eq!(p.data.iter().filter(|&&v| v != 0.0).count(), 2);
        assert_eq!(p.merged_tokens(1), 2);
    }

    #[test]
    fn loads_resizes_and_reports_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("d.jsonl");
        let png = dir.path().join("big.png");
        RgbImage::from_pixel(64, 48, image::Rgb([255, 255, 255]))
            .save(&png)
            .unwrap();
        let p = load_image(&png, origin(&jsonl), &CFG).unwrap();
        assert_eq!((p.rows, p.cols), (6, 8));
        assert_eq!(p.merged_tokens(2), 12);
        assert!(p.data.iter().all(|&v| (v - 1.0).abs() < 1e-6));

        let jpg = dir.path().join("x.jpg");
        RgbImage::from_pixel(16, 16, image::Rgb([0, 0, 0]))
            .save(&jpg)
            .unwrap();
        assert_eq!(
            load_image(&jpg, origin(&jsonl), &CFG).unwrap().n_patches(),
            16
        );

        let err = load_image(&dir.path().join("none.png"), origin(&jsonl), &CFG).unwrap_err();
        assert!(
            matches!(err, DataError::MissingImage { line: 3, .. }),
            "{err}"
        );

        let junk = dir.path().join("junk.png");
        std::fs::write(&junk, b"not a png at all").unwrap();
        let err = load_image(&junk, origin(&jsonl), &CFG).unwrap_err();
        assert!(matches!(err, DataError::BadImage { .. }), "{err}");
        assert!(err.to_string().contains("d.jsonl:3"), "{err}");

        let tiny = dir.path().join("tiny.png");
        RgbImage::new(4, 20).save(&tiny).unwrap();
        let err = load_image(&tiny, origin(&jsonl), &CFG).unwrap_err();
        assert!(
            matches!(err, DataError::ImageSize { width: 4, .. }),
            "{err}"
        );
    }
}
