//! An RGB pixel grid to draw charts on, and saving it as a PNG file.
//!
//! Coordinates are `i32` pixels with (0, 0) at the top-left corner, x to the
//! right and y downwards. Drawing outside the canvas is allowed and simply
//! clipped, so chart code never has to check bounds itself.

use crate::font;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use std::path::Path;

/// White, the background of a new canvas.
pub const WHITE: [u8; 3] = [255, 255, 255];

/// A picture of `width` x `height` RGB pixels, stored row by row from the
/// top: the pixel at (x, y) is `pixels[y * width + x]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Canvas {
    /// Number of pixel columns.
    pub width: usize,
    /// Number of pixel rows.
    pub height: usize,
    /// The colours, `width * height` of them, row after row.
    pub pixels: Vec<[u8; 3]>,
}

impl Canvas {
    /// A white canvas of `width` x `height` pixels.
    pub fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![WHITE; width * height],
        }
    }

    /// Paints the pixel at (x, y); does nothing outside the canvas.
    pub fn set(&mut self, x: i32, y: i32, color: [u8; 3]) {
        if x < 0 || y < 0 {
            return;
        }
        let (x, y) = (x as usize, y as usize);
        if x < self.width && y < self.height {
            self.pixels[y * self.width + x] = color;
        }
    }

    /// Fills the rectangle whose top-left pixel is (x, y), `w` pixels wide
    /// and `h` high. A zero or negative size draws nothing.
    pub fn fill_rect(&mut self, x: i32, y: i32, w: i32, h: i32, color: [u8; 3]) {
        for py in y..y + h {
            for px in x..x + w {
                self.set(px, py, color);
            }
        }
    }

    /// Draws a straight line from (x0, y0) to (x1, y1), both ends included,
    /// `thickness` pixels thick (1 for a hairline; 2 or 3 for data lines).
    ///
    /// This is Bresenham's algorithm: walk one pixel at a time along the
    /// longer direction and keep an integer error term that says when to
    /// also step along the shorter direction. For a thick line a small
    /// square "brush" is stamped at every pixel of the walk.
    pub fn line(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, color: [u8; 3], thickness: i32) {
        let dx = (x1 - x0).abs();
        let dy = -(y1 - y0).abs();
        let step_x = if x0 < x1 { 1 } else { -1 };
        let step_y = if y0 < y1 { 1 } else { -1 };
        // `err` tracks dx + dy scaled so that all arithmetic stays integer.
        let mut err = dx + dy;
        let (mut x, mut y) = (x0, y0);
        loop {
            self.brush(x, y, color, thickness);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += step_x;
            }
            if e2 <= dx {
                err += dx;
                y += step_y;
            }
        }
    }

    /// Stamps a `thickness` x `thickness` square centred on (x, y).
    fn brush(&mut self, x: i32, y: i32, color: [u8; 3], thickness: i32) {
        let t = thickness.max(1);
        let start = -(t - 1) / 2;
        self.fill_rect(x + start, y + start, t, t, color);
    }

    /// Draws a filled disc centred on (cx, cy). Radius 0 is a single pixel.
    pub fn circle(&mut self, cx: i32, cy: i32, radius: i32, color: [u8; 3]) {
        let r = radius.max(0);
        // Adding `r` to r^2 rounds the edge a little outwards, which makes
        // small discs look round rather than like a plus sign.
        let limit = r * r + r;
        for dy in -r..=r {
            for dx in -r..=r {
                if dx * dx + dy * dy <= limit {
                    self.set(cx + dx, cy + dy, color);
                }
            }
        }
    }

    /// Writes `text` with the built-in 5 x 7 font, its top-left corner at
    /// (x, y). Every font pixel becomes a `scale` x `scale` square, so the
    /// text is `7 * scale` pixels high ([`Canvas::text_height`]), except
    /// that the tails of g, p, q and y reach `2 * scale` pixels further
    /// down. Characters the font lacks are drawn as a box.
    pub fn text(&mut self, x: i32, y: i32, text: &str, color: [u8; 3], scale: i32) {
        let s = scale.max(1);
        let mut left = x;
        for c in text.chars() {
            let glyph = font::glyph(c).unwrap_or(&font::MISSING_GLYPH);
            let top = y + font::drop_rows(c) * s;
            for row in 0..font::GLYPH_HEIGHT {
                for col in 0..font::GLYPH_WIDTH {
                    if font::pixel_on(glyph, col, row) {
                        self.fill_rect(left + col * s, top + row * s, s, s, color);
                    }
                }
            }
            left += font::ADVANCE * s;
        }
    }

    /// Writes `text` turned a quarter turn anticlockwise, so it reads from
    /// bottom to top, as y-axis labels do. (x, y) is the top-left corner of
    /// the turned text, which is `7 * scale` wide and
    /// `text_width(text, scale)` high.
    pub fn text_vertical(&mut self, x: i32, y: i32, text: &str, color: [u8; 3], scale: i32) {
        let s = scale.max(1);
        let length = Canvas::text_width(text, s);
        // Lay the text out as if horizontal, at offset `along` from its start
        // and `across` from its top, then turn: the top of the letters faces
        // left and the first letter sits at the bottom.
        let mut along = 0;
        for c in text.chars() {
            let glyph = font::glyph(c).unwrap_or(&font::MISSING_GLYPH);
            let drop = font::drop_rows(c);
            for row in 0..font::GLYPH_HEIGHT {
                for col in 0..font::GLYPH_WIDTH {
                    if font::pixel_on(glyph, col, row) {
                        let across = (row + drop) * s;
                        let here = along + col * s;
                        self.fill_rect(x + across, y + length - here - s, s, s, color);
                    }
                }
            }
            along += font::ADVANCE * s;
        }
    }

    /// Width in pixels of `text` drawn at `scale`, without the blank column
    /// that follows the last character. The empty string is 0 wide.
    pub fn text_width(text: &str, scale: i32) -> i32 {
        let n = text.chars().count() as i32;
        if n == 0 {
            0
        } else {
            (n * font::ADVANCE - 1) * scale.max(1)
        }
    }

    /// Height in pixels of one line of text drawn at `scale`, from the top
    /// of the capitals to the baseline; the tails of g, p, q and y reach
    /// `2 * scale` pixels below it.
    pub fn text_height(scale: i32) -> i32 {
        font::GLYPH_HEIGHT * scale.max(1)
    }

    /// The canvas as the bytes of an 8-bit RGB PNG file. Errors only for a
    /// canvas too large for PNG (a side above 2^32 - 1 pixels).
    pub fn png_bytes(&self) -> Result<Vec<u8>, image::ImageError> {
        let rgb: Vec<u8> = self.pixels.iter().flatten().copied().collect();
        let too_large = || {
            image::ImageError::Limits(image::error::LimitError::from_kind(
                image::error::LimitErrorKind::DimensionError,
            ))
        };
        let width = u32::try_from(self.width).map_err(|_| too_large())?;
        let height = u32::try_from(self.height).map_err(|_| too_large())?;
        let mut png = Vec::new();
        PngEncoder::new(&mut png).write_image(&rgb, width, height, ExtendedColorType::Rgb8)?;
        Ok(png)
    }

    /// Saves the canvas as a PNG file at `path`, complete or not at all
    /// (the `files` crate's atomic writer: a reader never sees half a
    /// picture, even if the program dies midway). The folder must exist.
    pub fn save_png(&self, path: &Path) -> Result<(), files::WriteError> {
        files::write_with(path, |file| {
            let png = self.png_bytes().map_err(std::io::Error::other)?;
            std::io::Write::write_all(file, &png)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const BLACK: [u8; 3] = [0, 0, 0];
    const RED: [u8; 3] = [255, 0, 0];

    /// The coordinates of every pixel that is not white.
    fn painted(c: &Canvas) -> Vec<(i32, i32)> {
        let mut out = Vec::new();
        for y in 0..c.height {
            for x in 0..c.width {
                if c.pixels[y * c.width + x] != WHITE {
                    out.push((x as i32, y as i32));
                }
            }
        }
        out
    }

    /// A fresh, empty folder under the system temporary folder.
    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plot-canvas-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_new_canvas_is_white() {
        let c = Canvas::new(4, 3);
        assert_eq!(c.pixels.len(), 12);
        assert!(painted(&c).is_empty());
    }

    #[test]
    fn set_ignores_pixels_outside() {
        let mut c = Canvas::new(3, 3);
        c.set(-1, 0, RED);
        c.set(0, -1, RED);
        c.set(3, 0, RED);
        c.set(0, 3, RED);
        assert!(painted(&c).is_empty());
        c.set(2, 1, RED);
        assert_eq!(painted(&c), vec![(2, 1)]);
        assert_eq!(c.pixels[3 + 2], RED);
    }

    #[test]
    fn fill_rect_covers_exactly_its_area_and_clips() {
        let mut c = Canvas::new(6, 5);
        c.fill_rect(1, 2, 3, 2, RED);
        assert_eq!(
            painted(&c),
            vec![(1, 2), (2, 2), (3, 2), (1, 3), (2, 3), (3, 3)]
        );
        let mut c = Canvas::new(4, 4);
        c.fill_rect(-2, -2, 3, 3, RED);
        assert_eq!(painted(&c), vec![(0, 0)]);
        c.fill_rect(1, 1, 0, 5, RED);
        assert_eq!(painted(&c).len(), 1);
    }

    #[test]
    fn horizontal_vertical_and_diagonal_lines_hit_the_expected_pixels() {
        let mut c = Canvas::new(10, 10);
        c.line(2, 3, 6, 3, BLACK, 1);
        assert_eq!(painted(&c), (2..=6).map(|x| (x, 3)).collect::<Vec<_>>());

        let mut c = Canvas::new(10, 10);
        c.line(4, 8, 4, 5, BLACK, 1);
        assert_eq!(painted(&c), (5..=8).map(|y| (4, y)).collect::<Vec<_>>());

        let mut c = Canvas::new(10, 10);
        c.line(7, 7, 1, 1, BLACK, 1);
        assert_eq!(painted(&c), (1..=7).map(|i| (i, i)).collect::<Vec<_>>());
    }

    #[test]
    fn a_shallow_line_has_one_pixel_per_column_near_the_ideal_line() {
        let mut c = Canvas::new(20, 10);
        c.line(0, 0, 16, 4, BLACK, 1);
        let pixels = painted(&c);
        assert_eq!(pixels.len(), 17);
        for x in 0..=16 {
            let ys: Vec<i32> = pixels.iter().filter(|p| p.0 == x).map(|p| p.1).collect();
            assert_eq!(ys.len(), 1, "column {x}");
            let ideal = x as f32 * 4.0 / 16.0;
            assert!((ys[0] as f32 - ideal).abs() <= 0.5, "column {x}: {ys:?}");
        }
    }

    #[test]
    fn a_thick_line_is_thicker() {
        let mut c = Canvas::new(10, 10);
        c.line(1, 4, 8, 4, BLACK, 2);
        // A 2 x 2 brush at x = 1..=8 covers x = 1..=9 and y = 4..=5.
        let pixels = painted(&c);
        assert_eq!(pixels.len(), 9 * 2);
        assert!(pixels
            .iter()
            .all(|&(x, y)| (1..=9).contains(&x) && (4..=5).contains(&y)));
    }

    #[test]
    fn circle_is_filled_and_round() {
        let mut c = Canvas::new(11, 11);
        c.circle(5, 5, 3, RED);
        let pixels = painted(&c);
        assert!(pixels.contains(&(5, 5)));
        assert!(pixels.contains(&(8, 5)) && pixels.contains(&(5, 2)));
        assert!(!pixels.contains(&(8, 8)), "corners stay empty");
        assert!(pixels
            .iter()
            .all(|&(x, y)| (x - 5).abs() <= 3 && (y - 5).abs() <= 3));
        let mut c = Canvas::new(3, 3);
        c.circle(1, 1, 0, RED);
        assert_eq!(painted(&c), vec![(1, 1)]);
    }

    #[test]
    fn text_of_zero_changes_only_pixels_inside_its_box() {
        let mut c = Canvas::new(30, 30);
        c.text(4, 6, "0", BLACK, 2);
        let pixels = painted(&c);
        assert!(!pixels.is_empty());
        // The box is 5 * 2 = 10 wide and 7 * 2 = 14 high.
        for &(x, y) in &pixels {
            assert!((4..14).contains(&x) && (6..20).contains(&y), "({x}, {y})");
        }
        // Pixels touching all four sides of the box.
        assert!(pixels.iter().any(|p| p.0 == 4) && pixels.iter().any(|p| p.0 == 13));
        assert!(pixels.iter().any(|p| p.1 == 6) && pixels.iter().any(|p| p.1 == 19));
        // Row 3 of '0' is 0b10101: font column 0 is set, column 1 is not.
        assert!(pixels.contains(&(4, 12)) && !pixels.contains(&(6, 12)));
    }

    #[test]
    fn text_matches_the_font_pixel_for_pixel() {
        let mut c = Canvas::new(20, 10);
        c.text(1, 1, "A7", RED, 1);
        for (i, ch) in ['A', '7'].into_iter().enumerate() {
            let glyph = font::glyph(ch).unwrap();
            for row in 0..7 {
                for col in 0..5 {
                    let x = 1 + i * 6 + col as usize;
                    let y = 1 + row as usize;
                    let on = c.pixels[y * c.width + x] == RED;
                    assert_eq!(on, font::pixel_on(glyph, col, row), "{ch} {col},{row}");
                }
            }
        }
        // The gap column between the letters stays white.
        assert!((0..10).all(|y| c.pixels[y * c.width + 6] == WHITE));
    }

    #[test]
    fn tails_hang_below_the_line() {
        let mut c = Canvas::new(10, 12);
        c.text(0, 0, "p", BLACK, 1);
        let rows: Vec<i32> = painted(&c).iter().map(|p| p.1).collect();
        assert_eq!((rows[0], rows[rows.len() - 1]), (2, 8));
        let mut c = Canvas::new(10, 12);
        c.text(0, 0, "b", BLACK, 1);
        let rows: Vec<i32> = painted(&c).iter().map(|p| p.1).collect();
        assert_eq!((rows[0], rows[rows.len() - 1]), (0, 6));
    }

    #[test]
    fn unknown_characters_draw_a_box() {
        let mut c = Canvas::new(10, 10);
        c.text(0, 0, "é", BLACK, 1);
        assert_eq!(painted(&c).len(), 5 + 5 + 5 + 5);
    }

    #[test]
    fn text_width_counts_characters_and_scale() {
        assert_eq!(Canvas::text_width("", 2), 0);
        assert_eq!(Canvas::text_width("a", 1), 5);
        assert_eq!(Canvas::text_width("abc", 1), 17);
        assert_eq!(Canvas::text_width("abc", 2), 34);
        assert_eq!(Canvas::text_height(3), 21);
    }

    #[test]
    fn vertical_text_is_the_horizontal_text_turned() {
        let mut flat = Canvas::new(20, 20);
        flat.text(0, 0, "Ag", BLACK, 1);
        let mut turned = Canvas::new(20, 20);
        turned.text_vertical(0, 0, "Ag", BLACK, 1);
        let length = Canvas::text_width("Ag", 1);
        // Flat (x, y) goes to turned (y, length - 1 - x).
        let mut expected: Vec<(i32, i32)> = painted(&flat)
            .into_iter()
            .map(|(x, y)| (y, length - 1 - x))
            .collect();
        expected.sort_by_key(|&(x, y)| (y, x));
        assert_eq!(painted(&turned), expected);
    }

    #[test]
    fn save_png_round_trips_through_image() {
        let dir = scratch_dir("roundtrip");
        let mut c = Canvas::new(7, 5);
        c.set(3, 2, RED);
        c.set(6, 4, [1, 2, 3]);
        let path = dir.join("picture.png");
        c.save_png(&path).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!((back.width(), back.height()), (7, 5));
        assert_eq!(back.get_pixel(3, 2).0, RED);
        assert_eq!(back.get_pixel(6, 4).0, [1, 2, 3]);
        assert_eq!(back.get_pixel(0, 0).0, WHITE);
        // Only the PNG is left in the folder: no temporary file.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("picture.png")]);
        // Saving again replaces the file.
        Canvas::new(2, 2).save_png(&path).unwrap();
        assert_eq!(image::open(&path).unwrap().width(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_png_into_a_missing_folder_names_the_path() {
        let dir = scratch_dir("missing");
        let path = dir.join("no-such-folder").join("chart.png");
        let err = Canvas::new(3, 3).save_png(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn save_png_without_a_file_name_fails() {
        let err = Canvas::new(3, 3)
            .save_png(Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no file name"), "{err}");
    }
}
