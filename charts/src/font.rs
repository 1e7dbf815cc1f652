//! A tiny built-in bitmap font, so charts need no font files.
//!
//! Every printable ASCII character (codes 32 to 126) has a glyph of 5
//! columns by 7 rows. A glyph is stored as 7 bytes, one per row from top to
//! bottom; in each byte the low 5 bits are the pixels of that row, the bit
//! worth 16 (`0b10000`) being the leftmost column and the bit worth 1
//! (`0b00001`) the rightmost. So the rows of `A` read, in binary:
//!
//! ```text
//! 0b01110   .###.
//! 0b10001   #...#
//! 0b10001   #...#
//! 0b11111   #####
//! 0b10001   #...#
//! 0b10001   #...#
//! 0b10001   #...#
//! ```
//!
//! The letters g, p, q and y have tails below the line. Their glyphs use
//! the 7 rows for the letter from its top down to the tip of its tail, and
//! are drawn [`DESCENT`] rows lower than the other characters (see
//! [`drop_rows`]), so their tails hang below the baseline. (The j keeps its
//! dot and stays on the line.)
//!
//! Characters outside the table are drawn as an empty box.

/// Width of a glyph in font pixels.
pub const GLYPH_WIDTH: i32 = 5;

/// Height of a glyph in font pixels.
pub const GLYPH_HEIGHT: i32 = 7;

/// Horizontal distance from one character to the next: the glyph plus one
/// blank column.
pub const ADVANCE: i32 = GLYPH_WIDTH + 1;

/// How many rows the tails of g, p, q and y reach below the other
/// characters.
pub const DESCENT: i32 = 2;

/// The glyph drawn for characters the font does not have: a hollow box.
pub const MISSING_GLYPH: [u8; 7] = [
    0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111,
];

/// The first character in [`GLYPHS`] (the space).
const FIRST: u32 = 32;

/// Glyphs of the characters 32 (space) to 126 (`~`), in code order.
#[rustfmt::skip]
const GLYPHS: [[u8; 7]; 95] = [
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // ' '
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100], // '!'
    [0b01010, 0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000], // '"'
    [0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010], // '#'
    [0b00100, 0b01111, 0b10100, 0b01110, 0b00101, 0b11110, 0b00100], // '$'
    [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011], // '%'
    [0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101], // '&'
    [0b00100, 0b00100, 0b01000, 0b00000, 0b00000, 0b00000, 0b00000], // '\''
    [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010], // '('
    [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000], // ')'
    [0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000], // '*'
    [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000], // '+'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000], // ','
    [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000], // '-'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100], // '.'
    [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000], // '/'
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110], // '0'
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // '1'
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111], // '2'
    [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110], // '3'
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010], // '4'
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110], // '5'
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110], // '6'
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000], // '7'
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110], // '8'
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100], // '9'
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000], // ':'
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b00100, 0b01000], // ';'
    [0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010], // '<'
    [0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000], // '='
    [0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000], // '>'
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100], // '?'
    [0b01110, 0b10001, 0b00001, 0b01101, 0b10101, 0b10101, 0b01110], // '@'
    [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // 'A'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110], // 'B'
    [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110], // 'C'
    [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100], // 'D'
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111], // 'E'
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000], // 'F'
    [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111], // 'G'
    [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // 'H'
    [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 'I'
    [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100], // 'J'
    [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001], // 'K'
    [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111], // 'L'
    [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001], // 'M'
    [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001], // 'N'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // 'O'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000], // 'P'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101], // 'Q'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001], // 'R'
    [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110], // 'S'
    [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // 'T'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // 'U'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // 'V'
    [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010], // 'W'
    [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001], // 'X'
    [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100], // 'Y'
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111], // 'Z'
    [0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110], // '['
    [0b00000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00001, 0b00000], // '\\'
    [0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110], // ']'
    [0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000], // '^'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111], // '_'
    [0b01000, 0b00100, 0b00010, 0b00000, 0b00000, 0b00000, 0b00000], // '`'
    [0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111], // 'a'
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110], // 'b'
    [0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110], // 'c'
    [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111], // 'd'
    [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110], // 'e'
    [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000], // 'f'
    [0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // 'g'
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // 'h'
    [0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110], // 'i'
    [0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b10010, 0b01100], // 'j'
    [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010], // 'k'
    [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 'l'
    [0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001], // 'm'
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // 'n'
    [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110], // 'o'
    [0b11110, 0b10001, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000], // 'p'
    [0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b00001], // 'q'
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000], // 'r'
    [0b00000, 0b00000, 0b01110, 0b10000, 0b01110, 0b00001, 0b11110], // 's'
    [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110], // 't'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101], // 'u'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // 'v'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010], // 'w'
    [0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001], // 'x'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // 'y'
    [0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111], // 'z'
    [0b00010, 0b00100, 0b00100, 0b01000, 0b00100, 0b00100, 0b00010], // '{'
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // '|'
    [0b01000, 0b00100, 0b00100, 0b00010, 0b00100, 0b00100, 0b01000], // '}'
    [0b00000, 0b00000, 0b01000, 0b10101, 0b00010, 0b00000, 0b00000], // '~'
];

/// The glyph of `c`, or `None` when the font has no glyph for it (anything
/// outside printable ASCII, including tabs and newlines).
pub fn glyph(c: char) -> Option<&'static [u8; 7]> {
    let code = c as u32;
    if (FIRST..FIRST + GLYPHS.len() as u32).contains(&code) {
        Some(&GLYPHS[(code - FIRST) as usize])
    } else {
        None
    }
}

