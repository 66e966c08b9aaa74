//! A 3x5 bitmap font (A-Z, 0-9, space) for rendering OCR images without font files.

/// Rows of a glyph, top to bottom; bit 2 is the left column.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c.to_ascii_uppercase() {
        'A' => [0b010, 0b101, 0b111, 0b101, 0b101],
        'B' => [0b110, 0b101, 0b110, 0b101, 0b110],
        'C' => [0b011, 0b100, 0b100, 0b100, 0b011],
        'D' => [0b110, 0b101, 0b101, 0b101, 0b110],
        'E' => [0b111, 0b100, 0b110, 0b100, 0b111],
        'F' => [0b111, 0b100, 0b110, 0b100, 0b100],
        'G' => [0b011, 0b100, 0b101, 0b101, 0b011],
        'H' => [0b101, 0b101, 0b111, 0b101, 0b101],
        'I' => [0b111, 0b010, 0b010, 0b010, 0b111],
        'J' => [0b001, 0b001, 0b001, 0b101, 0b010],
        'K' => [0b101, 0b101, 0b110, 0b101, 0b101],
        'L' => [0b100, 0b100, 0b100, 0b100, 0b111],
        'M' => [0b101, 0b111, 0b111, 0b101, 0b101],
        'N' => [0b110, 0b101, 0b101, 0b101, 0b101],
        'O' => [0b010, 0b101, 0b101, 0b101, 0b010],
        'P' => [0b110, 0b101, 0b110, 0b100, 0b100],
        'Q' => [0b010, 0b101, 0b101, 0b110, 0b011],
        'R' => [0b110, 0b101, 0b110, 0b101, 0b101],
        'S' => [0b011, 0b100, 0b010, 0b001, 0b110],
        'T' => [0b111, 0b010, 0b010, 0b010, 0b010],
        'U' => [0b101, 0b101, 0b101, 0b101, 0b111],
        'V' => [0b101, 0b101, 0b101, 0b101, 0b010],
        'W' => [0b101, 0b101, 0b111, 0b111, 0b101],
        'X' => [0b101, 0b101, 0b010, 0b101, 0b101],
        'Y' => [0b101, 0b101, 0b010, 0b010, 0b010],
        'Z' => [0b111, 0b001, 0b010, 0b100, 0b111],
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b110, 0b001, 0b010, 0b100, 0b111],
        '3' => [0b110, 0b001, 0b010, 0b001, 0b110],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b110, 0b001, 0b110],
        '6' => [0b011, 0b100, 0b110, 0b101, 0b010],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b010, 0b101, 0b010, 0b101, 0b010],
        '9' => [0b010, 0b101, 0b011, 0b001, 0b110],
        ' ' => [0; 5],
        _ => return None,
    })
}

pub const GLYPH_W: u32 = 3;

/// Whether the font can draw every character of `text`.
pub fn can_render(text: &str) -> bool {
    text.chars().all(|c| glyph(c).is_some())
}

/// Calls `set(x, y)` for every lit pixel of `c` scaled by `scale`, with its top left at (x0, y0).
pub fn for_each_pixel(c: char, x0: u32, y0: u32, scale: u32, mut set: impl FnMut(u32, u32)) {
    let Some(rows) = glyph(c) else { return };
    for (gy, bits) in rows.iter().enumerate() {
        for gx in 0..GLYPH_W {
            if bits & (1 << (GLYPH_W - 1 - gx)) != 0 {
                for sy in 0..scale {
                    for sx in 0..scale {
                        set(x0 + gx * scale + sx, y0 + gy as u32 * scale + sy);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_are_distinct_and_drawn_in_place() {
        let chars: Vec<char> = ('A'..='Z').chain('0'..='9').collect();
        let mut seen = std::collections::HashSet::new();
        for &c in &chars {
            assert!(
                seen.insert(glyph(c).unwrap()),
                "{c} duplicates another glyph"
            );
        }
        assert!(can_render("Red 42") && !can_render("é"));
        let mut lit = Vec::new();
        for_each_pixel('T', 10, 20, 1, |x, y| lit.push((x, y)));
        assert_eq!(lit[..3], [(10, 20), (11, 20), (12, 20)]);
        assert_eq!(lit.len(), 7);
        let mut n = 0;
        for_each_pixel('T', 0, 0, 2, |_, _| n += 1);
        assert_eq!(n, 28);
    }
}
