//! Horizontal flip: mirror the image left to right. BYOL's Table 6: p = 0.5
//! on both views.
//!
//! `out(y, x) = in(y, W - 1 - x)`, in every channel. Flipping twice gives
//! the image back.

/// Mirrors a CHW image in place. Every run of `width` values is one row,
/// whatever channel it belongs to, so only the width is needed.
pub fn flip_horizontal(data: &mut [f32], width: usize) {
    for row in data.chunks_exact_mut(width) {
        row.reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_mirrors_rows_and_twice_is_the_identity() {
        // 2 channels of 2x3.
        let original: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let mut x = original.clone();
        flip_horizontal(&mut x, 3);
        assert_eq!(&x[..3], &[2.0, 1.0, 0.0]);
        assert_eq!(&x[9..], &[11.0, 10.0, 9.0]);
        flip_horizontal(&mut x, 3);
        assert_eq!(x, original);
    }
}