/// How many font rows lower than the others the glyph of `c` is drawn:
/// [`DESCENT`] for the letters with a tail (g, p, q, y), 0 for the rest.
pub fn drop_rows(c: char) -> i32 {
    if matches!(c, 'g' | 'p' | 'q' | 'y') {
        DESCENT
    } else {
        0
    }
}

/// Whether the pixel in column `col` (0 = left) and row `row` (0 = top) of
/// `glyph` is set. Positions outside the 5 x 7 cell are never set.
pub fn pixel_on(glyph: &[u8; 7], col: i32, row: i32) -> bool {
    if !(0..GLYPH_WIDTH).contains(&col) || !(0..GLYPH_HEIGHT).contains(&row) {
        return false;
    }
    let bits = glyph[row as usize];
    // Column 0 is the highest of the five bits.
    let shift = GLYPH_WIDTH - 1 - col;
    (bits >> shift) & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printable_ascii_char_has_its_own_glyph() {
        for code in 32u8..=126 {
            let c = code as char;
            assert!(glyph(c).is_some(), "no glyph for {c:?}");
        }
    }

    #[test]
    fn glyphs_differ_from_each_other_and_from_the_box() {
        for a in 32u8..=126 {
            let ga = glyph(a as char).unwrap();
            assert_ne!(ga, &MISSING_GLYPH, "{:?} looks like the box", a as char);
            for b in (a + 1)..=126 {
                let gb = glyph(b as char).unwrap();
                assert_ne!(ga, gb, "{:?} and {:?} look the same", a as char, b as char);
            }
        }
    }

    #[test]
    fn only_the_space_is_blank_and_rows_fit_in_five_bits() {
        for code in 32u8..=126 {
            let g = glyph(code as char).unwrap();
            assert!(g.iter().all(|&row| row < 32), "{:?}", code as char);
            let blank = g.iter().all(|&row| row == 0);
            assert_eq!(blank, code == b' ', "{:?}", code as char);
        }
    }

    #[test]
    fn only_letters_with_tails_drop() {
        let dropped: String = (32u8..=126)
            .map(|c| c as char)
            .filter(|&c| drop_rows(c) > 0)
            .collect();
        assert_eq!(dropped, "gpqy");
    }

    #[test]
    fn characters_outside_ascii_have_no_glyph() {
        assert!(glyph('\n').is_none());
        assert!(glyph('\u{7f}').is_none());
        assert!(glyph('é').is_none());
    }

    #[test]
    fn pixel_on_reads_columns_from_the_left() {
        // The top row of '1' is 0b00100: only the middle column.
        let one = glyph('1').unwrap();
        let top: Vec<bool> = (0..5).map(|col| pixel_on(one, col, 0)).collect();
        assert_eq!(top, [false, false, true, false, false]);
        // The bottom row of 'L' is full; its top row has only column 0.
        let l = glyph('L').unwrap();
        assert!((0..5).all(|col| pixel_on(l, col, 6)));
        assert!(pixel_on(l, 0, 0) && !pixel_on(l, 1, 0));
        assert!(!pixel_on(l, -1, 6) && !pixel_on(l, 5, 6) && !pixel_on(l, 0, 7));
    }
}
