//! Hand-rendered pictures: flat background, filled shapes, bitmap text.

use image::{Rgb, RgbImage};

use super::font;
use super::world::{Obj, Shape};

pub fn canvas(w: u32, h: u32, bg: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(w, h, Rgb(bg))
}

/// Whether pixel centre (x, y) lies inside `shape` of "radius" r centred at (cx, cy).
fn inside(shape: Shape, dx: f32, dy: f32, r: f32) -> bool {
    match shape {
        Shape::Circle => dx * dx + dy * dy <= r * r,
        Shape::Square => dx.abs() <= r && dy.abs() <= r,
        Shape::Diamond => dx.abs() + dy.abs() <= r,
        // Apex up, base at the bottom: the half width grows linearly from apex to base.
        Shape::Triangle => dy >= -r && dy <= r && dx.abs() <= (dy + r) / 2.0,
    }
}

/// Draws a filled object; its centre is in pixels.
pub fn draw_obj(img: &mut RgbImage, obj: &Obj, cx: f32, cy: f32) {
    let r = obj.size.radius();
    let (w, h) = img.dimensions();
    let x0 = (cx - r - 1.0).floor().max(0.0) as u32;
    let y0 = (cy - r - 1.0).floor().max(0.0) as u32;
    let x1 = ((cx + r + 1.0).ceil() as u32).min(w - 1);
    let y1 = ((cy + r + 1.0).ceil() as u32).min(h - 1);
    for y in y0..=y1 {
        for x in x0..=x1 {
            if inside(obj.shape, x as f32 + 0.5 - cx, y as f32 + 0.5 - cy, r) {
                img.put_pixel(x, y, Rgb(obj.colour.rgb()));
            }
        }
    }
}

/// Draws `text` in the 3x5 font scaled by `scale`, one pixel of extra spacing per scale step,
/// centred horizontally, top at `y`.
pub fn draw_text(img: &mut RgbImage, text: &str, y: u32, scale: u32, colour: [u8; 3]) {
    let pitch = (font::GLYPH_W + 1) * scale;
    let width = pitch * text.chars().count() as u32 - scale;
    let (w, h) = img.dimensions();
    let mut x = w.saturating_sub(width) / 2;
    for c in text.chars() {
        font::for_each_pixel(c, x, y, scale, |px, py| {
            if px < w && py < h {
                img.put_pixel(px, py, Rgb(colour));
            }
        });
        x += pitch;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sample::world::{Colour, Size};

    fn count(img: &RgbImage, c: [u8; 3]) -> usize {
        img.pixels().filter(|p| p.0 == c).count()
    }

    #[test]
    fn shapes_have_the_expected_areas_and_stay_in_place() {
        let mut areas = Vec::new();
        for shape in [
            Shape::Circle,
            Shape::Square,
            Shape::Diamond,
            Shape::Triangle,
        ] {
            let mut img = canvas(32, 32, [0, 0, 0]);
            let obj = Obj {
                shape,
                colour: Colour::Red,
                size: Size::Large,
            };
            draw_obj(&mut img, &obj, 16.0, 16.0);
            let lit = count(&img, Colour::Red.rgb());
            // Everything lit is within the bounding box of the shape.
            for (x, y, p) in img.enumerate_pixels() {
                if p.0 == Colour::Red.rgb() {
                    assert!(
                        (x as f32 + 0.5 - 16.0).abs() <= 6.0
                            && (y as f32 + 0.5 - 16.0).abs() <= 6.0
                    );
                }
            }
            areas.push(lit);
        }
        let r = Size::Large.radius();
        let (circle, square, diamond, triangle) = (areas[0], areas[1], areas[2], areas[3]);
        assert_eq!(square as f32, (2.0 * r) * (2.0 * r));
        assert!(
            (circle as f32 - std::f32::consts::PI * r * r).abs() < 8.0,
            "{circle}"
        );
        // Pixel centres sit on half-integers, which rounds the diamond up a little.
        assert!(
            (diamond as f32 - 2.0 * r * r).abs() <= 0.2 * 2.0 * r * r,
            "{diamond}"
        );
        assert!((triangle as f32 - 2.0 * r * r).abs() < 8.0, "{triangle}");

        let mut small = canvas(32, 32, [0, 0, 0]);
        let obj = Obj {
            shape: Shape::Square,
            colour: Colour::Blue,
            size: Size::Small,
        };
        draw_obj(&mut small, &obj, 6.0, 26.0);
        assert!(count(&small, Colour::Blue.rgb()) < square / 2);
        assert_eq!(small.get_pixel(6, 26).0, Colour::Blue.rgb());
        assert_eq!(small.get_pixel(26, 6).0, [0, 0, 0]);
    }

    #[test]
    fn text_is_centred() {
        let mut img = canvas(48, 16, [0, 0, 0]);
        draw_text(&mut img, "HI", 3, 2, [255, 255, 255]);
        let xs: Vec<u32> = img
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0 == [255, 255, 255])
            .map(|(x, _, _)| x)
            .collect();
        let (lo, hi) = (*xs.iter().min().unwrap(), *xs.iter().max().unwrap());
        assert_eq!(lo + hi + 1, 48, "left {lo} right {hi}");
    }
}
